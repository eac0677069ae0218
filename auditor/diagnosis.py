"""Host reports -> findings, following the runbook. Pure: no I/O.

Step 1 is SQS from the app's own environment, step 2 the containers and their
logs, step 3 the API's logs. Rules read facts only (never verdicts); a rule
whose reading is missing stays silent, and the missing reading is a finding
of its own. Codes, severities and remedies come from `codes.CODES`.
"""
import dataclasses
import re
import urllib.parse
from collections import Counter

from typing import Dict, List, Optional, Sequence, Tuple

from .codes import Finding, emit
from .shell import command
from .transports import failure_codes
from .facts import ContainerReading, ExceptionGroup, HostReport, MarkerKind, OpenJob, ProbeFailure, QueueReading, \
    Unread, WorkloadKind
from .settings import Settings

RESTART_LOOP = 3
REPEATED_RECEIPTS = 3
CLOCK_TOLERANCE = 300       # seconds: AWS refuses a request signed further off than this
SKEW_ERRORS = {"SignatureDoesNotMatch", "RequestExpired", "InvalidSignatureException", "RequestTimeTooSkewed"}
CONNECTION_ERRORS = {"ProxyConnectionError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                     "ConnectionClosedError", "HTTPClientError", "SSLError"}
# exception types that are AWS's answers or its transport's: the config side (step 1), not the code's
AWS_EXCEPTION_TYPES = CONNECTION_ERRORS | {"ClientError", "NoCredentialsError", "NoRegionError",
                                           "PartialCredentialsError", "CredentialRetrievalError", "QueueDoesNotExist"}

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
    "ProxyConnectionError": "sqs-endpoint-unreachable",
}

PROBE_FAILURE_CODES = {ProbeFailure.BOTO3_MISSING: "probe-boto3-missing",
                       ProbeFailure.PYTHON_MISSING: "probe-python-missing",
                       ProbeFailure.CREDENTIALS_MISSING: "sqs-credentials-missing",
                       ProbeFailure.DOTENV_MISSING: "app-env-missing",
                       ProbeFailure.DOTENV_UNREADABLE: "app-env-unreadable",
                       ProbeFailure.CONTAINER_LOST: "probe-container-lost",
                       ProbeFailure.NOT_RUN: "probe-not-run",
                       ProbeFailure.CELERY_UNREADABLE: "celery-app-unreadable"}

VALUE_FIXES = {
    "surrounding-quotes": "remove the quotes around {variable}'s value (docker --env-file keeps them; compose and "
                          "python-dotenv strip them)",
    "surrounding-whitespace": "remove the spaces around {variable}'s value",
    "control-characters": "remove the control characters from {variable} (often a CR from Windows line endings)",
    "invalid-region-name": "set {variable} to a region name such as us-east-1",
    "invalid-endpoint-url": "set {variable} to an https:// URL, or remove it",
    "profile-not-found": "set AWS_PROFILE to a profile of the app's AWS config, or unset it",
}


def classify_aws_error(code: str) -> str:
    return AWS_ERROR_CODES.get(code or "", "sqs-error")


def app_variables(settings: Settings) -> Dict[str, str]:
    """The app's own variable names, for remedies: they come from the inventory, not from here."""
    region_env = settings.region.env
    prefer = settings.credentials.prefer
    return {"region_var": region_env[0] if region_env else "the app's region setting",
            "app_keys": "%s/%s" % (prefer[0].key_id, prefer[0].secret) if prefer
            else "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            "create_queue": settings.queue_create_hint,
            "job_id_hint": "; " + settings.job_id_hint if settings.job_id_hint else ""}


# -- per-host rules ---------------------------------------------------------------

def diagnose_host(report: HostReport, settings: Settings) -> List[Finding]:
    """Findings for one host, in runbook order."""
    if not report.reachable:
        return [_transport_finding(report)]
    return _step1_sqs(report, settings) + _step2_containers(report, settings) + _step3_api(report, settings)


