"""Raw agent JSON -> typed host reports. Pure: no I/O, and nothing of the fan-out or the
transports is imported (the registry and the rules load without paramiko).

Every reading is either taken or missing with its reason (`Missing`); nothing
unread looks like "nothing happened". "Unknown" (None) is kept apart from
"empty": a host we could not reach has `probe=None`, not an empty probe.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Tuple

from .agent.wire import LogSourceKind, MarkerKind, ProbeFailure, Unread, Word  # noqa: F401 (read from here by the rules)


@dataclass(frozen=True)
class Missing:
    reason: Unread
    detail: str = ""

    def __str__(self):
        return "%s: %s" % (self.reason, self.detail) if self.detail else str(self.reason)


def _missing(raw):
    """The Missing of a raw reading that says `read: false`, else None."""
    if raw is None:
        return Missing(Unread.NOT_TAKEN)
    if raw.get("read", True):
        return None
    return Missing(Unread.parse(raw.get("reason"), Unread.FAILED), str(raw.get("error") or ""))


# -- SQS probe ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    """A queue's redrive policy and, when it could be read, its dead-letter queue's depth."""
    name: str
    max_receive_count: Optional[int]
    depth: Optional[int] = None             # None: not read (error says why)
    error_code: Optional[str] = None


@dataclass(frozen=True)
class QueueReading:
    key: str
    name: str
    region: Optional[str]
    url: Optional[str] = None
    error_code: Optional[str] = None
    error_message: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict, compare=False)
    dead_letter: Optional[DeadLetter] = None

    @property
    def redrive(self) -> Optional[str]:
        """The redrive policy as the matrix shows it; None when the attributes were not read."""
        if not self.attributes:
            return None
        if self.dead_letter is None:
            return "none (a failing job retries forever)"
        return "%s after %s receives" % (self.dead_letter.name, self.dead_letter.max_receive_count)

    @property
    def encryption(self) -> Optional[str]:
        if not self.attributes:
            return None
        key = self.attributes.get("KmsMasterKeyId")
        if key:
            return "kms:" + key
        return "sse-sqs" if str(self.attributes.get("SqsManagedSseEnabled")).lower() == "true" else "none"

    @property
    def ok(self) -> bool:
        return self.url is not None

    @property
    def visibility_timeout(self) -> Optional[int]:
        value = self.attributes.get("VisibilityTimeout")
        return int(value) if value not in (None, "") and str(value).isdigit() else None

    @property
    def waiting(self) -> Optional[int]:
        """Messages visible in the queue, or None when not read."""
        value = self.attributes.get("ApproximateNumberOfMessages")
        return int(value) if value not in (None, "") and str(value).isdigit() else None


@dataclass(frozen=True)
class RegionReading:
    value: Optional[str]
    source: Optional[str]


@dataclass(frozen=True)
class Credentials:
    source: Optional[str] = None
    key_id: Optional[str] = None            # masked
    key_id_fp: Optional[str] = None
    secret_fp: Optional[str] = None
    looks_like_aws_key: bool = False
    session_token: bool = False


@dataclass(frozen=True)
class EnvProblem:
    """A variable whose value the app's libraries refuse or read otherwise than it looks."""
    variable: str
    public: bool
    length: int
    problems: Tuple[str, ...]
    value: Optional[str] = None     # public variables only


