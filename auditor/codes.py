"""The one registry of finding codes: data, not code.

Every rule emits findings through `emit()`, which refuses a code that is not
registered here, so the severity, runbook step, implied verdict and remedy of
a code live in one place. The docs' code table (docs/findings.md) is generated from `CODES`
(`python -m auditor.codes`) and a test keeps the two equal.

Verdicts: each host's verdict is computed once, at the end of an audit, from
every finding that names it (its own and the fleet-wide ones), as the first of
VERDICT_PRECEDENCE implied by one of them; `ok` only when none implies another.
"""
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .facts import Word
from .shell import quote


class Severity(Word):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Verdict(Word):
    UNREACHABLE = "unreachable"     # the host could not be audited at all
    CONFIG = "config"               # step 1: credentials, region, queues, environment
    WORKER_DOWN = "worker-down"     # step 2: a container is not running
    CODE_SUSPECT = "code-suspect"   # SQS fine, workers up, a job keeps failing
    UNKNOWN = "unknown"             # no known fault, but evidence the verdict needs is missing
    OK = "ok"


VERDICT_PRECEDENCE = tuple(Verdict)
SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity)}
STEPS = {0: "transport", 1: "SQS from the app's environment", 2: "containers and their logs", 3: "API logs",
         4: "fleet comparison"}
RESTART = "then restart the API and worker containers: a running process keeps its old environment"
SQS_ACTIONS = "sqs:GetQueueUrl, sqs:SendMessage, sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility"


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    step: int
    verdict: Optional[Verdict]      # None: informs, does not change the host's verdict
    description: str
    remedy: str                     # a str.format template; its fields come with each finding
    causes: Tuple[Tuple[str, str], ...] = ()    # (cause, remedy) pairs that replace the default by cause
    consequence: bool = False       # what follows from another fault (a backlog, jobs not taken): on a host with
                                    # a finding that explains it, that finding's verdict is the host's


# the verdicts that explain a consequence: a definite fault, not missing evidence
CAUSE_VERDICTS = frozenset({Verdict.CONFIG, Verdict.WORKER_DOWN, Verdict.CODE_SUSPECT})


def program_name():
    """The command the operator runs, named in remedies: `fab` in a checkout, else the installed
    command (asked when a remedy is written: the process may be either)."""
    return "fab" if os.path.basename(sys.argv[0] if sys.argv else "") == "fab" else "fleet-audit"

# remedy fields that are names from the inventory or a host, printed inside commands to copy and paste:
# quoted as the commands the auditor runs are (a plain name is printed as it is)
SHELL_WORDS = frozenset({"host", "container", "path", "unit"})
E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO
V = Verdict

