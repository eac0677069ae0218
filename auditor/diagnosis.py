"""Host reports -> findings, following the runbook. Pure: no I/O.

Step 1 is SQS from the app's own environment, step 2 the containers and their
logs, step 3 the API's logs. Rules read facts only (never verdicts); a rule
whose reading is missing stays silent, and the missing reading is a finding
of its own. Codes, severities and remedies come from `codes.CODES`.
"""
import dataclasses

from .codes import emit
from .facts import MarkerKind, ProbeFailure, Unread

RESTART_LOOP = 3
REPEATED_RECEIPTS = 3

AWS_ERROR_CODES = {
    "InvalidClientTokenId": "sqs-credentials-invalid",
    "UnrecognizedClientException": "sqs-credentials-invalid",
    "InvalidAccessKeyId": "sqs-credentials-invalid",
    "SignatureDoesNotMatch": "sqs-signature-mismatch",
    "IncompleteSignature": "sqs-signature-mismatch",
    "ExpiredToken": "sqs-credentials-expired",
    "ExpiredTokenException": "sqs-credentials-expired",
    "RequestExpired": "sqs-credentials-expired",
    "AccessDenied": "sqs-access-denied",
    "AccessDeniedException": "sqs-access-denied",
    "KMS.AccessDeniedException": "sqs-access-denied",
    "QueueDoesNotExist": "sqs-queue-missing",
    "AWS.SimpleQueueService.NonExistentQueue": "sqs-queue-missing",
    "NonExistentQueue": "sqs-queue-missing",
    "EndpointConnectionError": "sqs-endpoint-unreachable",
    "ConnectTimeoutError": "sqs-endpoint-unreachable",
    "ReadTimeoutError": "sqs-endpoint-unreachable",
    "ConnectionClosedError": "sqs-endpoint-unreachable",
    "NoCredentialsError": "sqs-credentials-missing",
    "NoRegionError": "sqs-region-missing",
}

TRANSPORT_CODES = {"unreachable": "ssh-unreachable", "protocol": "ssh-not-ssh", "auth-failed": "ssh-auth-failed",
                   "key-unusable": "ssh-key-unusable", "host-key-unknown": "ssh-host-key-unknown",
                   "host-key-changed": "ssh-host-key-changed", "host-key-revoked": "ssh-host-key-revoked",
                   "timeout": "ssh-timeout", "python-missing": "agent-python-missing", "error": "agent-failed",
                   "not-audited": "host-not-audited", "not-managed": "ssm-not-managed",
                   "denied": "ssm-access-denied", "delivery-timeout": "ssm-delivery-timeout",
                   "command-timeout": "ssm-command-timeout", "cancelled": "ssm-cancelled",
                   "output-too-large": "agent-output-too-large"}

PROBE_FAILURE_CODES = {ProbeFailure.BOTO3_MISSING: "probe-boto3-missing",
                       ProbeFailure.PYTHON_MISSING: "probe-python-missing",
                       ProbeFailure.CREDENTIALS_MISSING: "sqs-credentials-missing",
                       ProbeFailure.DOTENV_MISSING: "app-env-missing",
                       ProbeFailure.DOTENV_UNREADABLE: "app-env-unreadable",
                       ProbeFailure.CONTAINER_LOST: "probe-container-lost",
                       ProbeFailure.NOT_RUN: "probe-not-run"}

VALUE_FIXES = {
    "surrounding-quotes": "remove the quotes around {variable}'s value (docker --env-file keeps them; compose and "
                          "python-dotenv strip them)",
    "surrounding-whitespace": "remove the spaces around {variable}'s value",
    "control-characters": "remove the control characters from {variable} (often a CR from Windows line endings)",
    "invalid-region-name": "set {variable} to a region name such as ap-northeast-2",
    "invalid-endpoint-url": "set {variable} to an https:// URL, or remove it",
    "profile-not-found": "set AWS_PROFILE to a profile of the app's AWS config, or unset it",
}


def classify_aws_error(code):
    return AWS_ERROR_CODES.get(code or "", "sqs-error")


def app_variables(settings):
    """The app's own variable names, for remedies: they come from the inventory, not from here."""
    region_env = settings["region"]["env"]
    prefer = settings["credentials"].get("prefer") or []
    return {"region_var": region_env[0] if region_env else "the app's region setting",
            "app_keys": "%s/%s" % (prefer[0]["key_id"], prefer[0]["secret"]) if prefer
            else "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"}


def consumes(settings, role):
    return bool(settings["role_defs"].get(role, {}).get("consumes"))


def produces(settings, role):
    return bool(settings["role_defs"].get(role, {}).get("produces"))


# -- per-host rules ---------------------------------------------------------------

