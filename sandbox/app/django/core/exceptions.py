class ImproperlyConfigured(Exception):
    """Django's: the settings are missing or invalid."""