@dataclass(frozen=True)
class ProxyRoute:
    """The proxy botocore sends the app's SQS requests through (None: none applies)."""
    proxy: Optional[str]
    endpoint: str
    variables: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ProbeReading:
    env_source: str
    failure: Optional[ProbeFailure] = None
    error_message: str = ""
    note: Optional[str] = None
    python: Optional[str] = None
    boto3: Optional[str] = None
    botocore: Optional[str] = None
    regions: Mapping[str, RegionReading] = field(default_factory=dict, compare=False)  # app/boto3/cli
    credentials: Credentials = Credentials()
    account: Optional[str] = None
    arn: Optional[str] = None
    identity_error: Optional[str] = None
    queues: Tuple[QueueReading, ...] = ()
    endpoints: Mapping[str, str] = field(default_factory=dict, compare=False)
    settings_module: Optional[str] = None
    static: bool = False                    # read from the .env alone: no AWS call behind it
    env_problems: Tuple[EnvProblem, ...] = ()
    python_fallback: Optional[Tuple[str, str]] = None   # (configured, what ran)
    proxy: Optional[ProxyRoute] = None
    aws_skew: Optional[float] = None        # the host's clock minus the Date of AWS's answer, seconds

    @property
    def ran(self) -> bool:
        return self.failure is None

    @property
    def has_values(self) -> bool:
        """Regions, keys and queue names are known: the probe ran, or the .env was read statically."""
        return self.ran or self.static

    @property
    def app_region_refused(self) -> bool:
        """The app's region comes from a variable whose value its libraries refuse (quotes, spaces,
        not a region name): what follows from that value is not a cause of its own."""
        app = self.regions.get("app")
        source = (app.source or "") if app else ""
        return any(source == "env:" + p.variable and list(p.problems) != ["unknown-region"]
                   for p in self.env_problems)

    def region(self, who: str = "app") -> Optional[str]:
        reading = self.regions.get(who)
        return reading.value if reading else None

    def queue(self, key: str) -> Optional[QueueReading]:
        return next((q for q in self.queues if q.key == key), None)


# -- containers and logs -----------------------------------------------------------------

@dataclass(frozen=True)
class JobSighting:
    job: str
    at: Optional[str]          # the log line's timestamp


@dataclass(frozen=True)
class Marker:
    name: str
    kind: MarkerKind
    queue: Optional[str]
    count: int
    last: Optional[str]
    jobs: Tuple[JobSighting, ...] = ()
    minutes: Mapping[str, int] = field(default_factory=dict, compare=False)    # "YYYY-MM-DDTHH:MM" -> lines


LABEL_MESSAGE = 120         # characters of an exception's message shown beside its type


@dataclass(frozen=True)
class ExceptionGroup:
    """Failures of one kind: a traceback's exception type and innermost application frame, or a
    failure line's error text when no traceback followed it."""
    type: Optional[str]
    where: Optional[str]
    message: str
    count: int
    first: Optional[str]
    last: Optional[str]
    jobs: Tuple[str, ...] = ()
    tasks: Tuple[str, ...] = ()             # the task names (job types) its jobs had, when markers name them

    @property
    def label(self) -> str:
        """`KeyError: 'tier' at tasks.py:16 in build_args`: the type, its message (the one line that
        says what to do; scrubbed on the host, bounded here), and the innermost application frame."""
        message = " ".join(self.message.split())
        message = message[:LABEL_MESSAGE] + "..." if len(message) > LABEL_MESSAGE else message
        what = ("%s: %s" % (self.type, message) if message else self.type) if self.type else repr(message)
        where = "%s at %s" % (what, self.where) if self.where else what
        return "%s in task %s" % (where, ", ".join(self.tasks)) if self.tasks else where


@dataclass(frozen=True)
class RunEnd:
    """How one run of a workload ended (a new start followed it): after a job's failure, with a
    job in progress, or with neither."""
    at: Optional[str]
    after: Optional[str]                    # "failure" | "in-progress" | None
    job: Optional[str]
    type: Optional[str]


@dataclass(frozen=True)
class OpenJob:
    job: str
    at: Optional[str]
    age: Optional[float]                    # seconds since its receipt, by the host's clock


@dataclass(frozen=True)
class KmsDenied:
    count: int
    last: Optional[str]
    keys: Tuple[str, ...] = ()
    actions: Tuple[str, ...] = ()