def diagnose_host(report, settings):
    """Findings for one host, in runbook order."""
    if not report.reachable:
        return [_transport_finding(report)]
    return _step1_sqs(report, settings) + _step2_containers(report, settings) + _step3_api(report, settings)


def _transport_finding(report):
    code = TRANSPORT_CODES.get(report.transport_kind, "agent-failed")
    return emit(code, [report.name], "%s: %s" % (report.name, report.transport_detail or code),
                {"transport": report.transport_kind}, detail=report.transport_detail, host=report.name)


def _step1_sqs(report, settings):
    probe, host = report.probe, report.name
    names = app_variables(settings)
    findings = _probe_failure(report, probe, names)
    if probe is not None and probe.has_values:
        findings += _queue_errors(report, probe, names)
        findings += _credential_and_region_rules(report, probe, settings, names)
        findings += _value_problems(report, probe)
    if probe is not None and probe.python_fallback:
        configured, ran = probe.python_fallback
        findings.append(emit("app-python-fallback", [host], "%s: %s is not in %s; the probe ran %s" % (
            host, configured, probe.env_source, ran), {"configured": configured, "ran": ran}, ran=ran))
    findings += _dotenv_rules(report, probe)
    script = report.check_script
    if script and script.exit_status != 0:
        findings.append(emit("check-script-failed", [host], "%s: the app's own check script exited %s"
                             % (host, script.exit_status), host=host))
    return findings


def _probe_failure(report, probe, names):
    """Why the probe did not run, unless another step says it: docker down (step 2), or a
    crash-looping container that died under it (step 2's container-restarting)."""
    if probe is None or probe.failure in (None, ProbeFailure.DOCKER_UNAVAILABLE):
        return []
    if probe.failure == ProbeFailure.CONTAINER_LOST and _crash_looping(report, probe):
        return []
    return [emit(PROBE_FAILURE_CODES.get(probe.failure, "probe-failed"), [report.name],
                 "%s: SQS probe in %s: %s" % (report.name, probe.env_source, probe.error_message[:200] or probe.failure),
                 {"failure": str(probe.failure)}, host=report.name, path=report.dotenv.path,
                 python="the host's Python", **names)]


def _crash_looping(report, probe):
    return any("container:%s" % c.name == probe.env_source and _restarting(c) for c in report.containers)


def _restarting(container):
    """Docker restarts it now, or has restarted it often, or after an exit within the log window."""
    return container.restarting or container.restart_count >= RESTART_LOOP or container.exited_in_window


def _queue_errors(report, probe, names):
    failing = {}
    for queue in probe.queues:
        if probe.app_region_refused and queue.error_code == "InvalidRegionError":
            continue            # no request was sent: env-value-invalid is the cause and the finding
        if not queue.ok and not probe.static:
            failing.setdefault(classify_aws_error(queue.error_code), []).append(queue)
    return [emit(code, [report.name], "%s: GetQueueUrl failed in region %s from %s: %s" % (
        report.name, queues[0].region, probe.env_source,
        ", ".join("%s (%s)" % (q.name, q.error_code) for q in queues)),
        {"queues": [q.name for q in queues], "region": queues[0].region, "error": queues[0].error_code,
         "detail": queues[0].error_message[:200]}, **names)
        for code, queues in failing.items()]


def _value_problems(report, probe):
    """Values the app's libraries refuse or misread: the variable, its value when public (escaped),
    structural facts only for secrets."""
    findings = []
    for problem in probe.env_problems:
        shown = "is %r" % problem.value if problem.public else "(%d characters, not shown)" % problem.length
        if list(problem.problems) == ["unknown-region"]:
            findings.append(emit("env-region-unknown", [report.name], "%s: %s %s: no region botocore knows" % (
                report.name, problem.variable, shown), {"variable": problem.variable}, variable=problem.variable))
            continue
        fix = "; ".join(VALUE_FIXES[p].format(variable=problem.variable) for p in problem.problems if p in VALUE_FIXES)
        findings.append(emit("env-value-invalid", [report.name], "%s: %s %s: %s" % (
            report.name, problem.variable, shown, ", ".join(problem.problems).replace("-", " ")),
            {"variable": problem.variable, "problems": list(problem.problems)}, fix=fix or "correct the value"))
    return findings


