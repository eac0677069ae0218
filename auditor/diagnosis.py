"""Host reports -> findings and a verdict per host, following the runbook.

Step 1 is SQS from the app's own environment, step 2 the worker containers and
their logs, step 3 the API's logs. Each finding has a stable code, a severity,
evidence and the runbook's remedy. Pure: no I/O.
"""
from dataclasses import dataclass, field
from typing import Tuple

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
VERDICTS = ("ok", "config", "worker-down", "code-suspect", "unreachable")

SQS_ACTIONS = "sqs:GetQueueUrl, sqs:SendMessage, sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility"
RESTART_LOOP = 3
RESTART = "then restart the API and worker containers: a running process keeps its old environment"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    hosts: Tuple[str, ...]
    message: str
    remedy: str
    step: int = 0               # runbook step: 0 transport, 1 SQS, 2 workers, 3 API logs, 4 fleet
    evidence: dict = field(default_factory=dict, compare=False)

    def as_dict(self):
        return {"code": self.code, "severity": self.severity, "hosts": list(self.hosts), "step": self.step,
                "message": self.message, "remedy": self.remedy, "evidence": self.evidence}


# -- error classification -----------------------------------------------------------

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


def classify_aws_error(code):
    return AWS_ERROR_CODES.get(code or "", "sqs-error")


TRANSPORT_CODES = {
    "unreachable": ("ssh-unreachable", "check the address and port in the inventory, that the host is up, "
                    "and that sshd listens (security group, firewall)"),
    "auth-failed": ("ssh-auth-failed", "check ansible_user and ansible_ssh_private_key_file for this host; "
                    "each role may have its own key"),
    "host-key-unknown": ("ssh-host-key-unknown", None),
    "host-key-changed": ("ssh-host-key-changed", None),
    "timeout": ("ssh-timeout", "the host or the agent did not answer in time; check load and network, or "
                "raise auditor.timeouts"),
    "python-missing": ("agent-python-missing", "install python3 on the host or set ansible_python_interpreter"),
    "error": ("agent-failed", "run the audit again with the host alone (fab check-host NAME)"),
}

SQS_REMEDIES = {
    "sqs-credentials-missing": "set {app_keys} (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) in the app's "
                               "environment, or attach an IAM role; " + RESTART,
    "sqs-credentials-invalid": "the access key id is not known to AWS: set a valid AWS key (AKIA.../ASIA...) for "
                               "the app, not R2 or a deleted key; " + RESTART,
    "sqs-signature-mismatch": "the secret does not belong to the key id (or the request was signed for another "
                              "region): set the secret that matches the key id, and {region_var}; " + RESTART,
    "sqs-credentials-expired": "the temporary credentials expired: refresh them (role session, SSO) or use the "
                               "instance role; " + RESTART,
    "sqs-access-denied": "grant the app's IAM principal " + SQS_ACTIONS + " (and sqs:GetQueueAttributes) on the "
                         "queue; no restart needed for IAM changes",
    "sqs-queue-missing": "create the queue in the region the app uses (scripts/create_sqs_resources.py, "
                         "scripts/create_ai_sqs_resources.py), or fix {region_var} / the queue name variable; on real "
                         "AWS this error also means 'no access to it'; " + RESTART,
    "sqs-endpoint-unreachable": "the app cannot reach the SQS endpoint: check egress (NAT, VPC endpoint, proxy) and "
                                "any AWS_ENDPOINT_URL* override",
    "sqs-region-missing": "set {region_var} for the app; " + RESTART,
    "sqs-error": "read the error; compare with a host where the queue works",
}


def app_variables(settings):
    """The app's own variable names, for remedies: they come from the inventory, not from here."""
    region_env = settings["region"]["env"]
    prefer = settings["credentials"].get("prefer") or []
    return {"region_var": region_env[0] if region_env else "the app's region setting",
            "app_keys": "%s/%s" % (prefer[0]["key_id"], prefer[0]["secret"]) if prefer
            else "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"}


def sqs_remedy(code, settings):
    return SQS_REMEDIES[code].format(**app_variables(settings))


# -- per-host rules ---------------------------------------------------------------

def diagnose_host(report, settings):
    """Findings for one host, in runbook order."""
    if not report.reachable:
        return [_transport_finding(report)]
    findings = []
    findings += _step1_sqs(report, settings)
    findings += _step2_workers(report, settings)
    findings += _step3_api(report, settings)
    return findings


def _transport_finding(report):
    code, remedy = TRANSPORT_CODES.get(report.transport_kind, TRANSPORT_CODES["error"])
    if remedy is None:   # host-key findings carry their exact fix in the detail
        remedy = report.transport_detail
    return Finding(code, ERROR, (report.name,), "%s: %s" % (report.name, report.transport_detail or code),
                   remedy, 0, {"transport": report.transport_kind})


