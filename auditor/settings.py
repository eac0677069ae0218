"""Typed settings: the one schema of what an inventory's `auditor:` key (and an app profile) may
say, as frozen records built once per host when the inventory is read.

Each field's type, generic default and meaning live here; the inventory's validation (file:line,
"did you mean") reads its types from these records, the generic defaults every merge starts from
are `Settings()`, and the settings reference (docs/inventory.md) is generated from the same fields. Every
other module reads attributes: nothing downstream indexes a settings dict by string.
"""
import collections.abc
import functools
import json
import re
import typing
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Mapping, Optional, Tuple

from .agent.wire import LogSourceKind, MarkerKind
from .transports.ssm import SsmSettings

ENV_SOURCES = ("container", "dotenv", "shell")
DOTENV_FORMATS = ("docker", "compose", "python-dotenv")
# where a role's logs are read: its container (docker logs), a file and its rotations, or a systemd unit;
# with the keys each kind needs
LOG_SOURCES = {LogSourceKind.DOCKER.value: (), LogSourceKind.FILE.value: ("path",),
               LogSourceKind.JOURNALD.value: ("unit",)}
MARKER_KINDS = tuple(str(kind) for kind in MarkerKind)
EVERY_QUEUE = "*"           # in produces/consumes: every queue the app itself defines