def _credential_and_region_rules(report, probe, settings, names):
    host, findings = report.name, []
    credentials = probe.credentials
    if credentials.key_id and not credentials.looks_like_aws_key:
        findings.append(emit(
            "not-aws-key", [host], "%s: the app's key id %s (from %s) cannot be an AWS key (AWS key ids are "
            "AKIA/ASIA + 16)" % (host, credentials.key_id, credentials.source),
            {"key_id": credentials.key_id, "source": credentials.source}, **names))
    app, boto, cli = probe.region("app"), probe.region("boto3"), probe.region("cli")
    disagreeing = {who: value for who, value in (("boto3", boto), ("aws-cli", cli)) if value and value != app}
    if disagreeing:
        findings.append(emit(
            "region-env-conflict", [host], "%s: the app uses %s (%s) but %s" % (
                host, app, probe.regions["app"].source,
                ", ".join("%s uses %s" % (who, value) for who, value in disagreeing.items())),
            {"app": app, "boto3": boto, "cli": cli}, **names))
    allowed = set(settings.get("allowed_endpoints") or [])
    overrides = {k: v for k, v in probe.endpoints.items() if v not in allowed}
    if overrides:
        findings.append(emit("endpoint-override", [host], "%s: the app's AWS endpoint is overridden: %s" % (
            host, ", ".join("%s=%s" % item for item in overrides.items())), dict(overrides)))
    return findings


def _dotenv_rules(report, probe):
    """A running container against the .env its next start will read; an unreadable .env said once."""
    dotenv = report.dotenv
    if dotenv.missing is not None:
        probe_said_it = probe is not None and probe.failure in (ProbeFailure.DOTENV_MISSING,
                                                                ProbeFailure.DOTENV_UNREADABLE)
        if dotenv.missing.reason == Unread.NOT_FOUND or probe_said_it:
            return []           # no .env is a fact (container mode needs none); dotenv mode reported it
        return [emit("dotenv-unreadable", [report.name], "%s: cannot read %s (%s)" % (
            report.name, dotenv.path, dotenv.missing), {"reason": str(dotenv.missing.reason)}, path=dotenv.path)]
    findings = []
    for container in report.containers:
        if not container.running or container.is_process or not dotenv.values:
            continue
        differing = sorted(name for name, entry in dotenv.values.items()
                           if name not in container.env or container.env[name].fp != entry.fp)
        if differing:
            shown = ["%s (running %s, .env %s)" % (
                name, container.env[name].display() if name in container.env else "unset",
                dotenv.values[name].display()) for name in differing]
            findings.append(emit(
                "stale-env", [report.name], "%s: %s runs with an environment that differs from the .env on disk: "
                "%s" % (report.name, container.name, "; ".join(shown)),
                {"container": container.name, "variables": differing}, container=container.name))
    return findings


def _step2_containers(report, settings):
    host = report.name
    docker = report.docker
    if docker.used and docker.missing is not None:
        if docker.missing.reason == Unread.DOCKER_MISSING:
            return [emit("docker-missing", [host], "%s: no docker command: %s" % (host, docker.missing.detail[:200]))]
        return [emit("docker-unavailable", [host], "%s: docker does not answer (%s): the state and logs of %s are "
                     "unknown" % (host, docker.missing, ", ".join(c.name for c in report.containers) or "its containers"),
                     {"reason": str(docker.missing.reason)}, cause=docker.missing.reason)]
    findings = []
    for container in report.containers:
        found = _process_state(host, container, settings) if container.is_process \
            else _container_state(host, container)
        if container.present or container.is_process:
            found += _log_evidence(host, container)
        if container.logs.read and consumes(settings, container.role):
            queues = [report.probe.queue(key) for key in settings["role_defs"][container.role]["consumes"]
                      if report.probe is not None and report.probe.ran and report.probe.queue(key)]
            found += _worker_activity(host, container, queues)
        # which workload each finding is about: check-host shows it under that workload's step
        findings += [dataclasses.replace(f, evidence=dict(f.evidence, workload=container.name)) for f in found]
    return findings


def _process_state(host, process, settings):
    """A plain process is named by what was checked: its systemd unit, or the `process` pattern
    pgrep looked for (a file-logging workload's name is its log file)."""
    if process.present and not process.running:
        source = settings["role_defs"][process.role].get("log_source") or {}
        if source.get("kind") == "journald":
            seen, start = "unit %s is %s" % (source["unit"], process.status), "systemctl start %s" % source["unit"]
        else:
            seen = "no process matches %r (pgrep -f; its log: %s)" % (source.get("process"), process.name)
            start = "the service or supervisor that runs %r" % source.get("process")
        return [emit("process-not-running", [host], "%s: role %s: %s" % (host, process.role, seen),
                     name=process.name, start=start)]
    return []       # running, or no way to tell was configured


def _container_state(host, container):
    name = container.name
    if container.present is None:
        return [emit("docker-unavailable", [host], "%s: could not inspect %s (%s)" % (host, name, container.missing),
                     {"container": name}, cause=container.missing.reason)]
    if not container.present:
        return [emit("container-missing", [host], "%s: no container named %s (role %s)" % (host, name, container.role),
                     container=name)]
    # a crash-looping container is caught between restarts as often as during one; and Docker's restart
    # policy restarting it after an exit within the window is a crash now, from the first restart
    if _restarting(container):
        return [emit("container-restarting", [host], "%s: %s is restarting (restart count %d%s)" % (
            host, name, container.restart_count, ", last exit within the log window" if container.exited_in_window
            else ""), {"restart_count": container.restart_count}, container=name)]
    if container.status != "running":
        return [emit("container-not-running", [host], "%s: %s is %s" % (host, name, container.status),
                     container=name)]
    return []


