"""The one name of Django the sandbox's worker needs: a settings module that cannot load raises
django.core.exceptions.ImproperlyConfigured, as the reference app's settings do."""