def _transport_finding(report):
    code = failure_codes().get(str(report.transport_kind), "agent-failed")
    return emit(code, [report.name], "%s: %s" % (report.name, report.transport_detail or code),
                {"transport": report.transport_kind}, detail=report.transport_detail, host=report.name)


def _step1_sqs(report, settings):
    probe, host = report.probe, report.name
    names = app_variables(settings)
    findings = _probe_failure(report, probe, names) + _clock_rules(report)
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
    if script and script.exit_status not in (0, None):       # None: no check script is configured
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
    role = report.instance_role
    if probe.failure == ProbeFailure.CREDENTIALS_MISSING and role is not None and role.answers and role.role:
        return [emit("container-no-instance-role", [report.name], "%s: the app in %s finds no credentials, but the "
                     "host's instance metadata service offers the role %s: the container does not reach it" % (
                         report.name, probe.env_source, role.role), {"role": role.role})]
    return [emit(PROBE_FAILURE_CODES.get(probe.failure, "probe-failed"), [report.name],
                 "%s: SQS probe in %s: %s" % (report.name, probe.env_source, probe.error_message[:200] or probe.failure),
                 {"failure": str(probe.failure)}, host=report.name, path=report.dotenv.path,
                 python="the host's Python", **names)]


def _crash_looping(report, probe):
    return any("container:%s" % c.name == probe.env_source and _restarting(c) for c in report.containers)


def _restarting(container):
    """Docker restarts it now, or has restarted it often, or after an exit within the log window."""
    return container.restarting or container.restart_count >= RESTART_LOOP or container.exited_in_window


def clock_skew(report: HostReport) -> Optional[Tuple[float, str]]:
    """(seconds, against what) when the host's clock is off by more than AWS tolerates, else None."""
    readings = ((report.clock_offset, "the controller's clock"),
                (report.probe.aws_skew if report.probe is not None else None, "the Date of AWS's answer"))
    return next(((value, against) for value, against in readings
                 if value is not None and abs(value) > CLOCK_TOLERANCE), None)


def _clock_rules(report):
    skew = clock_skew(report)
    if skew is None:
        return []
    seconds, against = skew
    return [emit("host-clock-skew", [report.name], "%s: the host's clock is %ds %s %s (AWS refuses requests "
                 "signed more than %ds off)" % (report.name, abs(seconds), "ahead of" if seconds > 0 else "behind",
                                                against, CLOCK_TOLERANCE),
                 {"seconds": seconds, "against": against})]


def _queue_errors(report, probe, names):
    failing, proxied = {}, []
    skewed = clock_skew(report) is not None
    route = probe.proxy if probe.proxy is not None and probe.proxy.proxy else None
    for queue in probe.queues:
        if probe.app_region_refused and queue.error_code == "InvalidRegionError":
            continue            # no request was sent: env-value-invalid is the cause and the finding
        if queue.ok or probe.static:
            continue
        if skewed and queue.error_code in SKEW_ERRORS:
            continue            # the clock is the cause: host-clock-skew says it
        if route is not None and queue.error_code in CONNECTION_ERRORS:
            proxied.append(queue)
        else:
            failing.setdefault(classify_aws_error(queue.error_code), []).append(queue)
    findings = []
    if proxied:
        host = urllib.parse.urlparse(route.endpoint).hostname or route.endpoint
        findings.append(emit("sqs-via-proxy", [report.name], "%s: %s sends SQS requests for %s through the proxy %s "
                             "(%s), and they fail: %s" % (
                                 report.name, probe.env_source, route.endpoint, route.proxy,
                                 ", ".join("%s=%s" % item for item in sorted(route.variables.items())),
                                 ", ".join("%s (%s)" % (q.name, q.error_code) for q in proxied)),
                             {"proxy": route.proxy, "endpoint": route.endpoint, "queues": [q.name for q in proxied]},
                             endpoint_host=host, proxy=route.proxy))
    return findings + [emit(code, [report.name], "%s: GetQueueUrl failed in region %s from %s: %s" % (
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
    allowed = set(settings.allowed_endpoints)
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
            report.name, dotenv.path, dotenv.missing), {"reason": str(dotenv.missing.reason)}, path=dotenv.path,
            cause=dotenv.missing.reason)]
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
            else _container_state(host, container, settings)
        if container.present or container.is_process:
            found += _log_evidence(host, container) + _kms_denied(host, container)
        if container.logs.read and settings.consumes(container.role):
            probed = [q.key for q in report.probe.queues if container.polled_queues is None or
                      q.key in container.polled_queues] if report.probe is not None else []
            queues = [report.probe.queue(key) for key in settings.queue_keys(container.role, "consumes", probed)
                      if report.probe is not None and report.probe.ran and report.probe.queue(key)]
            named = {f.evidence["job"] for f in found if f.code == "job-crash-loop"}
            at_start = any(f.code.startswith("worker-start-") for f in found)
            found += _worker_activity(host, container, queues, settings, named, at_start)
        # which workload each finding is about: check-host shows it under that workload's step
        findings += [dataclasses.replace(f, evidence=dict(f.evidence, workload=container.name)) for f in found]
    return findings


