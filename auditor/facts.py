"""Raw agent JSON -> typed host reports. Pure: no I/O.

"Unknown" (None) is kept apart from "empty": a host we could not reach has
`probe=None`, not an empty probe.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .collect import HostRun


@dataclass(frozen=True)
class QueueReading:
    key: str
    name: str
    region: Optional[str]
    url: Optional[str] = None
    error_code: Optional[str] = None
    error_message: str = ""
    attributes: dict = field(default_factory=dict, compare=False)

    @property
    def ok(self):
        return self.url is not None


@dataclass(frozen=True)
class ProbeReading:
    env_source: str
    error_kind: Optional[str] = None
    error_message: str = ""
    note: Optional[str] = None
    python: Optional[str] = None
    boto3: Optional[str] = None
    botocore: Optional[str] = None
    regions: dict = field(default_factory=dict, compare=False)     # app/boto3/cli -> {value, source}
    credentials: dict = field(default_factory=dict, compare=False)
    account: Optional[str] = None
    arn: Optional[str] = None
    identity_error: Optional[str] = None
    queues: Tuple[QueueReading, ...] = ()
    endpoints: dict = field(default_factory=dict, compare=False)
    settings_module: Optional[str] = None

    def region(self, who="app"):
        return (self.regions.get(who) or {}).get("value")


@dataclass(frozen=True)
class ContainerReading:
    name: str
    role: str
    present: bool
    status: Optional[str] = None
    restarting: bool = False
    restart_count: int = 0
    started_at: Optional[str] = None
    image: Optional[str] = None
    env: dict = field(default_factory=dict, compare=False)          # name -> {fp, value?, masked?}
    markers: dict = field(default_factory=dict, compare=False)      # name -> {kind, count, last, jobs}
    repeated_receipts: dict = field(default_factory=dict, compare=False)
    log_error: Optional[str] = None

    def count(self, kind):
        return sum(m["count"] for m in self.markers.values() if m["kind"] == kind)

    def jobs(self, kind):
        return [job for m in self.markers.values() if m["kind"] == kind for job in m["jobs"]]

    def last(self, *kinds):
        stamps = [m["last"] for m in self.markers.values() if m["kind"] in kinds and m["last"]]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class HostReport:
    name: str
    roles: Tuple[str, ...]
    address: str
    transport_kind: str
    transport_detail: str = ""
    seconds: float = 0.0
    docker_available: Optional[bool] = None
    docker_error: str = ""
    docker_missing: bool = False            # no docker CLI at all, rather than a daemon that does not answer
    containers: Tuple[ContainerReading, ...] = ()
    all_containers: Tuple[dict, ...] = ()
    dotenv: Optional[dict] = None               # name -> {fp, value?, masked?}; None when unreadable
    dotenv_error: Optional[str] = None
    probe: Optional[ProbeReading] = None
    check_script: Optional[dict] = None

    @property
    def reachable(self):
        return self.transport_kind == "ok"


def _probe(raw):
    if raw is None:
        return None
    error = raw.get("error") or {}
    identity = raw.get("identity") or {}
    queues = tuple(QueueReading(key=q["key"], name=q["name"], region=q.get("region"), url=q.get("url"),
                                error_code=normalise_error_code(q.get("error")),
                                error_message=(q.get("error") or {}).get("message", ""),
                                attributes=q.get("attributes") or {}) for q in raw.get("queues", []))
    return ProbeReading(env_source=raw.get("env_source", "?"), error_kind=error.get("kind"),
                        error_message=error.get("message", ""), note=raw.get("note"), python=raw.get("python"),
                        boto3=raw.get("boto3"), botocore=raw.get("botocore"), regions=raw.get("region") or {},
                        credentials=raw.get("credentials") or {}, account=identity.get("account"),
                        arn=identity.get("arn"), identity_error=normalise_error_code(identity.get("error")),
                        queues=queues, endpoints=raw.get("endpoints") or {},
                        settings_module=raw.get("settings_module"))


def normalise_error_code(error):
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


def host_report(run: HostRun) -> HostReport:
    spec, facts = run.spec, run.facts
    base = dict(name=spec.name, roles=spec.roles, address=spec.address, transport_kind=run.outcome.kind,
                transport_detail=run.outcome.detail, seconds=round(run.outcome.seconds, 2))
    if facts is None:
        return HostReport(**base)
    containers = []
    for entry in facts.get("inspected", []):
        logs = entry.get("logs") or {}
        containers.append(ContainerReading(
            name=entry["name"], role=entry.get("role", ""), present=entry.get("present", False),
            status=entry.get("status"), restarting=bool(entry.get("restarting")),
            restart_count=entry.get("restart_count") or 0, started_at=entry.get("started_at"),
            image=entry.get("image"), env=entry.get("env") or {}, markers=logs.get("markers") or {},
            repeated_receipts=logs.get("repeated_receipts") or {}, log_error=logs.get("error")))
    dotenv = facts.get("dotenv") or {}
    return HostReport(**base, docker_available=facts["docker"].get("available"),
                      docker_error=facts["docker"].get("error", ""),
                      docker_missing=facts["docker"].get("kind") == "docker-missing", containers=tuple(containers),
                      all_containers=tuple(facts.get("containers", [])), dotenv=dotenv.get("env"),
                      dotenv_error=dotenv.get("error"), probe=_probe(facts.get("probe")),
                      check_script=facts.get("check_script"))