_TABLE = (
    # -- step 0: reaching the host ------------------------------------------------------------
    Code("ssh-unreachable", E, 0, V.UNREACHABLE, "no TCP connection to the host's SSH port",
         "check the address and port in the inventory, that the host is up, and that sshd listens "
         "(security group, firewall)"),
    Code("ssh-not-ssh", E, 0, V.UNREACHABLE, "the host's SSH port answered, but not as an SSH-2 server",
         "point ansible_host/ansible_port at the host's sshd (another service answers there), or upgrade an "
         "SSH-1-only server"),
    Code("ssh-auth-failed", E, 0, V.UNREACHABLE, "the SSH server refused the key or user",
         "check ansible_user and ansible_ssh_private_key_file for this host; each role may have its own key"),
    Code("ssh-key-unusable", E, 0, V.UNREACHABLE, "the private key file for this host cannot be used",
         "point ansible_ssh_private_key_file at the private key (not the .pub), readable by you; a key protected "
         "by a passphrase needs an unprotected copy kept 0600, since the audit never prompts"),
    Code("ssh-host-key-unknown", E, 0, V.UNREACHABLE, "the host's SSH key is not in known_hosts",
         "verify the key out of band (the finding names the hop and its ssh-keyscan), add it to known_hosts, or "
         "trust it once with --accept-new-host-keys; a host vouched for by an SSH CA needs ansible_connection: ssh"),
    Code("ssh-host-key-changed", E, 0, V.UNREACHABLE, "the host's SSH key differs from the one in known_hosts",
         "if the host was rebuilt, verify its new key out of band and remove the old one (the finding names the "
         "ssh-keygen -R to run); if not, do not connect: someone may be in the middle"),
    Code("ssh-host-key-revoked", E, 0, V.UNREACHABLE, "the host presented a key that known_hosts marks @revoked",
         "do not connect: the key was revoked on purpose; rebuild the host with a new key and add that one"),
    Code("ssh-timeout", E, 0, V.UNREACHABLE, "the host or the agent did not answer in time",
         "check the host's load and the network, or raise auditor.timeouts"),
    Code("agent-python-missing", E, 0, V.UNREACHABLE, "the host has no Python to run the agent",
         "install python3 on the host or set ansible_python_interpreter"),
    Code("agent-failed", E, 0, V.UNREACHABLE, "the agent ran but printed no facts",
         "run the audit again with the host alone ({program} check-host {host}) and read the agent's error"),
    Code("ssm-not-managed", E, 0, V.UNREACHABLE, "Run Command cannot reach the instance: not managed by SSM, "
         "or its SSM agent is not connected",
         "check the instance is running and registered (aws ssm describe-instance-information), its SSM agent, "
         "its instance profile (AmazonSSMManagedInstanceCore) and its route to the SSM endpoints"),
    Code("ssm-access-denied", E, 0, V.UNREACHABLE, "the controller may not send Run Command or read its result",
         "grant the controller's principal ssm:SendCommand (document AWS-RunShellScript and the instances), "
         "ssm:ListCommandInvocations, ssm:GetCommandInvocation and ssm:CancelCommand"),
    Code("ssm-delivery-timeout", E, 0, V.UNREACHABLE, "Run Command was not delivered to the instance in time",
         "check the instance's SSM agent is online, or raise auditor.ssm.delivery_timeout"),
    Code("ssm-command-timeout", E, 0, V.UNREACHABLE, "the agent did not finish under Run Command in time",
         "check the host's load, or raise auditor.timeouts.command"),
    Code("ssm-cancelled", E, 0, V.UNKNOWN, "the Run Command invocation was cancelled before it finished",
         "audit again ({program} check-host {host}); if someone else cancels it, ask who"),
    Code("agent-output-too-large", E, 0, V.UNREACHABLE, "the agent's facts exceed what the transport returns "
         "inline",
         "name an S3 bucket for Run Command's output (ansible_aws_ssm_bucket_name or auditor.ssm.bucket) and grant "
         "the controller s3:GetObject on it"),
    Code("host-not-audited", E, 0, V.UNKNOWN, "the audit was interrupted (Ctrl-C or SIGTERM) before this host finished",
         "audit again ({program} check-host {host} for this one)"),
    # -- step 1: SQS from the app's own environment ---------------------------------------------
    Code("probe-boto3-missing", E, 1, V.UNKNOWN, "the app's environment has no boto3 for the probe",
         "install boto3 in the app's environment (it is what the app uses), or point auditor.app_python at "
         "the app's interpreter"),
    Code("probe-python-missing", E, 1, V.UNKNOWN, "the app's environment has no Python at auditor.app_python",
         "set auditor.app_python to the app's Python (e.g. python3, or the venv's bin/python)"),
    Code("celery-app-unreadable", E, 1, V.UNKNOWN, "the probe could not import the Celery app (auditor.celery_app) "
         "in the app's environment, or its broker is not SQS",
         "check auditor.celery_app (module:attribute, importable from the container's working directory) and that "
         "the app imports without its services; the finding quotes the error"),
    Code("probe-failed", E, 1, V.UNKNOWN, "the SQS probe did not finish in the app's environment",
         "run `{program} check-host {host}` and read the probe's error"),
    Code("probe-container-lost", W, 1, V.UNKNOWN, "the app's container stopped or restarted while the probe ran in it",
         "see the container's state in step 2: a container that dies under the probe is crash-looping"),
    Code("probe-not-run", I, 1, None, "the app's container is not running and the host's Python has no boto3: "
         "only the .env was read (regions, keys, queue names), no AWS call was made",
         "start the app (step 2), or install boto3 for {python} on the host to probe with the .env"),
    Code("app-python-fallback", I, 1, None, "auditor.app_python is not in the app's container: the probe ran "
         "another Python there",
         "set auditor.app_python to {ran} (the interpreter the container has)"),
    Code("env-value-invalid", E, 1, V.CONFIG, "a variable the app's AWS libraries read holds a value they refuse "
         "or read otherwise than it looks",
         "{fix}; " + RESTART),
    Code("env-region-unknown", W, 1, None, "a region variable names a region botocore does not know",
         "check the spelling of {variable} (regions look like us-east-1), or update boto3/botocore if the "
         "region is new"),
    Code("app-env-missing", E, 1, V.CONFIG, "the app's .env is not where the inventory says",
         "set auditor.app_dir / auditor.dotenv to the app's .env"),
    Code("app-env-unreadable", E, 1, V.UNKNOWN, "the app's .env exists but the audit user cannot read it, so "
         "the probe could not run in the app's environment",
         "let the SSH user read {path} (group read), or audit as the app's user"),
    Code("dotenv-unreadable", W, 1, None, "the .env on disk could not be read: the stale-environment check "
         "was skipped",
         "let the SSH user read {path} (group read), or audit as the app's user",
         (("not-a-file", "{path} is not a regular file (a FIFO, device or directory): point the role's dotenv_path "
           "at the app's .env file"),)),
    Code("sqs-credentials-missing", E, 1, V.CONFIG, "the app's environment has no AWS credentials",
         "set {app_keys} (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) in the app's environment, or attach an "
         "IAM role; " + RESTART),
    Code("sqs-credentials-invalid", E, 1, V.CONFIG, "AWS does not know the app's access key id",
         "the access key id is not known to AWS: set a valid AWS key (AKIA.../ASIA...) for the app, not R2 or "
         "a deleted key; " + RESTART),
    Code("sqs-signature-mismatch", E, 1, V.CONFIG, "the app's secret does not belong to its key id (or the "
         "request was signed for another region)",
         "set the secret that matches the key id, and {region_var}; " + RESTART),
    Code("sqs-credentials-expired", E, 1, V.CONFIG, "the app's temporary credentials expired",
         "refresh them (role session, SSO) or use the instance role; " + RESTART),
    Code("sqs-access-denied", E, 1, V.CONFIG, "the app's IAM principal may not use the queue",
         "grant the app's IAM principal " + SQS_ACTIONS + " (and sqs:GetQueueAttributes) on the queue; no "
         "restart needed for IAM changes"),
    Code("sqs-queue-missing", E, 1, V.CONFIG, "the queue does not exist in the app's region and account "
         "(on real AWS: or it may not be accessed)",
         "create the queue in the region the app uses ({create_queue}), or fix {region_var} / the queue name "
         "variable; " + RESTART),
    Code("sqs-endpoint-unreachable", E, 1, V.CONFIG, "the app cannot reach the SQS endpoint",
         "check egress (NAT, VPC endpoint, proxy) and any AWS_ENDPOINT_URL* override"),
    Code("sqs-region-missing", E, 1, V.CONFIG, "the app's environment sets no region",
         "set {region_var} for the app; " + RESTART),
    Code("sqs-error", E, 1, V.CONFIG, "SQS answered with an error the auditor does not classify",
         "read the error; compare with a host where the queue works"),
    Code("not-aws-key", E, 1, V.CONFIG, "the key id the app uses cannot be an AWS key (AKIA/ASIA + 16)",
         "the key in use is not an AWS key (often Cloudflare R2 keys in AWS_ACCESS_KEY_ID): set {app_keys} to "
         "the AWS keys the app should use for SQS; " + RESTART),
    Code("region-env-conflict", W, 1, None, "the app, boto3 and the AWS CLI resolve different regions",
         "set {region_var} and AWS_DEFAULT_REGION to the same region (the app reads {region_var}, boto3 only "
         "AWS_DEFAULT_REGION); " + RESTART),
    Code("endpoint-override", W, 1, None, "the app's AWS endpoint is overridden",
         "remove AWS_ENDPOINT_URL* from production environments, or list the endpoint in "
         "auditor.allowed_endpoints"),
    Code("stale-env", W, 1, None, "a running container's environment differs from the .env its next start reads",
         "recreate {container} so it reads the corrected .env (docker restart is not enough for --env-file)"),
    Code("sqs-via-proxy", E, 1, V.CONFIG, "the app's requests to SQS go through an HTTP(S) proxy, and fail there",
         "let SQS bypass the proxy: add {endpoint_host} (on AWS: .amazonaws.com, or the VPC endpoint) to NO_PROXY in "
         "the app's environment, or fix the proxy {proxy}; " + RESTART),
    Code("host-clock-skew", E, 1, V.CONFIG, "the host's clock is off by more than AWS's 5 minutes: every signed "
         "request is refused (Signature expired, SignatureDoesNotMatch)",
         "enable time synchronisation on the host (chrony or systemd-timesyncd; on EC2 the Amazon Time Sync "
         "Service at 169.254.169.123), then check `timedatectl`; no restart needed"),
    Code("container-no-instance-role", E, 1, V.CONFIG, "the app's container finds no credentials, while the host "
         "has an instance role: the container cannot reach the instance metadata service",
         "let containers reach IMDSv2 through Docker's bridge: `aws ec2 modify-instance-metadata-options "
         "--instance-id <id> --http-put-response-hop-limit 2` (or run the container with --network host, or give "
         "the app credentials of its own)"),
    Code("kms-access-denied", E, 2, V.CONFIG, "the app logged KMS access denied: the queue is encrypted with a key "
         "its IAM principal may not use",
         "grant the app's IAM principal {actions} on the KMS key {key} (key policy or IAM): producers need "
         "kms:GenerateDataKey, consumers kms:Decrypt; no restart needed"),
    Code("check-script-failed", E, 1, V.CONFIG, "the app's own check script failed",
         "read its output in `{program} check-host {host} --app-check`"),
    # -- step 2: containers and their logs -------------------------------------------------------
    Code("docker-missing", E, 2, V.WORKER_DOWN, "the host has no docker command",
         "install Docker on the host, or put the docker CLI on the SSH user's PATH"),
    Code("docker-unavailable", E, 2, V.UNKNOWN, "docker does not answer: no container state or log could be read",
         "run `docker ps` on the host and read the error",
         (("daemon-down", "start Docker on the host (systemctl start docker) and find out why it stopped"),
          ("permission-denied", "let the SSH user use Docker (the docker group), or audit as a user who can"),
          ("timed-out", "the Docker daemon did not answer in time: check its health (systemctl status docker)"))),
    Code("container-missing", E, 2, V.WORKER_DOWN, "no container of the configured name exists",
         "deploy/start {container}, or fix its name in auditor.role_defs"),
    Code("container-restarting", E, 2, V.WORKER_DOWN, "the container keeps restarting",
         "read `docker logs {container}`: it dies at start (settings, imports, env)"),
    Code("worker-start-config", E, 2, V.CONFIG, "a worker exits at start, before any job, because its "
         "configuration is missing or invalid (the exception says which)",
         "set what it names in the app's environment ({error}), then restart {container}"),
    Code("worker-start-code", E, 2, V.CODE_SUSPECT, "a worker exits at start, before any job, because its code "
         "cannot load (an import, syntax or name error)",
         "fix the code it names ({error}) and deploy again; no job reached it"),
    Code("process-not-running", E, 2, V.WORKER_DOWN, "the role's plain process (systemd unit or pgrep pattern) "
         "is not running",
         "start it ({start}) and read its last logs"),
    Code("process-state-unknown", E, 2, V.UNKNOWN, "whether the role's plain process runs could not be told: "
         "systemctl or pgrep did not answer",
         "run `{check}` on the host and read the error (no systemd on the host, or the SSH user may not ask it)"),
    Code("container-not-running", E, 2, V.WORKER_DOWN, "the container exists but is not running",
         "start it (docker start {container}) and read its last logs"),
    Code("logs-unreadable", E, 2, V.UNKNOWN, "a workload's logs could not be read, so its activity is unknown",
         "run `{read}` on the host and read the error",
         (("log-driver-unreadable", "{container}'s log driver cannot be read back by `docker logs`: use json-file "
           "or local, or keep Docker's dual logging enabled"),
          ("permission-denied", "{access}"),
          ("not-found", "{absent}"),
          ("timed-out", "`{read}` did not answer in time: shorten auditor.log_window or raise "
           "auditor.timeouts"))),
    Code("logs-truncated", W, 2, None, "a container logged more than auditor.log_max_bytes in the window: only "
         "the newest part was read",
         "raise auditor.log_max_bytes or shorten auditor.log_window for this host"),
    Code("worker-sqs-errors", E, 2, V.CONFIG, "a worker logged SQS errors in the window",
         "fix step 1 (credentials, region, queue) for this worker; " + RESTART),
    Code("job-processed-twice", E, 2, V.CONFIG, "a worker received the same job more than once in the window "
         "and finished or failed to delete it: jobs run twice",
         "find why the message came back: {fix}",
         (("delete-failed", "the worker could not delete the message after the job: grant its IAM principal "
           "sqs:DeleteMessage on the queue"),
          ("visibility-timeout", "jobs took up to {seconds}s but the queue's VisibilityTimeout is {timeout}s: raise "
           "it above the longest job (or extend visibility while working)"),
          ("not-deleted", "the worker logged the job done but the message came back: check that it deletes the "
           "message it received (same queue URL and receipt handle) and does not die before the delete"))),
    Code("worker-idle", E, 2, V.WORKER_DOWN, "a running worker whose SQS checks pass received nothing in the "
         "window while its queue has messages waiting",
         "the worker is alive but not consuming (concurrency 0, paused, stuck in a job): read its logs and "
         "restart it", consequence=True),
    Code("job-repeated-failure", E, 2, V.CODE_SUSPECT, "a worker received the same job again and again without "
         "completing it",
         "SQS works and the worker is up: suspect the code or the job's input; read the worker's traceback "
         "for these job ids"),
    Code("job-crash-loop", E, 2, V.CODE_SUSPECT, "a worker's process exits each time the same job fails, and "
         "Docker restarts it: one job crash-loops the worker",
         "SQS works: the code fails on job {job} ({error}); fix the code or the job's input, or move the message "
         "aside (a redrive policy with a dead-letter queue ends the loop after maxReceiveCount receives)"),
    Code("dead-letter-messages", E, 2, V.CODE_SUSPECT, "messages wait in a queue's dead-letter queue while SQS "
         "works and its workers run: jobs failed maxReceiveCount times",
         "read the worker's exceptions for the jobs named; fix the code or the input, then move the messages back "
         "(aws sqs start-message-move-task --source-arn <the dead-letter queue's ARN>)"),
    Code("worker-exceptions", E, 2, V.CODE_SUSPECT, "a worker raised exceptions that are not AWS errors on some "
         "jobs while SQS works",
         "read the traceback at {where} in the worker's logs: the code or the job's input is at fault (AWS/SQS "
         "errors are step 1's)"),
    Code("job-stuck", E, 2, V.CODE_SUSPECT, "a running worker received a job and has neither completed nor failed "
         "it for longer than its queue's visibility timeout",
         "the job hangs (a call without a timeout, a deadlock) or the worker died in it: see what {container} is "
         "doing (docker top, py-spy dump), restart it, and bound the job's calls; SQS hands the message out "
         "again after {timeout}s"),
    Code("worker-no-activity", I, 2, None, "a running worker logged no start, receive or completion in the window",
         "normal when no job was sent; otherwise check step 3 (API logs)"),
    # -- step 3: the API's logs --------------------------------------------------------------------
    Code("api-enqueue-failures", E, 3, V.CONFIG, "the API logged failed enqueues in the window",
         "go back to step 1: the API cannot send to SQS with its credentials/region"),
    # -- step 4: the fleet compared -------------------------------------------------------------
    Code("region-mismatch", E, 4, V.CONFIG, "hosts sharing a queue use different regions: the odd ones are named "
         "(or, with no majority, every side)",
         "set {region_var} on {hosts} to {region} (the region the other users of the queue use), then restart"),
    Code("region-no-majority", E, 4, V.CONFIG, "hosts sharing a queue are split between regions and neither side "
         "is a majority",
         "decide which region {queue} lives in, then set {region_var} alike on {hosts}, and restart"),
    Code("no-producer-region", W, 4, None, "a worker polls a region where no producer enqueues",
         "point the worker at the producers' region"),
    Code("account-mismatch", E, 4, V.CONFIG, "hosts sharing a queue use different AWS accounts",
         "use credentials of account {account} on {hosts} (a queue name resolves per account)"),
    Code("queue-url-mismatch", E, 4, V.CONFIG, "hosts sharing a queue resolve it to different URLs",
         "make every host use the same queue name, region and account (check {hosts}'s queue-name variable)"),
    Code("job-ids-unmatched", W, 4, None, "workers received jobs but none of their ids is an id the API logged: "
         "the log markers do not share an id, so job flow cannot be followed",
         "make the API's enqueue marker and the workers' receive marker capture the same id (auditor.role_defs "
         "markers, (?P<job>...)){job_id_hint}"),
    Code("jobs-not-consumed", E, 4, V.WORKER_DOWN, "jobs the API enqueued were received by no worker in the window",
         "follow steps 1 and 2 on {hosts}: the workers are not reading the queue the API writes to", consequence=True),
    Code("jobs-enqueued-unpolled", E, 4, V.CONFIG, "a producer enqueues to a queue URL (region, account) that "
         "no worker polls: its jobs are lost to the workers",
         "point {hosts} at the queue the workers poll ({consumer_urls}): its region and account settings, then "
         "restart it; the jobs already sent wait at {url}", consequence=True),
    Code("backlog-no-consumer", E, 4, V.WORKER_DOWN, "messages wait in a queue that no running, working "
         "consumer polls",
         "fix the consumers of {queue} (see their findings); the backlog drains once one polls the queue",
         consequence=True),
    Code("job-flow-unjudged", I, 4, None, "a cross-host rule could not judge some hosts: their evidence is missing",
         "fix the missing readings on {hosts} (see their findings), then audit again",
         (("no-send-log", "the producers {hosts} log nothing when they send a job (Celery's .delay() does not): add a "
           "log line with the job id at each send and an enqueued marker for it, or accept that job flow is not "
           "judged"),
          ("not-audited", "audit the queue's consumers too ({program} audit, or add {outside} to --hosts/--roles): "
           "a job or a backlog may be theirs, so lost jobs and unattended backlogs are judged only with every "
           "consumer's evidence"))),
    Code("secret-mismatch", E, 4, V.CONFIG, "one key id is used with different secrets",
         "copy the right AWS secret for that key id to {hosts}, then restart"),
    Code("key-mismatch", W, 4, None, "hosts of one role use different access keys",
         "use one key (or one instance role) per role, so a rotation reaches every host"),
    Code("queue-elsewhere", E, 4, V.CONFIG, "the controller finds the queue in another region or account than "
         "the host looks in",
         "{fix}"),
    Code("jobs-expiring", E, 4, V.WORKER_DOWN, "AWS's account: the queue's oldest message nears its retention "
         "period, after which SQS deletes it unseen (jobs lost for good)",
         "find why {hosts} do not take the jobs of {name} (steps 1 and 2 on them); to keep jobs longer meanwhile: "
         "aws sqs set-queue-attributes --queue-url {url} --attributes MessageRetentionPeriod=1209600",
         consequence=True),
    Code("dead-letter-retention-short", W, 4, None, "AWS's account: a dead-letter queue keeps messages no longer "
         "than its source queue, so a message moved there late can expire before anyone looks",
         "keep messages longer in {dead_letter} than in {name}: aws sqs set-queue-attributes --queue-url "
         "{dead_letter_url} --attributes MessageRetentionPeriod=1209600 (14 days, the most SQS allows)"),
    Code("sent-outside-inventory", W, 4, None, "AWS's account: more messages were sent to the queue than its audited "
         "producers logged: a producer outside the inventory (a cron host, another deployment, a laptop) or one "
         "whose sends are not logged",
         "find who else sends to {name}: CloudTrail's data events for sqs:SendMessage name the caller; add that host "
         "to the inventory, or stop it if it should not send there"),
    Code("sent-not-received", E, 4, V.WORKER_DOWN, "AWS's account: messages were sent to the queue and none was "
         "received in the window (judged from AWS's counts, as the producers log nothing about their sends)",
         "follow steps 1 and 2 on {hosts}: no consumer reads the queue the producers send to", consequence=True),
    Code("received-not-deleted", E, 4, V.CONFIG, "AWS's account: the queue's messages were received and never "
         "deleted in the window, so every job comes back after the visibility timeout and runs again",
         "make {hosts} delete each message after its job (sqs:DeleteMessage on the queue, the receipt handle it "
         "received)", consequence=True),
    Code("jobs-received-repeatedly", E, 4, V.CONFIG, "AWS's account: the queue's messages were received many times "
         "more than they were sent: jobs run again and again",
         "find why messages come back to {hosts}: {fix}",
         (("visibility-timeout", "raise {name}'s VisibilityTimeout (now {timeout} s) above the longest job, or extend "
           "visibility while a job runs: aws sqs set-queue-attributes --queue-url URL --attributes "
           "VisibilityTimeout=SECONDS"),
          ("delete-failed", "let the workers delete the messages they finish (sqs:DeleteMessage on the queue)"),
          ("crashing-workers", "stop the workers' exits (see their container findings): a job held by a worker that "
           "dies comes back"),
          ("unknown", "compare the queue's VisibilityTimeout ({timeout} s) with the jobs' durations, and check that "
           "the workers delete each message they finish")), consequence=True),
    Code("backlog-growing", E, 4, V.WORKER_DOWN, "AWS's account: the age of the queue's oldest message has risen "
         "minute after minute: jobs are not taken as fast as they come",
         "find why {hosts} fall behind on {name} (steps 1 and 2 on them): too few workers, a slow job, or workers "
         "polling elsewhere", consequence=True),
    Code("queue-account-unread", W, 4, None, "AWS's account of some queues could not be read (denied or failed): "
         "the rules that need it stay silent and job flow is judged from the hosts' logs alone",
         "give the controller's principal cloudwatch:GetMetricData and sqs:GetQueueAttributes on the fleet's "
         "queues ({reason})"),
    Code("cross-check-failed", W, 4, None, "one of the controller's AWS profiles could not be used",
         "give the controller read access (sts:GetCallerIdentity, sqs:GetQueueUrl) or fix "
         "auditor.cross_check.profiles"),
)
CODES = {entry.code: entry for entry in _TABLE}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    hosts: Tuple[str, ...]
    message: str
    remedy: str
    step: int
    evidence: dict = field(default_factory=dict, compare=False)

    def as_dict(self):
        return {"code": self.code, "severity": str(self.severity), "hosts": list(self.hosts), "step": self.step,
                "message": self.message, "remedy": self.remedy, "evidence": self.evidence}


