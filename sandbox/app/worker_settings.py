"""The worker's settings, read from the environment at import as the reference app's settings
module reads them: a required variable that is not set stops the process before any job."""
import os

from django.core.exceptions import ImproperlyConfigured


def env(name):
    try:
        return os.environ[name]
    except KeyError:
        raise ImproperlyConfigured("Set the %s environment variable" % name) from None


SECRET_KEY = env(os.environ.get("WORKER_REQUIRED_ENV", "DJANGO_SECRET_KEY"))
