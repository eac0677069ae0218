"""The pipeline in one place: inventory -> collect -> facts -> diagnosis.

`run_audit` returns an AuditResult that every renderer reads; the exit code
is derived from it, never from the renderer.
"""
import dataclasses
import time
from dataclasses import dataclass, field
from os import PathLike as _PathLike
from typing import Callable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from . import accounting, codes, collect, controller, crosshost, diagnosis, facts, fingerprints, inventory, queue_account
from .codes import Finding, Severity, Verdict
from .errors import ExitStatus
from .history import SinceOk
from .collect import HostRun
from .inventory import Bystander, HostSpec
from .progress import Progress
from .transports import OutcomeKind

PathLike = Union[str, _PathLike]


@dataclass(frozen=True)
class HostResult:
    report: facts.HostReport
    findings: Tuple[Finding, ...]           # the host's own (steps 0-3); fleet-wide ones are in AuditResult
    verdict: Verdict = Verdict.OK
    verdict_because: Tuple[str, ...] = ()   # the codes that decided the verdict


@dataclass(frozen=True)
class AuditResult:
    hosts: List[HostResult]
    findings: List[Finding]                 # every finding, hosts' and fleet-wide
    matrix: List[crosshost.Row]
    started: str
    seconds: float
    inventory: str
    cross_check: Optional[controller.QueueLocations] = None     # only when asked for
    interrupted: Tuple[str, ...] = ()       # hosts not audited because of a Ctrl-C or SIGTERM
    interrupted_by: str = ""                # "SIGINT" or "SIGTERM" when interrupted
    job_flow: Tuple[crosshost.QueueFlow, ...] = ()     # per queue and minute, for the HTML report
    since_ok: Mapping[str, SinceOk] = field(default_factory=dict)   # host -> what changed since it was last ok

    @property
    def exit_code(self) -> ExitStatus:
        """How the run ends, as its reports say it: an interrupted run by its signal."""
        if self.interrupted:
            return ExitStatus.TERMINATED if self.interrupted_by == "SIGTERM" else ExitStatus.INTERRUPTED
        return ExitStatus.FINDINGS if any(f.severity == Severity.ERROR for f in self.findings) else ExitStatus.OK