def _process_state(host, process, settings):
    """A plain process is named by what was checked: its systemd unit, or the `process` pattern
    pgrep looked for (a file-logging workload's name is its log file)."""
    if process.present and not process.running:
        source = settings.role(process.role).log_source
        if source.kind == WorkloadKind.JOURNALD:
            seen, start = "unit %s is %s" % (source.unit, process.status), command("systemctl", "start", source.unit)
        else:
            seen = "no process matches %r (pgrep -f; its log: %s)" % (source.process, process.name)
            start = "the service or supervisor that runs %r" % source.process
        return [emit("process-not-running", [host], "%s: role %s: %s" % (host, process.role, seen),
                     name=process.name, start=start)]
    if process.present is None and process.missing is not None:        # a way to tell, and it failed
        source = settings.role(process.role).log_source
        check = command("systemctl", "is-active", source.unit) if source.kind == WorkloadKind.JOURNALD else \
            command("pgrep", "-f", source.process)
        return [emit("process-state-unknown", [host], "%s: role %s: could not tell whether it runs (%s: %s)" % (
            host, process.role, check, process.missing), {"reason": str(process.missing.reason)}, check=check)]
    return []       # running, or no way to tell was configured


def _container_state(host, container, settings):
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
        loop = crash_loop_job(container)
        if loop is not None:
            job, exits, error = loop
            return [emit("job-crash-loop", [host], "%s: %s exited %d time(s) in the window right after %s failed%s, "
                         "and was restarted (restart count %d)" % (
                             host, name, exits, _job_label(container, settings, job),
                             " (%s)" % error if error else "", container.restart_count),
                         {"job": job, "exits": exits, "error": error}, job=job, error=error or "see its traceback")]
        startup = startup_failure(container)
        if startup is not None:
            group, cause = startup
            return [emit("worker-start-" + cause, [host], "%s: %s exits at start, run after run (%d time(s) in the "
                         "window, restart count %d), before any job: %s" % (
                             host, name, group.count, container.restart_count, group.label),
                         {"type": group.type, "where": group.where, "message": group.message, "count": group.count},
                         container=name, error=group.label)]
        return [emit("container-restarting", [host], "%s: %s is restarting (restart count %d%s)" % (
            host, name, container.restart_count, ", last exit within the log window" if container.exited_in_window
            else ""), {"restart_count": container.restart_count}, container=name)]
    if container.status != "running":
        return [emit("container-not-running", [host], "%s: %s is %s" % (host, name, container.status),
                     container=name)]
    return []


# what an exception a worker dies of at start says about the cause: its configuration (the
# environment is missing or invalid) or its code (it cannot load)
CONFIG_AT_START = frozenset({"ImproperlyConfigured", "NoRegionError", "NoCredentialsError", "PartialCredentialsError",
                             "InvalidRegionError", "InvalidConfigError", "ProfileNotFound"})