def doc(default=None, text="", factory=None, limits=None, choices=None):
    """A field with its generic default, the one line the settings reference shows, and what the
    inventory may write there: `limits` (smallest, largest) of a number, `choices` of a word."""
    metadata = {"doc": text, "limits": limits, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value):
    """Seconds of a duration as the inventory writes it: 3600, "3600", "90m", "1h", "2h30m".
    Raises ValueError for anything else (the inventory says where; nothing falls back)."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"([0-9]+)\s*([smhd])\s*", text)
    if not parts or "".join(re.findall(r"[0-9]+\s*[smhd]\s*", text)) != text:
        raise ValueError("%r is not a duration" % (value,))
    return sum(int(number) * DURATION_UNITS[unit] for number, unit in parts)


# -- the records ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LogSource:
    kind: str = doc("docker", choices=tuple(LOG_SOURCES))
    path: Optional[str] = None          # kind file: the log file (its rotations PATH.1, PATH.2.gz too)
    unit: Optional[str] = None          # kind journald: the systemd unit
    process: Optional[str] = None       # kind file: a pgrep -f pattern that says whether it runs


@dataclass(frozen=True)
class Marker:
    """A log line that means something: a regular expression with `(?P<job>...)` (and, for
    failures, `(?P<error>...)`), of one kind, maybe about one queue."""
    name: str = doc(dataclasses.MISSING)
    kind: str = doc(dataclasses.MISSING, choices=MARKER_KINDS)     # required, as name and pattern
    pattern: str = doc(dataclasses.MISSING)
    queue: Optional[str] = None


@dataclass(frozen=True)
class Role:
    """What runs under one role: its container (or plain process, by its log source), the queues it
    produces to and consumes from, and its log markers."""
    name: str
    container: Optional[str] = None
    log_source: LogSource = field(default_factory=LogSource)
    produces: Tuple[str, ...] = ()
    consumes: Tuple[str, ...] = ()
    markers: Tuple[Marker, ...] = ()
    # what findings call the id the markers follow (`job`), and the worker's own id for it when a
    # marker captures one beside it (`alias`): the reference video worker's are video and job
    job_names: Tuple[str, ...] = ("job", "job")

    def job_name(self, job: str, alias: Optional[str] = None) -> str:
        """"job 1234, video 567" when the worker logged its own id beside the followed one."""
        followed = "%s %s" % (self.job_names[0] if self.job_names else "job", job)
        if alias and alias != job:
            return "%s %s, %s" % (self.job_names[1] if len(self.job_names) > 1 else "id", alias, followed)
        return followed


@dataclass(frozen=True)
class Queue:
    key: str
    name: str = ""
    env: Optional[str] = None           # the variable whose value overrides the name


@dataclass(frozen=True)
class Timeouts:
    connect: float = doc(10, limits=(0.1, 3600))
    command: float = doc(60, limits=(1, 86400))
    aws: float = doc(5, limits=(0.1, 600))


@dataclass(frozen=True)
class RegionRule:
    """How the app resolves its region: the first set variable of `env`, else `default`."""
    env: Tuple[str, ...] = ("AWS_DEFAULT_REGION",)
    default: Optional[str] = None


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    secret: str


@dataclass(frozen=True)
class CredentialRule:
    prefer: Tuple[KeyPair, ...] = ()    # env pairs the app uses before boto3's chain, in order


@dataclass(frozen=True)
class CrossCheckSettings:
    profiles: Tuple[Optional[str], ...] = (None,)
    regions: Tuple[str, ...] = ()
    config_file: Optional[str] = None
    credentials_file: Optional[str] = None
    parallel: int = doc(16, limits=(1, 256))


@dataclass(frozen=True)
class Settings:
    roles: Tuple[str, ...] = doc((), "what the host runs: names of `role_defs` entries")
    profile: str = doc("academy", "the app profile: a name under auditor/profiles, a YAML file's path, or `none`")
    app_dir: str = doc(".", "the app's directory on the host (its .env and check script are found there)")
    env_from: str = doc("container", "where the app's environment is read: `container`, `dotenv` or `shell`",
                        choices=ENV_SOURCES)
    app_container: Optional[str] = doc(None, "container mode: the app's container (null: the first role's "
                                             "container)")
    dotenv: str = doc(".env", "the .env file, relative to app_dir")
    dotenv_format: str = doc("compose", "how the .env's reader parses it: `docker` (verbatim), `compose` or "
                                        "`python-dotenv`", choices=DOTENV_FORMATS)
    app_python: str = doc("python", "the Python inside the app's container")
    app_workdir: Optional[str] = doc(None, "the app's directory inside its container, where its check script runs "
                                           "(null: the image's)")
    settings_module_env: Optional[str] = doc(None, "the variable naming the app's settings module, shown in the "
                                                   "matrix")
    check_script: Optional[str] = doc(None, "the app's own SQS check script, relative to the app's directory")
    celery_app: Optional[str] = doc(None, "a Celery app on SQS (`proj.celery:app`): the probe imports it in the "
                                          "app's environment, never connecting, and reads the broker, region, "
                                          "queues and keys it resolves")
    run_check_script: bool = doc(False, "run it too (it calls ReceiveMessage, hiding a real job: off unless asked)")
    known_hosts: Optional[str] = doc(None, "the known_hosts file for host keys (null: ssh_config's, then "
                                           "~/.ssh/known_hosts)")
    imds_endpoint: Optional[str] = doc("http://169.254.169.254", "the instance metadata service asked for the "
                                       "role's name when the app finds no credentials (null: never)")
    ssh_control_persist: float = doc(0, "seconds the OpenSSH transport keeps a host's connection for the next "
                                        "audit (0: off)", limits=(0, 86400))
    allowed_endpoints: Tuple[str, ...] = doc((), "AWS endpoint overrides that are expected (not reported)")
    log_window: typing.Union[str, int] = doc("1h", "how far back logs are read: seconds or a duration (90m, 1h, 2h30m)")
    log_max_bytes: int = doc(2000000, "the newest bytes of each workload's logs that are read", limits=(1024, 1 << 32))
    parallel: int = doc(100, "hosts audited at once (why 100: docs/measured.md)", limits=(1, 5000))
    history: bool = doc(True, "record every audit, check-host and preflight in the history (docs/history.md; "
                              "`--no-history` for one run)")
    history_keep_days: int = doc(90, "audits older than this many days are pruned from the history",
                                 limits=(1, 36500))
    history_keep_audits: int = doc(10000, "at most this many audits are kept in the history (the oldest go)",
                                   limits=(10, 10000000))
    timeouts: Timeouts = doc(text="seconds: `connect` (SSH), `command` (the agent's whole run), `aws` (each AWS "
                                  "call)", factory=Timeouts)
    region: RegionRule = doc(text="how the app resolves its region: the first set of `env`, else `default`",
                             factory=RegionRule)
    credentials: CredentialRule = doc(text="`prefer`: key id/secret variable pairs the app uses before boto3's "
                                           "chain", factory=CredentialRule)
    public_env: Tuple[str, ...] = doc(("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
                                       "AWS_ENDPOINT_URL_STS", "AWS_PROFILE"),
                                      "variables shown in clear (the region's, settings module's and queue names' "
                                      "are added)")
    key_id_env: Tuple[str, ...] = doc(("AWS_ACCESS_KEY_ID",), "variables holding access key ids: shown masked")
    queue_create_hint: str = doc("aws sqs create-queue --queue-name NAME --region REGION",
                                 "how the app's queues are created, for the missing-queue remedy")
    job_id_hint: str = doc("", "which id the markers should share, for the job-ids remedy")
    cross_check: CrossCheckSettings = doc(text="`--cross-check`: the controller's AWS `profiles` (one per account), "
                                       "`regions` ([]: all), `config_file`, `credentials_file`, `parallel`",
                                  factory=CrossCheckSettings)
    ssm: SsmSettings = doc(text="Run Command hosts: `region`, `profile`, `bucket`, `key_prefix`, `delivery_timeout`, "
                                "`endpoint_url`, `s3_endpoint_url`, `config_file`, `credentials_file`, `api_rate` "
                                "(SSM calls per second, shared by the audit)",
                           factory=SsmSettings)
    queues: Mapping[str, Queue] = doc(text="KEY -> `{name, env}`: the queue's name and the variable that overrides "
                                           "it", factory=dict)
    role_defs: Mapping[str, Role] = doc(text="NAME -> `{container, log_source, produces, consumes, markers, "
                                             "job_names}`",
                                        factory=dict)

    @functools.cached_property
    def log_window_seconds(self):
        """The log window in seconds, parsed once (the inventory refused what does not parse)."""
        return duration_seconds(self.log_window)

    def role(self, name):
        return self.role_defs[name]

    def produces(self, role):
        return bool(role in self.role_defs and self.role_defs[role].produces)

    def consumes(self, role):
        return bool(role in self.role_defs and self.role_defs[role].consumes)

    def queue_keys(self, role, kind, found=()):
        """The queues a role produces to or consumes from (`kind`); `*` stands for every queue the
        probe `found` (an app whose queues are its own, such as Celery's)."""
        keys = getattr(self.role_defs[role], kind) if role in self.role_defs else ()
        return tuple(found) if EVERY_QUEUE in keys else keys

    def as_mapping(self):
        """The inventory's shape of these settings (JSON-ready): for recordings and the agent."""
        return _to_mapping(self)

    @classmethod
    def from_mapping(cls, mapping):
        """Settings from a merged, validated mapping (missing keys take their defaults)."""
        return _from_mapping(cls, mapping)


# entries of the free-form mappings take their key or name from the mapping itself
ENTRY_KEY = {Queue: "key", Role: "name"}


# -- mappings <-> records -------------------------------------------------------------------

def _to_mapping(value):
    if _is_record(value):
        skip = ENTRY_KEY.get(type(value))
        return {f.name: _to_mapping(getattr(value, f.name)) for f in fields(value) if f.name != skip}
    if isinstance(value, dict):
        return {key: _to_mapping(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_to_mapping(item) for item in value]
    return value


@functools.lru_cache(maxsize=None)
def _hints(record):
    """A record's field types, resolved once per class (typing resolves them anew on every call)."""
    return typing.get_type_hints(record)


def _from_mapping(record, mapping, **fixed):
    hints = _hints(record)
    values = dict(fixed)
    for item in fields(record):
        if item.name in values or item.name not in mapping:
            continue
        value = mapping[item.name]
        if value is None and not _nullable(hints[item.name]):
            continue            # null where no null is a value: the default
        values[item.name] = _convert(hints[item.name], value)
    return record(**values)


def _is_record(hint):
    return hasattr(hint, "__dataclass_fields__")


def _nullable(hint):
    return typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)


def _convert(hint, value):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_record(hint):
        return _from_mapping(hint, value or {})
    if origin is tuple:
        return tuple(_convert(args[0], item) for item in (value or ()))
    if origin is collections.abc.Mapping:
        key_field = ENTRY_KEY[args[1]]
        return {key: _from_mapping(args[1], body or {}, **{key_field: key}) for key, body in (value or {}).items()}
    return value


# -- the schema, for validation and the docs --------------------------------------------------

@dataclass(frozen=True)
class Field:
    """What the inventory may write under one key."""
    types: tuple                        # the YAML value's allowed Python types
    record: Optional[type] = None       # a nested mapping's record, or a list's item record
    entries: Optional[type] = None      # a free-form mapping's entry record (queues, role_defs)
    null_items: bool = False            # a list of names that may hold null (cross_check.profiles: the default chain)
    limits: Optional[tuple] = None      # (smallest, largest) of a number
    choices: Optional[tuple] = None     # the words it may be


@functools.lru_cache(maxsize=None)
def schema_of(record):
    """{key: Field} of a record, as an inventory writes it (an entry's own key or name is the key
    of the mapping it is written under, not a field of its own): built once per record class,
    read-only."""
    hints = _hints(record)
    return {item.name: dataclasses.replace(_field(hints[item.name]), limits=item.metadata.get("limits"),
                                           choices=item.metadata.get("choices"))
            for item in fields(record) if item.name != ENTRY_KEY.get(record)}


def limits_of(path):
    """(smallest, largest) of a numeric setting named by its dotted path (`timeouts.connect`)."""
    record, *parents, name = [Settings] + path.split(".")
    for parent in parents:
        record = schema_of(record)[parent].record
    return schema_of(record)[name].limits


def _field(hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_record(hint):
        return Field((dict,), hint)
    if origin is tuple:
        return Field((list,), args[0] if _is_record(args[0]) else None, null_items=_nullable(args[0]))
    if origin is collections.abc.Mapping:
        return Field((dict,), entries=args[1])
    if origin is typing.Union:
        return Field(tuple(_field(arg).types[0] if arg is not type(None) else arg for arg in args))
    if hint in (int, float):
        return Field((int, float))
    return Field((hint,))


GENERIC = Settings()


def generic_defaults():
    """The defaults every host's settings start from, before its profile: a fresh mapping."""
    return json.loads(json.dumps(GENERIC.as_mapping()))


def settings_table():
    """The settings reference in docs/inventory.md (`python -m auditor.settings`)."""
    lines = ["| setting | generic default | meaning |", "|---|---|---|"]
    defaults = GENERIC.as_mapping()
    for item in fields(Settings):
        lines.append("| `%s` | `%s` | %s |" % (item.name, json.dumps(defaults[item.name]), item.metadata["doc"]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
