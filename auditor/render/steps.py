"""`fab check-host`: one host, the runbook's three steps in order, each with what
was seen, its verdict and the remedies; the app's own check script beside it."""
from typing import TYPE_CHECKING, Collection, Optional, Sequence

from ..codes import CODES, Finding, Verdict
from .sanitize import terminal

if TYPE_CHECKING:
    from ..audit import HostResult
    from ..controller import QueueLocations

STEPS = {
    0: "Step 0 - reach the host (SSH, agent)",
    1: "Step 1 - SQS from the app's own environment",
    2: "Step 2 - worker containers and their logs",
    3: "Step 3 - API logs",
}


def _step_workloads(step, host, api_roles):
    """Step 3 is the producers' (the API's) workloads, step 2 everyone else's: by the role's
    definition, never by what its logs happened to show."""
    return [c for c in host.report.containers if (step == 3) == (c.role in api_roles)]


def _inapplicable(step, host, api_roles):
    """Why step 2 or 3 has nothing to examine on this host (no workload of its kind), else None."""
    if step not in (2, 3) or _step_workloads(step, host, api_roles) or \
            (step == 2 and host.report.docker.missing is not None):
        return None
    return "no %s on this host (roles: %s)" % ("API (producer) workload" if step == 3 else "worker workload",
                                               ", ".join(host.report.roles) or "none")


def _findings_of(step, host, api_roles):
    """A step's findings; one about a workload (a container's state, its logs) goes to the step
    that workload belongs to, so the API's unreadable logs are step 3's, not a worker's."""
    api_workloads = {c.name for c in _step_workloads(3, host, api_roles)}

    def step_of(finding):
        if finding.step in (2, 3) and finding.evidence.get("workload"):
            return 3 if finding.evidence["workload"] in api_workloads else 2
        return finding.step
    return [f for f in host.findings if step_of(f) == step]


def _unjudged(step, host, api_roles):
    """Why a step's evidence is missing (empty when it is all there): such a step is not judged."""
    probe = host.report.probe
    if step == 1:
        if probe is None:
            return ["the SQS probe did not run"]
        if not probe.has_values:
            return ["the SQS probe did not run to the end (%s)" % probe.failure]
        return []
    reasons = []
    for c in _step_workloads(step, host, api_roles):
        if c.present is None and not (c.is_process and c.missing is None):
            reasons.append("%s could not be inspected (%s)" % (c.name, c.missing))
        elif c.present is not False and not c.logs.read:
            reasons.append("the logs of %s were not read (%s)" % (c.name, c.logs.missing))
    return reasons


def _seen(step, host, api_roles):
    report, probe = host.report, host.report.probe
    if step == 0:
        return ["%s (%s) in %.1fs" % (report.transport_kind, report.address, report.seconds)]
    if step == 1:
        if probe is None:
            return ["not run"]
        lines = ["environment: %s" % probe.env_source]
        if probe.note:
            lines.append("note: %s" % probe.note)
        if probe.failure:
            return lines + ["probe error: %s: %s" % (probe.failure, probe.error_message[:300])]
        app = probe.regions.get("app")
        lines.append("region: app %s (%s), boto3 %s, aws-cli %s" % (
            probe.region("app"), app.source if app else "?", probe.region("boto3") or "unset",
            probe.region("cli") or "unset"))
        cred = probe.credentials
        lines.append("credentials: %s from %s, secret fp %s" % (cred.key_id, cred.source, cred.secret_fp))
        lines.append("identity: %s" % (probe.arn or probe.identity_error))
        lines.append("python %s, boto3 %s, botocore %s" % (probe.python, probe.boto3, probe.botocore))
        for q in probe.queues:
            if q.ok:
                visible = q.attributes.get("ApproximateNumberOfMessages", "?")
                lines.append("[%s] %s: get_queue_url OK (%s), %s visible" % (q.key, q.name, q.url, visible))
            else:
                lines.append("[%s] %s: FAIL %s" % (q.key, q.name, q.error_code))
        if report.check_script:
            lines.append("app's own check script (exit %s):" % report.check_script.exit_status)
            lines += ["  | " + line for line in report.check_script.output.splitlines()]
        return lines
    lines = []
    for c in _step_workloads(step, host, api_roles):
        if c.present is None:
            state = "unknown (%s)" % c.missing
        elif not c.present:
            state = "missing"
        else:
            state = "%s, restarts %d, image %s" % (c.status, c.restart_count, c.image or "?")
        lines.append("%s: %s" % (c.name, state))
        if c.present and not c.logs.read:
            lines.append("  logs not read: %s" % c.logs.missing)
        for marker in c.logs.markers:
            lines.append("  %-22s %4d  last %s" % (marker.name, marker.count, marker.last or "-"))
    if step == 2 and report.docker.missing is not None:
        lines.append("docker: %s" % report.docker.missing)
    return lines


def _where(host, check):
    """The controller's sightings of this host's queues (`--cross-check`)."""
    names = [q.name for q in host.report.probe.queues] if host.report.probe else list(check.names)
    lines = []
    for name in names:
        places = ["%s (account %s, %s waiting)" % (s.region, s.account, "?" if s.visible is None else s.visible)
                  for s in check.where(name)]
        lines.append("%s: %s" % (name, ", ".join(places) or "in none of the %d region(s) searched" % len(check.regions)))
    return lines


def _section(out, title, seen, found, unjudged=(), inapplicable=None):
    """A step's verdict: FAIL on an error that judges (not one that only says evidence is
    missing); NOT JUDGED, with why, when its evidence is missing (never OK then); WARN on other
    findings; NOT APPLICABLE, with why, when the step had nothing on this host to examine (an OK
    there would claim a check that never ran); OK."""
    if any(f.severity == "error" and CODES[f.code].verdict != Verdict.UNKNOWN for f in found):
        verdict = "FAIL"
    elif unjudged:
        verdict = "NOT JUDGED (%s)" % "; ".join(unjudged)
    elif found:
        verdict = "WARN"
    else:
        verdict = "NOT APPLICABLE (%s)" % inapplicable if inapplicable else "OK"
    out.append("%s: %s" % (title, verdict))
    out += ["    " + line for line in seen]
    for f in found:
        out.append("  ! %s %s: %s" % (f.severity, f.code, f.message))
        out.append("    fix: %s" % f.remedy)
    out.append("")


def render_steps(host: "HostResult", check: Optional["QueueLocations"] = None, fleet_findings: Sequence[Finding] = (),
                 api_roles: Collection[str] = ()) -> str:
    """The runbook's steps for one host; with a cross-check, where its queues really are.
    `api_roles`: the roles that produce jobs (their workloads are step 3's)."""
    because = " (because %s)" % ", ".join(host.verdict_because) if host.verdict_because else ""
    out = ["%s (%s): verdict %s%s" % (host.report.name, ",".join(host.report.roles) or "no role", host.verdict, because),
           ""]
    steps = [0] if not host.report.reachable else [1, 2, 3]
    for step in steps:
        _section(out, STEPS[step], _seen(step, host, api_roles), _findings_of(step, host, api_roles),
                 _unjudged(step, host, api_roles) if step else (), _inapplicable(step, host, api_roles))
    if check is not None:
        _section(out, "Where the queues are (the controller's own AWS view)", _where(host, check),
                 [f for f in fleet_findings if f.code in ("queue-elsewhere", "cross-check-failed")])
    return terminal("\n".join(out))      # every line holds host data: shown with its controls escaped