@dataclass(frozen=True)
class LogReading:
    missing: Optional[Missing] = None
    markers: Tuple[Marker, ...] = ()
    repeated_receipts: Mapping[str, int] = field(default_factory=dict, compare=False)
    lines: int = 0
    truncated_at: Optional[int] = None      # bytes read, when the window held more
    oldest: Optional[str] = None            # the earliest timestamp read
    longest_processing: Optional[float] = None  # seconds from a job's receipt to its completion, at most
    exceptions: Tuple[ExceptionGroup, ...] = ()
    run_ends: Tuple[RunEnd, ...] = ()
    open_jobs: Tuple[OpenJob, ...] = ()
    kms_denied: Optional[KmsDenied] = None
    aliases: Mapping[str, str] = field(default_factory=dict, compare=False)     # job -> the worker's own id for it

    @property
    def read(self) -> bool:
        return self.missing is None

    def count(self, kind: MarkerKind) -> int:
        return sum(m.count for m in self.markers if m.kind == kind)

    def jobs(self, kind: MarkerKind, queue: Optional[str] = None) -> List[JobSighting]:
        return [s for m in self.markers if m.kind == kind and (queue is None or m.queue in (None, queue))
                for s in m.jobs]

    def last(self, *kinds: MarkerKind) -> Optional[str]:
        stamps = [m.last for m in self.markers if m.kind in kinds and m.last]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class EnvValue:
    fp: str
    value: Optional[str] = None     # public variables only
    masked: Optional[str] = None    # key ids

    def display(self) -> str:
        return self.value or self.masked or "fp:" + self.fp[:8]


class WorkloadKind(Word):             # a workload is known by where its logs are read
    CONTAINER = LogSourceKind.DOCKER.value
    FILE = LogSourceKind.FILE.value         # a plain process logging to a file
    JOURNALD = LogSourceKind.JOURNALD.value     # a systemd unit


@dataclass(frozen=True)
class ContainerReading:
    """A role's workload: its container, or its plain process (kind file or journald)."""
    name: str
    role: str
    present: Optional[bool]                 # None: could not be inspected (or no way to tell, for a process)
    missing: Optional[Missing] = None       # why it could not be inspected
    status: Optional[str] = None
    restarting: bool = False
    restart_count: int = 0
    started_at: Optional[str] = None
    image: Optional[str] = None
    env: Mapping[str, EnvValue] = field(default_factory=dict, compare=False)
    logs: LogReading = LogReading(Missing(Unread.NOT_TAKEN))
    kind: WorkloadKind = WorkloadKind.CONTAINER
    exited_in_window: bool = False          # restarted by Docker after an exit within the log window
    command: Tuple[str, ...] = ()           # what the container runs (Path and Args)

    @property
    def polled_queues(self) -> Optional[Tuple[str, ...]]:
        """The queues a Celery worker's command line names (`-Q a,b`, `--queues=a`), or None."""
        words = list(self.command)
        for index, word in enumerate(words):
            if word in ("-Q", "--queues") and index + 1 < len(words):
                return tuple(q for q in words[index + 1].split(",") if q)
            for flag in ("-Q", "--queues="):
                if word.startswith(flag) and len(word) > len(flag):
                    return tuple(q for q in word[len(flag):].lstrip("=").split(",") if q)
        return None

    @property
    def running(self) -> bool:
        return self.present is True and self.status == "running"

    @property
    def is_process(self) -> bool:
        return self.kind != WorkloadKind.CONTAINER


@dataclass(frozen=True)
class DockerReading:
    available: Optional[bool]               # None: not asked (host unreachable, or no role uses Docker)
    missing: Optional[Missing] = None
    used: bool = True


@dataclass(frozen=True)
class DotenvReading:
    path: Optional[str]
    values: Optional[Mapping[str, EnvValue]] = None
    missing: Optional[Missing] = None


@dataclass(frozen=True)
class CheckScript:
    command: str
    exit_status: Optional[int]
    output: str


@dataclass(frozen=True)
class InstanceRole:
    """What the host's instance metadata service said (asked when the app found no credentials)."""
    answers: bool
    role: Optional[str] = None
    error: str = ""


@dataclass(frozen=True)
class HostReport:
    name: str
    roles: Tuple[str, ...]
    address: str
    transport_kind: str                     # how the visit ended, in the transport's words
    reachable: bool = False                 # the agent ran (the transport said ok)
    transport_detail: str = ""
    seconds: float = 0.0
    docker: DockerReading = DockerReading(None, Missing(Unread.NOT_TAKEN))
    containers: Tuple[ContainerReading, ...] = ()
    all_containers: Tuple[Mapping[str, str], ...] = ()
    dotenv: DotenvReading = DotenvReading(None, None, Missing(Unread.NOT_TAKEN))
    probe: Optional[ProbeReading] = None
    check_script: Optional[CheckScript] = None
    clock_offset: Optional[float] = None    # the host's clock minus the controller's, beyond the round trip
    instance_role: Optional[InstanceRole] = None

    def container(self, role: str) -> Optional[ContainerReading]:
        return next((c for c in self.containers if c.role == role), None)


