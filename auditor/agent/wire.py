"""The words the host agent sends and the controller reads: one vocabulary for both sides.

Shipped with the agent (standard library only, Python 3.7+) and imported by
`facts.py`, so a reason, a failure kind or a marker kind is spelled once.
"""
from enum import Enum

SCHEMA = "host-facts/2"
STEP_TIMEOUT = 20           # each docker/journalctl read on the host, in seconds
COMPRESSED = "fleet-facts-z1:"      # a compressed facts line (transports with a small output limit: SSM)


class Word(str, Enum):
    """A str enum that prints as its value (JSON, %s and f-strings alike)."""

    def __str__(self):
        return self.value

    @classmethod
    def parse(cls, value, fallback):
        """The member for a word a host sent, or `fallback` for a word this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return fallback


class Unread(Word):
    """Why a reading could not be taken."""
    DOCKER_MISSING = "docker-missing"
    DAEMON_DOWN = "daemon-down"
    PERMISSION_DENIED = "permission-denied"
    TIMED_OUT = "timed-out"
    LOG_DRIVER = "log-driver-unreadable"
    NOT_FOUND = "not-found"
    FAILED = "command-failed"
    NOT_TAKEN = "not-taken"         # a reading it depends on is missing (e.g. docker)
    NOT_A_FILE = "not-a-file"       # a FIFO, device or directory where a file was expected


class ProbeFailure(Word):
    BOTO3_MISSING = "boto3-missing"
    PYTHON_MISSING = "python-missing"
    CREDENTIALS_MISSING = "credentials-missing"
    DOTENV_MISSING = "dotenv-missing"
    DOTENV_UNREADABLE = "dotenv-unreadable"
    DOCKER_UNAVAILABLE = "docker-unavailable"
    TIMEOUT = "timeout"
    CRASHED = "probe-crashed"
    CONTAINER_LOST = "container-lost"       # the container stopped or restarted under the probe
    NOT_RUN = "not-run"                     # the app is down and the host cannot run the probe
    CELERY_UNREADABLE = "celery-unreadable"     # the Celery app could not be imported, or its broker is not SQS


class MarkerKind(Word):
    STARTED = "started"
    RECEIVED = "received"
    COMPLETED = "completed"
    FAILED = "failed"
    ERROR = "error"
    ENQUEUED = "enqueued"
    ENQUEUE_FAILED = "enqueue-failed"
    DELETE_FAILED = "delete-failed"