def _step1_sqs(report, settings):
    probe, host = report.probe, report.name
    if probe is None:
        return []
    if probe.error_kind == "docker-unavailable":
        return []               # reported once, by step 2
    if probe.error_kind:
        code, remedy = {
            "boto3-missing": ("probe-boto3-missing", "install boto3 in the app's environment (it is what the app "
                              "uses), or point auditor.app_python at the app's interpreter"),
            "python-missing": ("probe-python-missing", "set auditor.app_python to the app's Python "
                               "(e.g. python3 or /app/.venv/bin/python)"),
            "credentials-missing": ("sqs-credentials-missing", sqs_remedy("sqs-credentials-missing", settings)),
            "dotenv-missing": ("app-env-missing", "set auditor.app_dir / auditor.dotenv to the app's .env"),
        }.get(probe.error_kind, ("probe-failed", "run `fab check-host %s` and read the probe's error" % host))
        return [Finding(code, ERROR, (host,), "%s: SQS probe in %s: %s" % (host, probe.env_source,
                        probe.error_message[:200] or probe.error_kind), remedy, 1)]
    findings = []
    failing = {}
    for queue in probe.queues:
        if not queue.ok:
            failing.setdefault(classify_aws_error(queue.error_code), []).append(queue)
    for code, queues in failing.items():
        names = ", ".join("%s (%s)" % (q.name, q.error_code) for q in queues)
        findings.append(Finding(code, ERROR, (host,),
                                "%s: GetQueueUrl failed in region %s from %s: %s"
                                % (host, queues[0].region, probe.env_source, names),
                                sqs_remedy(code, settings), 1,
                                {"queues": [q.name for q in queues], "region": queues[0].region,
                                 "error": queues[0].error_code, "detail": queues[0].error_message[:200]}))
    credentials = probe.credentials
    if credentials.get("key_id") and not credentials.get("looks_like_aws_key"):
        findings.append(Finding(
            "not-aws-key", ERROR, (host,),
            "%s: the app's key id %s (from %s) cannot be an AWS key (AWS key ids are AKIA/ASIA + 16)"
            % (host, credentials["key_id"], credentials.get("source")),
            "the key in use is not an AWS key (often Cloudflare R2 keys in AWS_ACCESS_KEY_ID): set %s to the "
            "AWS keys the app should use for SQS; " % app_variables(settings)["app_keys"] + RESTART, 1,
            {"key_id": credentials["key_id"], "source": credentials.get("source")}))
    app, boto, cli = probe.region("app"), probe.region("boto3"), probe.region("cli")
    disagreeing = {who: value for who, value in (("boto3", boto), ("aws-cli", cli)) if value and value != app}
    if disagreeing:
        findings.append(Finding(
            "region-env-conflict", WARNING, (host,),
            "%s: the app uses %s (%s) but %s" % (host, app, probe.regions["app"].get("source"), ", ".join(
                "%s uses %s" % (who, value) for who, value in disagreeing.items())),
            "set {0} and AWS_DEFAULT_REGION to the same region (the app reads {0}, boto3 only "
            "AWS_DEFAULT_REGION); ".format(app_variables(settings)["region_var"]) + RESTART, 1, {"app": app, "boto3": boto, "cli": cli}))
    allowed = set(settings.get("allowed_endpoints") or [])
    overrides = {k: v for k, v in probe.endpoints.items() if v not in allowed}
    if overrides:
        findings.append(Finding(
            "endpoint-override", WARNING, (host,),
            "%s: the app's AWS endpoint is overridden: %s" % (host, ", ".join("%s=%s" % i for i in overrides.items())),
            "remove AWS_ENDPOINT_URL* from production environments, or list the endpoint in "
            "auditor.allowed_endpoints", 1, overrides))
    findings += _stale_env(report)
    script = report.check_script
    if script and script.get("exit_status") != 0:
        findings.append(Finding("check-script-failed", ERROR, (host,),
                                "%s: the app's own check script exited %s" % (host, script.get("exit_status")),
                                "read its output in `fab check-host %s --app-check`" % host, 1))
    return findings


def _stale_env(report):
    """A running container whose environment differs from the .env its next start will read."""
    if not report.dotenv:
        return []
    findings = []
    for container in report.containers:
        if not container.present or container.status != "running":
            continue
        differing = sorted(name for name, entry in report.dotenv.items()
                           if container.env.get(name, {}).get("fp") != entry["fp"])
        if differing:
            shown = ["%s (running %s, .env %s)" % (n, _display(container.env.get(n)), _display(report.dotenv[n]))
                     for n in differing]
            findings.append(Finding(
                "stale-env", WARNING, (report.name,),
                "%s: %s runs with an environment that differs from the .env on disk: %s"
                % (report.name, container.name, "; ".join(shown)),
                "restart %s so it reads the corrected .env (docker compose up -d / docker restart is not enough "
                "for --env-file: recreate it)" % container.name, 1, {"container": container.name,
                                                                       "variables": differing}))
    return findings