# -- raw JSON -> typed -------------------------------------------------------------------

def normalise_error_code(error: Mapping[str, Any]) -> Optional[str]:
    """The AWS error code, whatever the protocol wrapped it in.

    moto's JSON protocol answers auth failures as Code '403' with the real code
    in an XML <Code> in the message; SQS query errors carry QueryErrorCode."""
    if not error:
        return None
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")
    if (code.isdigit() or not code) and "<Code>" in message:
        code = message.split("<Code>", 1)[1].split("</Code>", 1)[0]
    if error.get("query_code") == "QueueDoesNotExist":
        code = "QueueDoesNotExist"
    return code or None


def _probe(raw):
    if raw is None:
        return None
    error = raw.get("error") or {}
    identity = raw.get("identity") or {}
    queues = tuple(QueueReading(key=q["key"], name=q["name"], region=q.get("region"), url=q.get("url"),
                                error_code=normalise_error_code(q.get("error")),
                                error_message=str((q.get("error") or {}).get("message", "")),
                                attributes=q.get("attributes") or {}, dead_letter=_dead_letter(q.get("dead_letter")))
                   for q in raw.get("queues", []))
    route = raw.get("proxy")
    clock = raw.get("aws_clock") or {}
    regions = {who: RegionReading((r or {}).get("value"), (r or {}).get("source"))
               for who, r in (raw.get("region") or {}).items()}
    cred = raw.get("credentials") or {}
    credentials = Credentials(cred.get("source"), cred.get("key_id"), cred.get("key_id_fp"), cred.get("secret_fp"),
                              bool(cred.get("looks_like_aws_key")), bool(cred.get("session_token")))
    problems = tuple(EnvProblem(p.get("variable", "?"), bool(p.get("public")), p.get("length", 0),
                                tuple(p.get("problems", ())), p.get("value")) for p in raw.get("env_problems", []))
    fallback = raw.get("python_fallback")
    return ProbeReading(env_source=raw.get("env_source", "?"), static=bool(raw.get("static")), env_problems=problems,
                        python_fallback=(fallback["configured"], fallback["ran"]) if fallback else None,
                        failure=ProbeFailure.parse(error["kind"], ProbeFailure.CRASHED) if error.get("kind") else None,
                        error_message=str(error.get("message", "")), note=raw.get("note"), python=raw.get("python"),
                        boto3=raw.get("boto3"), botocore=raw.get("botocore"), regions=regions,
                        credentials=credentials, account=identity.get("account"), arn=identity.get("arn"),
                        identity_error=normalise_error_code(identity.get("error")), queues=queues,
                        endpoints=raw.get("endpoints") or {}, settings_module=raw.get("settings_module"),
                        proxy=ProxyRoute(route.get("proxy"), route.get("endpoint", "?"), route.get("variables") or {})
                        if route else None, aws_skew=clock.get("skew_seconds"))


def _dead_letter(raw):
    if not raw:
        return None
    depth = raw.get("depth")
    return DeadLetter(str(raw.get("name", "?")), raw.get("max_receive_count"),
                      int(depth) if isinstance(depth, int) else None, normalise_error_code(raw.get("error")))


def _env(raw):
    return {name: EnvValue(e.get("fp", ""), e.get("value"), e.get("masked")) for name, e in (raw or {}).items()}


def _logs(raw):
    missing = _missing(raw)
    if missing:
        return LogReading(missing)
    markers = tuple(Marker(name, MarkerKind(m["kind"]), m.get("queue"), m.get("count", 0), m.get("last"),
                           tuple(JobSighting(*job) for job in m.get("jobs", [])), m.get("minutes") or {})
                    for name, m in (raw.get("markers") or {}).items())
    kms = raw.get("kms_denied")
    return LogReading(None, markers, raw.get("repeated_receipts") or {}, raw.get("lines", 0),
                      raw.get("truncated_at"), raw.get("oldest"), raw.get("longest_processing_seconds"),
                      exceptions=tuple(ExceptionGroup(g.get("type"), g.get("where"), str(g.get("message") or ""),
                                                      g.get("count", 0), g.get("first"), g.get("last"),
                                                      tuple(g.get("jobs") or ()), tuple(g.get("tasks") or ()))
                                      for g in raw.get("exceptions") or ()),
                      run_ends=tuple(RunEnd(e.get("at"), e.get("after"), e.get("job"), e.get("type"))
                                     for e in raw.get("exits") or ()),
                      open_jobs=tuple(OpenJob(job, at, age) for job, at, age in raw.get("open_jobs") or ()),
                      kms_denied=KmsDenied(kms.get("count", 0), kms.get("last"), tuple(kms.get("keys") or ()),
                                           tuple(kms.get("actions") or ())) if kms else None,
                      aliases={str(k): str(v) for k, v in (raw.get("aliases") or {}).items()})