CODE_AT_START = frozenset({"ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "NameError"})
ENV_NAME = re.compile(r"['\"]?([A-Z][A-Z0-9_]{2,})['\"]?")


def startup_failure(container: ContainerReading) -> Optional[Tuple[ExceptionGroup, str]]:
    """(the exception a workload dies of at start, "config" or "code") when its logs hold no job
    received in the window and an exception on no job says which; else None (a crash whose cause
    the exception does not tell stays `container-restarting`)."""
    logs = container.logs
    if not logs.read or logs.count(MarkerKind.RECEIVED):
        return None
    for group in sorted((g for g in logs.exceptions if not g.jobs), key=lambda g: -g.count):
        cause = startup_cause(group)
        if cause:
            return group, cause
    return None


def startup_cause(group: ExceptionGroup) -> Optional[str]:
    """"config" when the exception says the environment is missing or invalid, "code" when the
    app's code cannot load, else None."""
    kind = (group.type or "").rsplit(".", 1)[-1]
    where = group.where or ""
    if kind in CONFIG_AT_START or "environment variable" in group.message.lower():
        return "config"
    if kind == "KeyError" and ENV_NAME.fullmatch(group.message.strip()):
        return "config"                 # os.environ["NAME"] on a variable that is not set
    if kind == "ValueError" and "settings" in where:
        return "config"
    if kind in CODE_AT_START:
        return "code"
    return None


def crash_loop_job(container: ContainerReading) -> Optional[Tuple[str, int, Optional[str]]]:
    """(job, exits, error type) when the workload's runs keep ending on one job (it failed, or
    was in progress, just before the process ended), else None."""
    ends = container.logs.run_ends if container.logs.read else ()
    on_a_job = [end for end in ends if end.after in ("failure", "in-progress") and end.job]
    if len(on_a_job) < 2 or 2 * len(on_a_job) < len(ends):
        return None
    job, exits = Counter(end.job for end in on_a_job if end.job).most_common(1)[0]
    if exits < 2:
        return None
    return job, exits, next((end.type for end in on_a_job if end.job == job and end.type), None)


def stuck_jobs(container: ContainerReading,
               queues: Sequence[QueueReading]) -> Tuple[Tuple[OpenJob, ...], Optional[float]]:
    """(jobs received and unfinished for longer than the queues' visibility timeout and than twice
    the longest job the workload finished in the window, the timeout) of a running workload; ()
    when the timeout is unknown (not guessed). A job as slow as the others is not stuck: a visibility
    timeout shorter than the usual job is AWS's account's finding (jobs-received-repeatedly)."""
    timeout = min((q.visibility_timeout for q in queues if q.visibility_timeout is not None), default=None)
    if timeout is None or not container.running or not container.logs.read:
        return (), timeout
    usual = 2 * (container.logs.longest_processing or 0)
    return tuple(j for j in container.logs.open_jobs if j.age is not None and j.age > max(timeout, usual)), timeout


def is_aws_error(group: ExceptionGroup) -> bool:
    """An exception (or failure text) that is AWS's answer or its transport's: step 1's business."""
    kind = group.type or ""
    return kind.split(".")[0] in ("botocore", "boto3", "s3transfer") or kind.rsplit(".", 1)[-1] in \
        AWS_EXCEPTION_TYPES or "An error occurred (" in group.message or "endpoint URL" in group.message


def log_reading_advice(kind: str, name: str) -> Tuple[str, str, str]:
    """(the command that reads a workload's logs, how to be allowed to, what to do when there are
    none) for its log source: `docker logs` is no remedy for a file or a journal."""
    if kind == WorkloadKind.FILE:
        return (command("tail", "-n", "20", name), "let the SSH user read %s (group read on the file and "
                "x on its directories)" % command(name), "no file matches %s: point the role's log_source.path at "
                "the worker's log file (its rotations are read too)" % command(name))
    if kind == WorkloadKind.JOURNALD:
        return (command("journalctl", "-u", name, "-n", "20"), "let the SSH user read the system journal (the "
                "systemd-journal or adm group)", "the host keeps no journal for %s (no systemd, or journald does not "
                "store it): point the role's log_source at where the unit logs" % command(name))
    return (command("docker", "logs", "--tail", "20", name), "let the SSH user run `docker logs` (the docker "
            "group)", "read `docker ps -a` on the host: the container's name may have changed")


def _log_evidence(host, container):
    logs = container.logs
    if not logs.read:
        read, access, absent = log_reading_advice(container.kind, container.name)
        return [emit("logs-unreadable", [host], "%s: the logs of %s could not be read (%s): its activity is unknown"
                     % (host, container.name, logs.missing), {"container": container.name,
                                                               "reason": str(logs.missing.reason)},
                     cause=logs.missing.reason, container=container.name, read=read, access=access, absent=absent)]
    if logs.truncated_at:
        return [emit("logs-truncated", [host], "%s: %s logged more than %d bytes in the window; only lines since %s "
                     "were read" % (host, container.name, logs.truncated_at, logs.oldest or "?"),
                     {"container": container.name, "bytes": logs.truncated_at, "since": logs.oldest})]
    return []


def _worker_activity(host, container, queues, settings, named_jobs=(), died_at_start=False):
    """Errors, redeliveries and idleness of one worker, from its logs and its own queue readings;
    `named_jobs`: jobs a finding about its state already names, with their exceptions;
    `died_at_start`: a start-up failure names the exceptions it died of (they are on no job)."""
    logs, name, findings = container.logs, container.name, []
    errors = logs.count(MarkerKind.ERROR)
    if errors:
        findings.append(emit("worker-sqs-errors", [host], "%s: %s logged %d SQS error line(s) in the window, last at %s"
                             % (host, name, errors, logs.last(MarkerKind.ERROR)), {"count": errors}))
    completed = {s.job for s in logs.jobs(MarkerKind.COMPLETED)}
    code_groups = [g for g in logs.exceptions if not is_aws_error(g) and not (died_at_start and not g.jobs)]
    explained = set(named_jobs)
    dead, dead_jobs = _dead_letters(host, container, queues, completed, code_groups, settings)
    findings += dead
    explained |= dead_jobs
    repeated = {job: n for job, n in logs.repeated_receipts.items() if n >= REPEATED_RECEIPTS and job not in completed}
    failing = {job: n for job, n in repeated.items() if job not in explained}
    if failing:
        findings.append(emit("job-repeated-failure", [host], "%s: %s received the same job(s) again and again without "
                             "completing them: %s%s" % (host, name, ", ".join(
                                 "%s x%d" % (_job_label(container, settings, job), n) for job, n in failing.items()),
                                                        _raised(code_groups, failing)), {"jobs": failing}))
    explained |= set(repeated)
    findings += _exceptions(host, container, code_groups, explained, completed, errors, settings)
    findings += _stuck(host, container, queues, settings)
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


def _job_label(container, settings, job):
    """A job as the role's findings name it: both ids when the worker logged its own beside the
    followed one ("job 1234, video 567")."""
    role = settings.role(container.role) if container.role in settings.role_defs else None
    alias = container.logs.aliases.get(job) if container.logs.read else None
    return role.job_name(job, alias) if role is not None else "job %s" % job


def _raised(groups, jobs):
    """'; raised X at F' for the exception groups that hit these jobs ('' when none did)."""
    hit = [g.label for g in groups if set(g.jobs) & set(jobs)]
    return "; raised %s" % ", ".join(hit[:3]) if hit else ""


def _dead_letters(host, container, queues, completed, groups, settings):
    """(findings, jobs they name) for consumed queues whose dead-letter queue holds messages while
    SQS answers and the worker runs; an unreadable dead-letter queue is not judged here."""
    findings, named = [], set()
    for queue in queues:
        letter = queue.dead_letter
        if not queue.ok or letter is None or not letter.depth or not container.running:
            continue
        limit = letter.max_receive_count or REPEATED_RECEIPTS
        jobs = {job: n for job, n in container.logs.repeated_receipts.items() if n >= limit and job not in completed}
        named |= set(jobs)
        findings.append(emit("dead-letter-messages", [host], "%s: %d message(s) wait in %s, the dead-letter queue of "
                             "%s (after %s receives)%s%s" % (
                                 host, letter.depth, letter.name, queue.name, letter.max_receive_count,
                                 "; %s received these job(s) that often without completing them: %s" % (
                                     container.name, ", ".join("%s x%d" % (_job_label(container, settings, job), n)
                                                               for job, n in sorted(jobs.items())))
                                 if jobs else "", _raised(groups, jobs)),
                             {"queue": queue.key, "dead_letter": letter.name, "depth": letter.depth,
                              "jobs": sorted(jobs)}))
    return findings, named


def _exceptions(host, container, groups, explained, completed, sqs_errors, settings):
    """The code's own exceptions on jobs no other finding names: the code side when other jobs
    complete (or nothing on the SQS side failed), grouped by type and innermost application frame."""
    fresh = [g for g in groups if not g.jobs or not set(g.jobs) <= explained]
    if not fresh or (sqs_errors and not completed):
        return []
    def jobs_of(group):
        return " (%s)" % "; ".join(_job_label(container, settings, job) for job in group.jobs[-5:]) if group.jobs else ""
    shown = "; ".join("%s x%d%s, last at %s" % (g.label, g.count, jobs_of(g), g.last or "?") for g in fresh[:5])
    return [emit("worker-exceptions", [host], "%s: %s raised %d exception(s) of %d kind(s) in the window while %d "
                 "job(s) completed: %s" % (host, container.name, sum(g.count for g in fresh), len(fresh),
                                           len(completed), shown),
                 {"groups": [{"type": g.type, "where": g.where, "count": g.count, "jobs": list(g.jobs)} for g in fresh],
                  "completed": len(completed)}, where=fresh[0].where or fresh[0].label)]


def _stuck(host, container, queues, settings):
    stuck, timeout = stuck_jobs(container, queues)
    if not stuck:
        return []
    return [emit("job-stuck", [host], "%s: %s received %s and has neither completed nor failed it for %ss (the queue's "
                 "visibility timeout is %ss)" % (
                     host, container.name, "; ".join(_job_label(container, settings, j.job) for j in stuck[-5:]),
                     round(max(j.age for j in stuck)),
                     timeout), {"jobs": [j.job for j in stuck], "timeout": timeout},
                 container=container.name, timeout=timeout)]


def _kms_denied(host, container):
    denied = container.logs.kms_denied if container.logs.read else None
    if denied is None:
        return []
    key = ", ".join(denied.keys) or "the queue's KmsMasterKeyId"
    return [emit("kms-access-denied", [host], "%s: %s logged %d KMS access denied error(s), last at %s (key %s%s)" % (
        host, container.name, denied.count, denied.last or "?", key,
        "; action " + ", ".join(denied.actions) if denied.actions else ""),
        {"count": denied.count, "keys": list(denied.keys), "actions": list(denied.actions)},
        key=key, actions=", ".join(denied.actions) or "kms:GenerateDataKey / kms:Decrypt")]


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
        if not settings.produces(container.role) or not container.logs.read:
            continue
        failures = container.logs.count(MarkerKind.ENQUEUE_FAILED)
        if failures:
            findings.append(emit("api-enqueue-failures", [report.name], "%s: %s logged %d failed enqueue(s) in the "
                                 "window, last at %s" % (report.name, container.name, failures,
                                                         container.logs.last(MarkerKind.ENQUEUE_FAILED)),
                                 {"count": failures}))
    return findings