def _display(entry):
    if not entry:
        return "unset"
    return entry.get("value") or entry.get("masked") or "fp:" + entry["fp"][:8]


def _step2_workers(report, settings):
    host = report.name
    if report.docker_missing:
        return [Finding("docker-missing", ERROR, (host,), "%s: no docker command: %s" % (host, report.docker_error[:200]),
                        "install Docker on the host, or put the docker CLI on the SSH user's PATH", 2)]
    if report.docker_available is False:
        return [Finding("docker-unavailable", ERROR, (host,), "%s: docker does not answer: %s"
                        % (host, report.docker_error[:200]),
                        "start Docker on the host, or let the SSH user use it (docker group)", 2)]
    findings = []
    for container in report.containers:
        if not container.present:
            findings.append(Finding("container-missing", ERROR, (host,),
                                    "%s: no container named %s (role %s)" % (host, container.name, container.role),
                                    "deploy/start %s, or fix its name in auditor.role_defs" % container.name, 2))
            continue
        # a crash-looping container is caught between restarts as often as during one
        if container.restarting or container.restart_count >= RESTART_LOOP:
            findings.append(Finding("container-restarting", ERROR, (host,),
                                    "%s: %s is restarting (restart count %d)"
                                    % (host, container.name, container.restart_count),
                                    "read `docker logs %s`: it dies at start (settings, imports, env)"
                                    % container.name, 2, {"restart_count": container.restart_count}))
        elif container.status != "running":
            findings.append(Finding("container-not-running", ERROR, (host,),
                                    "%s: %s is %s" % (host, container.name, container.status),
                                    "start it (docker start %s) and read its last logs" % container.name, 2))
        if not settings["role_defs"].get(container.role, {}).get("consumes"):
            continue            # not a worker: its logs are read in step 3
        errors = container.count("error")
        if errors:
            findings.append(Finding("worker-sqs-errors", ERROR, (host,),
                                    "%s: %s logged %d SQS error line(s) in the window, last at %s"
                                    % (host, container.name, errors, container.last("error")),
                                    "fix step 1 (credentials, region, queue) for this worker; " + RESTART, 2,
                                    {"count": errors}))
        completed = set(container.jobs("completed"))
        repeated = {job: n for job, n in container.repeated_receipts.items() if n >= 3 and job not in completed}
        if repeated:
            findings.append(Finding("job-repeated-failure", ERROR, (host,),
                                    "%s: %s received the same job(s) again and again without completing them: %s"
                                    % (host, container.name, ", ".join("%s x%d" % i for i in repeated.items())),
                                    "SQS works and the worker is up: suspect the code or the job's input; read the "
                                    "worker's traceback for these job ids", 2, {"jobs": repeated}))
        if container.status == "running" and not errors and not any(
                container.count(kind) for kind in ("started", "received", "completed")):
            findings.append(Finding("worker-no-activity", INFO, (host,),
                                    "%s: %s logged no start, receive or completion in the window"
                                    % (host, container.name),
                                    "normal when no job was sent; otherwise check step 3 (API logs)", 2))
    return findings


def _step3_api(report, settings):
    findings = []
    for container in report.containers:
        if not settings["role_defs"].get(container.role, {}).get("produces") or not container.present:
            continue
        failures = container.count("enqueue-failed")
        if failures:
            findings.append(Finding("api-enqueue-failures", ERROR, (report.name,),
                                    "%s: %s logged %d failed enqueue(s) in the window, last at %s"
                                    % (report.name, container.name, failures, container.last("enqueue-failed")),
                                    "go back to step 1: the API cannot send to SQS with its credentials/region",
                                    3, {"count": failures}))
    return findings


def verdict(report, findings):
    """One word per host, in the runbook's order of suspicion."""
    if not report.reachable:
        return "unreachable"
    errors = {f.code for f in findings if f.severity == ERROR}
    if any(c.startswith(("sqs-", "probe-", "not-aws-key", "app-env", "check-script", "api-enqueue",
                         "worker-sqs-errors")) for c in errors):
        return "config"
    if errors & {"container-missing", "container-not-running", "container-restarting", "docker-unavailable",
                 "docker-missing"}:
        return "worker-down"
    if "job-repeated-failure" in errors:
        return "code-suspect"
    return "ok" if not errors else "config"