def run_audit(inventory_path: PathLike, hosts: Optional[str] = None, roles: Optional[str] = None,
              parallel: Optional[int] = None, accept_new: bool = False, progress: Optional[Progress] = None,
              run_check_script: Optional[bool] = None, baseline: Optional[dict] = None, cross_check: bool = False,
              cross_check_progress: Optional[Progress] = None, specs: Optional[List[HostSpec]] = None,
              announce: Optional[Callable[[str], None]] = None, left_out: Sequence[Bystander] = ()) -> "AuditResult":
    """The whole audit; `specs`, when the caller has read the inventory already, are its hosts and
    `left_out` the inventory's others; `announce(text)` says what the operator must know (host keys
    trusted on first use)."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    clock = time.monotonic()
    if specs is None:
        specs, left_out = choose(inventory_path, hosts, roles)
    try:
        specs, runs = collect_runs(inventory_path, parallel=parallel, accept_new=accept_new, progress=progress,
                                   run_check_script=run_check_script, specs=specs, announce=announce)
    except collect.Interrupted as stop:     # report the finished hosts; the rest are listed as not audited
        result = assess(stop.runs, started, time.monotonic() - clock, str(inventory_path), baseline,
                        left_out=left_out)
        return dataclasses.replace(result, interrupted_by=stop.signal, interrupted=tuple(
            r.spec.name for r in stop.runs if r.outcome.kind == OutcomeKind.NOT_AUDITED))
    check = run_cross_check(specs, runs, cross_check_progress) if cross_check else None
    return assess(runs, started, time.monotonic() - clock, str(inventory_path), baseline, check, left_out)


def choose(inventory_path: PathLike, hosts: Optional[str] = None,
           roles: Optional[str] = None) -> Tuple[List[HostSpec], Sequence[Bystander]]:
    """(the hosts to visit, the inventory's other hosts): a rule about a whole queue must know whose
    evidence an audit of part of the fleet (--hosts, --roles, check-host) did not gather."""
    read = inventory.Inventory(inventory_path)
    if roles:           # every host's roles are needed: their settings are built (once per group chain)
        chosen = inventory.select(read.specs(), hosts, roles)
    else:
        names = inventory.select_names(read.names, hosts)
        chosen = read.specs(names)
    return chosen, read.bystanders([spec.name for spec in chosen])


def collect_runs(inventory_path: PathLike, hosts: Optional[str] = None, roles: Optional[str] = None,
                 parallel: Optional[int] = None, accept_new: bool = False, progress: Optional[Progress] = None,
                 run_check_script: Optional[bool] = None, keep_raw: bool = False,
                 specs: Optional[List[HostSpec]] = None,
                 announce: Optional[Callable[[str], None]] = None) -> Tuple[List[HostSpec], List[HostRun]]:
    """(host specs, their HostRuns): the inventory read and every host visited once; each run keeps
    its typed reading, or with keep_raw the agent's parsed JSON."""
    if specs is None:
        specs = choose(inventory_path, hosts, roles)[0]
    inventory.check_key_files(specs)
    if run_check_script is not None:
        specs = [dataclasses.replace(s, settings=dataclasses.replace(s.settings, run_check_script=run_check_script))
                 for s in specs]
    parallel = parallel or specs[0].settings.parallel
    return specs, collect.collect(specs, fingerprints.operator_key(), parallel=parallel, accept_new=accept_new,
                                  progress=progress, compact=None if keep_raw else facts.compact, announce=announce)


def run_cross_check(specs: Sequence[HostSpec], runs: Sequence[HostRun],
                    progress: Optional[Progress] = None) -> controller.QueueLocations:
    """The controller's own look at every queue name the hosts use or should use: where each
    one is, and AWS's own account of it over the logs' window."""
    reports = [facts.host_report(run) for run in runs]
    names = {queue.name for spec in specs for queue in spec.settings.queues.values()}
    names |= {q.name for r in reports if r.probe for q in r.probe.queues}
    regions = {q.region for r in reports if r.probe for q in r.probe.queues}
    settings = specs[0].settings
    check = controller.cross_check(names, settings.cross_check, settings.timeouts.aws, regions, progress)
    return dataclasses.replace(check, accounts=queue_account.read_accounts(
        check, settings.log_window_seconds, settings.timeouts.aws, settings.cross_check))


def assess(runs: Sequence[HostRun], started: str = "", seconds: float = 0.0, inventory_path: str = "",
           baseline: Optional[dict] = None, check: Optional[controller.QueueLocations] = None,
           left_out: Sequence[Bystander] = ()) -> "AuditResult":
    """Pure: host runs -> the audit result. Rules first (per host, then fleet-wide), all
    reading facts; then one verdict pass over every finding naming each host. `left_out`: the
    inventory's hosts this audit did not visit (their evidence is missing, not clean)."""
    results = []
    settings = {}
    for run in runs:
        report = facts.host_report(run)
        results.append(HostResult(report, tuple(diagnosis.diagnose_host(report, run.spec.settings))))
        settings[run.spec.name] = run.spec.settings

    def settings_of(host):
        return settings[host.report.name]

    host_findings = [f for r in results for f in r.findings]
    users = crosshost.queue_users(results, settings_of, left_out)
    ledgers = accounting.ledgers_of(users, check.accounts, settings_of) if check is not None else {}
    fleet_findings = crosshost.cross_host_findings(results, settings_of, users, accounting.judged_keys(ledgers))
    if check is not None:
        fleet_findings += crosshost.cross_check_findings(results, check, settings_of)
        faulty = {name for f in host_findings + fleet_findings if f.severity == Severity.ERROR for name in f.hosts}
        fleet_findings += accounting.queue_account_findings(results, check, settings_of, users, ledgers, faulty)
    all_findings = _linked_to_causes(host_findings + fleet_findings)
    all_findings.sort(key=lambda f: (codes.SEVERITY_ORDER[f.severity], f.step, f.hosts, f.code))
    results = [with_verdict(r, all_findings) for r in results]
    return AuditResult(hosts=results, findings=all_findings,
                       matrix=crosshost.build_matrix(results, baseline, users.producer_names),
                       started=started, seconds=round(seconds, 2), inventory=inventory_path, cross_check=check,
                       job_flow=accounting.with_aws_counts(crosshost.job_flows(results, settings_of, users), ledgers))


def _linked_to_causes(findings: List[Finding]) -> List[Finding]:
    """Each consequence says which of its hosts' own findings explain it (evidence `explained_by`:
    host -> codes), as their verdicts follow those causes."""
    by_host: dict = {}
    for finding in findings:
        for host in finding.hosts:
            by_host.setdefault(host, []).append(finding)
    linked = []
    for finding in findings:
        if codes.CODES[finding.code].consequence:
            causes = {host: codes.causes_of(by_host[host]) for host in finding.hosts}
            explained = {host: list(found) for host, found in causes.items() if found}
            if explained:
                finding = dataclasses.replace(finding, evidence=dict(finding.evidence, explained_by=explained))
        linked.append(finding)
    return linked


def finding_set(result: "AuditResult") -> Set[Tuple[str, str, str]]:
    """{(host, code, severity)} of every finding, for exact comparisons."""
    return {(host, f.code, str(f.severity)) for f in result.findings for host in f.hosts}


def with_verdict(result: HostResult, findings: Sequence[Finding]) -> HostResult:
    verdict, because = codes.verdict(result.report.reachable, [f for f in findings if result.report.name in f.hosts])
    return dataclasses.replace(result, verdict=verdict, verdict_because=because)