def _log_evidence(host, container):
    logs = container.logs
    if not logs.read:
        return [emit("logs-unreadable", [host], "%s: the logs of %s could not be read (%s): its activity is unknown"
                     % (host, container.name, logs.missing), {"container": container.name,
                                                               "reason": str(logs.missing.reason)},
                     cause=logs.missing.reason, container=container.name)]
    if logs.truncated_at:
        return [emit("logs-truncated", [host], "%s: %s logged more than %d bytes in the window; only lines since %s "
                     "were read" % (host, container.name, logs.truncated_at, logs.oldest or "?"),
                     {"container": container.name, "bytes": logs.truncated_at, "since": logs.oldest})]
    return []


def _worker_activity(host, container, queues):
    """Errors, redeliveries and idleness of one worker, from its logs and its own queue readings."""
    logs, name, findings = container.logs, container.name, []
    errors = logs.count(MarkerKind.ERROR)
    if errors:
        findings.append(emit("worker-sqs-errors", [host], "%s: %s logged %d SQS error line(s) in the window, last at %s"
                             % (host, name, errors, logs.last(MarkerKind.ERROR)), {"count": errors}))
    completed = {s.job for s in logs.jobs(MarkerKind.COMPLETED)}
    repeated = {job: n for job, n in logs.repeated_receipts.items() if n >= REPEATED_RECEIPTS and job not in completed}
    if repeated:
        findings.append(emit("job-repeated-failure", [host], "%s: %s received the same job(s) again and again without "
                             "completing them: %s" % (host, name, ", ".join("%s x%d" % i for i in repeated.items())),
                             {"jobs": repeated}))
    findings += _processed_twice(host, container, queues, completed, repeated)
    waiting = sum(q.waiting or 0 for q in queues if q.ok)
    idle = container.running and not errors and not logs.count(MarkerKind.RECEIVED) and waiting > 0
    if idle:
        findings.append(emit("worker-idle", [host], "%s: %s runs and reaches its queue, %d message(s) wait there, "
                             "and it received none in the window" % (host, name, waiting), {"waiting": waiting}))
    active = any(logs.count(kind) for kind in (MarkerKind.STARTED, MarkerKind.RECEIVED, MarkerKind.COMPLETED))
    if container.running and not errors and not active and not idle:
        findings.append(emit("worker-no-activity", [host], "%s: %s logged no start, receive or completion in the window"
                             % (host, name)))
    return findings


def _processed_twice(host, container, queues, completed, repeated):
    """Jobs received more than once that were finished (or whose delete failed): run twice."""
    logs = container.logs
    delete_failed = {s.job for s in logs.jobs(MarkerKind.DELETE_FAILED)}
    twice = {job: n for job, n in logs.repeated_receipts.items()
             if n >= 2 and job not in repeated and (job in completed or job in delete_failed
                                                    or logs.count(MarkerKind.DELETE_FAILED))}
    if not twice:
        return []
    timeout = min((q.visibility_timeout for q in queues if q.visibility_timeout is not None), default=None)
    longest = logs.longest_processing
    if logs.count(MarkerKind.DELETE_FAILED):
        cause = "delete-failed"
    elif longest is not None and timeout is not None and longest > timeout:
        cause = "visibility-timeout"
    else:
        cause = "not-deleted"
    return [emit("job-processed-twice", [host], "%s: %s received %d job(s) more than once: %s (%s; %d failed "
                 "delete(s) logged, longest job %ss, visibility timeout %ss)" % (
                     host, container.name, len(twice), ", ".join("%s x%d" % i for i in sorted(twice.items())[:10]),
                     cause.replace("-", " "), logs.count(MarkerKind.DELETE_FAILED),
                     "?" if longest is None else round(longest, 1), "?" if timeout is None else timeout),
                 {"jobs": twice, "cause": cause, "longest": longest, "visibility_timeout": timeout},
                 cause=cause, seconds=longest, timeout=timeout)]


def _step3_api(report, settings):
    findings = []
    for container in report.containers:
        if not produces(settings, container.role) or not container.logs.read:
            continue
        failures = container.logs.count(MarkerKind.ENQUEUE_FAILED)
        if failures:
            findings.append(emit("api-enqueue-failures", [report.name], "%s: %s logged %d failed enqueue(s) in the "
                                 "window, last at %s" % (report.name, container.name, failures,
                                                         container.logs.last(MarkerKind.ENQUEUE_FAILED)),
                                 {"count": failures}))
    return findings