def emit(code, hosts, message, evidence=None, /, cause=None, **fields):
    """A finding of a registered code naming `hosts`; `fields` fill its remedy template,
    the one registered for `cause` when there is one."""
    entry = CODES[code]         # a KeyError here is a programming error: an unregistered code
    remedy = dict(entry.causes).get(str(cause), entry.remedy)
    words = {name: quote(value) if name in SHELL_WORDS and isinstance(value, str) else value
             for name, value in fields.items()}
    return Finding(code, entry.severity, tuple(hosts), message, remedy.format(program=program_name(), **words),
                   entry.step, evidence or {})


def causes_of(findings):
    """The codes among one host's findings that explain its consequences (a crash loop explains the
    backlog it leaves): those of a definite fault that are not consequences themselves."""
    return tuple(sorted({f.code for f in findings if not CODES[f.code].consequence and
                         CODES[f.code].verdict in CAUSE_VERDICTS}))


def verdict(reachable, findings):
    """(verdict, codes that decided it) from every finding naming one host. A consequence takes the
    verdict of the cause the host shows, so an unchanged fault gets the same verdict whether the
    audit caught its consequence or not (a crash-looping worker while running or restarting)."""
    if not reachable:       # only its transport finding speaks for a host that was not audited
        findings = [f for f in findings if f.step == 0]
    explained = bool(causes_of(findings))
    implied = {}
    for finding in findings:
        entry = CODES[finding.code]
        if entry.verdict is not None and not (entry.consequence and explained):
            implied.setdefault(entry.verdict, set()).add(finding.code)
    for candidate in VERDICT_PRECEDENCE:
        if candidate in implied:
            return candidate, tuple(sorted(implied[candidate]))
    return (Verdict.OK if reachable else Verdict.UNREACHABLE), ()


def explain(code):
    """`fab explain CODE`: what a code means and what to do."""
    entry = CODES[code]

    def placeholders(text):
        return text.replace("{program}", program_name()).replace("{", "<").replace("}", ">")

    lines = ["%s (%s, step %d: %s)" % (entry.code, entry.severity, entry.step, STEPS[entry.step]), "",
             "  %s%s." % (entry.description[0].upper(), entry.description[1:]),
             "  Verdict: %s" % (entry.verdict or "unchanged (informs only)"),
             "  Fix: %s" % placeholders(entry.remedy)]
    lines += ["  Fix when %s: %s" % (cause, placeholders(fix)) for cause, fix in entry.causes]
    return "\n".join(lines)


def markdown_table():
    """The docs' code table (docs/findings.md), generated from the registry."""
    lines = ["| code | severity | step | verdict | meaning |", "|---|---|---|---|---|"]
    for entry in _TABLE:
        lines.append("| `%s` | %s | %d | %s | %s |" % (entry.code, entry.severity, entry.step,
                                                      entry.verdict or "-", entry.description))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
