"""The words the host agent sends and the controller reads: one vocabulary for both sides.

Shipped with the agent (standard library only, Python 3.7+) and imported by
`facts.py`, so a reason, a failure kind or a marker kind is spelled once.
"""
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from enum import Enum
from typing import Dict, Optional, Tuple

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


class LogSourceKind(Word):
    """Where a workload's logs are read: its container (docker logs), a file and its rotations, or
    a systemd unit's journal (the last two are plain processes)."""
    DOCKER = "docker"
    FILE = "file"
    JOURNALD = "journald"


class MarkerKind(Word):
    STARTED = "started"
    RECEIVED = "received"
    COMPLETED = "completed"
    FAILED = "failed"
    ERROR = "error"
    ENQUEUED = "enqueued"
    ENQUEUE_FAILED = "enqueue-failed"
    DELETE_FAILED = "delete-failed"


# -- the agent's configuration: one typed record, built and validated on the controller, sent as
# JSON, read back by the agent into the same record; a value it cannot read is an error, never a
# silent default

class ConfigError(ValueError):
    """The configuration the controller sent cannot be read by this agent (version skew)."""


@dataclass(frozen=True)
class LogSourceConfig:
    kind: str                           # docker, file or journald
    path: Optional[str] = None          # file: the log file (its rotations too)
    unit: Optional[str] = None          # journald: the systemd unit
    process: Optional[str] = None       # file: a pgrep -f pattern that says whether it runs


@dataclass(frozen=True)
class MarkerConfig:
    name: str
    kind: str
    pattern: str
    queue: Optional[str] = None


@dataclass(frozen=True)
class WorkloadConfig:
    name: str                           # the container, unit or log file
    role: str
    source: LogSourceConfig
    markers: Tuple[MarkerConfig, ...]


@dataclass(frozen=True)
class AppConfig:
    env_from: str                       # container, dotenv or shell
    container: Optional[str]
    app_python: str
    host_python: str
    app_dir: str
    check_script: Optional[str]
    workdir: Optional[str]
    dotenv_path: str
    dotenv_format: str


@dataclass(frozen=True)
class RegionConfig:
    env: Tuple[str, ...]                # the app's own region variables, in the order it reads them
    default: Optional[str]


@dataclass(frozen=True)
class KeyPairConfig:
    key_id: str                         # variable names, never values
    secret: str


@dataclass(frozen=True)
class QueueConfig:
    name: str
    env: Optional[str]


@dataclass(frozen=True)
class ProbeConfig:
    """What the SQS probe needs, in the app's environment."""
    fingerprint_domain: str
    user_agent: str
    aws_timeout: float
    region: RegionConfig
    credentials: Tuple[KeyPairConfig, ...]      # preferred key id/secret variable pairs
    queues: Dict[str, QueueConfig]
    settings_module_env: Optional[str]
    celery_app: Optional[str]


@dataclass(frozen=True)
class AgentConfig:
    probe: ProbeConfig
    app: AppConfig
    workloads: Tuple[WorkloadConfig, ...]
    public_env: Tuple[str, ...]
    key_id_env: Tuple[str, ...]
    log_window_seconds: int
    log_max_bytes: int
    step_timeout: float
    probe_timeout: float
    budget: float                       # the agent ends its steps before the remote `timeout` does
    watch_stdin: bool                   # stop when the connection closes (Ctrl-C)
    compress_output: bool
    run_check_script: bool
    imds_endpoint: Optional[str]


def to_wire(record):
    """A config record as JSON-ready data."""
    return asdict(record)


def from_wire(cls, data, where="config"):
    """The record `cls` from JSON data, every field checked against its type: missing, unknown or
    mistyped values raise ConfigError naming the field."""
    hints = typing.get_type_hints(cls)
    if not isinstance(data, dict):
        raise ConfigError("%s: expected a mapping" % where)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    values = {}
    for item in fields(cls):
        if item.name in data:
            values[item.name] = _read(hints[item.name], data[item.name], "%s.%s" % (where, item.name))
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError("%s: %s" % (where, error))


def _read(kind, value, where):
    origin, arguments = getattr(kind, "__origin__", None), getattr(kind, "__args__", ())
    if origin is typing.Union:                  # Optional[X]
        if value is None:
            return None
        return _read([a for a in arguments if a is not type(None)][0], value, where)
    if is_dataclass(kind):
        return from_wire(kind, value, where)
    if origin in (tuple, Tuple) and isinstance(value, list):
        return tuple(_read(arguments[0], item, "%s[%d]" % (where, index)) for index, item in enumerate(value))
    if origin in (dict, Dict) and isinstance(value, dict):
        return {str(key): _read(arguments[1], item, "%s.%s" % (where, key)) for key, item in value.items()}
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in (str, int, bool) and type(value) is kind:
        return value
    raise ConfigError("%s: %r is not a %s" % (where, value, getattr(kind, "__name__", kind)))