def _container(raw, docker):
    kind = WorkloadKind(raw.get("kind", "docker"))
    if docker.missing and kind == WorkloadKind.CONTAINER:   # docker did not answer: nothing is known
        return ContainerReading(raw["name"], raw.get("role", ""), None, Missing(Unread.NOT_TAKEN, str(docker.missing)),
                                logs=LogReading(Missing(Unread.NOT_TAKEN, "docker did not answer")))
    present = raw.get("present")
    has_logs = present or kind != WorkloadKind.CONTAINER
    return ContainerReading(
        name=raw["name"], role=raw.get("role", ""), present=present, missing=_missing(raw) if present is None else None,
        status=raw.get("status"), restarting=bool(raw.get("restarting")), restart_count=raw.get("restart_count") or 0,
        started_at=raw.get("started_at"), image=raw.get("image"), env=_env(raw.get("env")),
        logs=_logs(raw.get("logs")) if has_logs else LogReading(Missing(Unread.NOT_TAKEN, "no container")),
        kind=kind, exited_in_window=bool(raw.get("exited_in_window")), command=tuple(raw.get("command") or ()))


def compact(run: Any) -> Any:
    """The compact record of a host's visit (a collect.HostRun): its typed reading instead of the
    parsed JSON. The run's own type makes the copy, so this module needs nothing of the fan-out."""
    return dataclasses.replace(run, facts=None, report=host_report(run))


def host_report(run: Any) -> HostReport:
    if run.report is not None:
        return run.report
    spec, facts = run.spec, run.facts
    base = dict(name=spec.name, roles=tuple(spec.roles), address=spec.address, transport_kind=str(run.outcome.kind),
                reachable=run.outcome.ok, transport_detail=run.outcome.detail, seconds=round(run.outcome.seconds, 2))
    if facts is None:
        return HostReport(**base)
    raw_docker = facts.get("docker") or {}
    used = raw_docker.get("used", True)
    docker = DockerReading(bool(raw_docker.get("available")) if used else None, _missing(raw_docker), used)
    inspected = list(facts.get("inspected", []))
    if docker.missing:      # the agent skips the containers: say which ones went unseen
        seen = {entry["name"] for entry in inspected}
        inspected += [w for w in facts.get("wanted", []) if w["name"] not in seen]
    raw_dotenv = facts.get("dotenv") or {}
    check = facts.get("check_script")
    role = facts.get("instance_role") or {}
    return HostReport(
        **base, docker=docker, containers=tuple(_container(entry, docker) for entry in inspected),
        all_containers=tuple(facts.get("containers", [])),
        dotenv=DotenvReading(raw_dotenv.get("path"), _env(raw_dotenv.get("env")) if "env" in raw_dotenv else None,
                             _missing(raw_dotenv)),
        probe=_probe(facts.get("probe")),
        check_script=CheckScript(check.get("command", ""), check.get("exit_status"), check.get("output", ""))
        if check else None, clock_offset=_clock_offset(facts),
        instance_role=InstanceRole(bool(role.get("answers")), role.get("role"), str(role.get("error") or ""))
        if role.get("read") else None)


def _clock_offset(facts):
    """The host's clock against the controller's: 0 when the host's reading falls between the
    moments the command was sent and its answer came back, else the distance to that interval."""
    host, window = facts.get("clock"), facts.get("controller_clock")
    if not isinstance(host, (int, float)) or not window or len(window) != 2:
        return None
    sent, received = window
    return round(host - sent if host < sent else host - received if host > received else 0.0, 1)
