"""The sandbox fleet's hosts and scenarios, as data.

Each scenario is the healthy fleet plus one change, and says which finding
codes it must produce on which hosts (the tests and docs/sandbox.md read `expect`).
"""
import re
import urllib.parse
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Tuple

from auditor.accounting import OUTSIDE

API_ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage")
WORKER_ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
                  "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
# kombu lists the queues at start; a Celery worker creates a queue it does not find (its default)
CELERY_WEB_ACTIONS = API_ACTIONS + ("sqs:ListQueues",)
CELERY_WORKER_ACTIONS = WORKER_ACTIONS + ("sqs:ListQueues", "sqs:CreateQueue")
REGION = "ap-northeast-2"
STAGING_ACCOUNT = "210987654321"     # a second AWS account; moto's default one is production
VIDEO_QUEUE = "academy-video-jobs"
AI_QUEUE = "academy-ai-jobs-basic"
CELERY_APP = "shop.celery:app"
CELERY_PREFIX = "shop-"
CELERY_QUEUE = CELERY_PREFIX + "encode"      # the app's queue `encode`, as kombu names it with the prefix

# a proxy with credentials, where nothing listens: its password must never leave the host
PROXY_URL = "http://egress:{random-secret}@127.0.0.1:3128"
# Placeholders resolved when a scenario is applied: generated, never committed.
RANDOM_AWS_KEY_ID = "{random-aws-key-id}"
RANDOM_SECRET = "{random-secret}"


def key_of(principal):
    """Placeholders for an issued key pair: "user", "user@account" or "user#2" (its second key)."""
    return "{key:%s}" % principal, "{secret:%s}" % principal


@dataclass(frozen=True)
class SandboxHost:
    name: str
    address: str
    role: str
    container: str
    iam_user: str
    command: Tuple[str, ...]
    settings_module: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    plain_process: bool = False     # runs as a process on the host, logging to a file: no Docker at all
    stack: str = "academy"          # academy (the reference app) or celery (the second stack)


VIDEO_1 = SandboxHost("video-1", "127.0.0.12", "video-worker", "academy-video-worker", "academy-video-worker",
                      ("python", "/app/worker.py"), "apps.api.config.settings.worker",
                      {"WORKER_KIND": "video", "WORKER_BACKOFF_SECONDS": "3", "WORKER_POLL_SECONDS": "2"})
API_1 = SandboxHost("api-1", "127.0.0.11", "api", "academy-api", "academy-api",
                    ("python", "/app/api_simulator.py"), "apps.api.config.settings.prod",
                    {"SIM_INTERVAL_SECONDS": "3"})
AI_1 = SandboxHost("ai-1", "127.0.0.13", "ai-worker", "academy-ai-worker-cpu", "academy-ai-worker",
                   ("python", "/app/worker.py"), "apps.api.config.settings.worker",
                   {"WORKER_KIND": "ai", "WORKER_BACKOFF_SECONDS": "3", "WORKER_POLL_SECONDS": "2"})
HOSTS = (
    API_1, VIDEO_1, AI_1,
    # started only by the scenarios that need them: a second video worker, an AI worker run as a
    # plain process (a venv under a supervisor, logging to a file), a second API host
    replace(VIDEO_1, name="video-2", address="127.0.0.14"),
    replace(AI_1, name="ai-2", address="127.0.0.15", plain_process=True),
    replace(API_1, name="api-2", address="127.0.0.16"),
    # the second stack, Celery on SQS: a web process calling .delay() and two workers (-Q encode)
    SandboxHost("web-1", "127.0.0.17", "web", "web", "shop-web", ("python", "/app/shop_web.py"), "", stack="celery"),
    SandboxHost("worker-1", "127.0.0.18", "worker", "worker", "shop-worker",
                ("python", "-m", "celery", "-A", CELERY_APP, "worker", "-Q", "encode", "-c", "1", "-n", "worker@%h",
                 "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"),
                "", stack="celery"),
)
HOSTS += (replace(HOSTS[-1], name="worker-2", address="127.0.0.19"),)
CELERY_HOSTS = ("web-1", "worker-1", "worker-2")
BASE_HOSTS = ("api-1", "video-1", "ai-1")
SSM_BUCKET = "fleet-audit-ssm-output"         # where the stand-in puts output, when a command names it


def instance_id(host):
    """The EC2-shaped id the SSM stand-in knows a sandbox host by."""
    return "i-%017x" % int(host.address.rsplit(".", 1)[1])
SSH_PORT = 2222


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    expect: Tuple[Tuple[str, str], ...] = ()          # exactly the (host, finding code) pairs it must produce
    verdicts: Mapping[str, str] = field(default_factory=dict)   # host -> verdict; others must be ok
    hosts: Tuple[str, ...] = BASE_HOSTS
    env: Mapping[str, Mapping[str, Optional[str]]] = field(default_factory=dict)  # None deletes
    env_on_disk_after_start: Mapping[str, Mapping[str, Optional[str]]] = field(default_factory=dict)
    denied_actions: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)   # iam user -> actions
    missing_queues: Tuple[str, ...] = ()
    stopped_containers: Tuple[str, ...] = ()          # host names
    crashing: Tuple[str, ...] = ()
    stopped_sshd: Tuple[str, ...] = ()
    staging_users: Tuple[str, ...] = ()               # IAM users that also exist in STAGING_ACCOUNT
    staging_queues: Tuple[str, ...] = ()              # queues that also exist there, same name
    second_keys: Tuple[str, ...] = ()                 # IAM users given a second access key
    unreadable_logs: Tuple[str, ...] = ()             # hosts whose container logs to a driver docker cannot read
    stopped_dockerd: Tuple[str, ...] = ()             # hosts whose Docker daemon is stopped after start
    over_ssm: Tuple[str, ...] = ()                    # hosts the inventory reaches by SSM Run Command
    extra_queues: Tuple[Tuple[str, str], ...] = ()    # (region, name): the same queues elsewhere too
    stack: str = "academy"                            # celery: the second stack's hosts and profile
    dead_letter: Tuple[Tuple[str, int], ...] = ()     # (queue, maxReceiveCount): a redrive policy to NAME-dlq
    visibility_timeouts: Tuple[Tuple[str, int], ...] = ()   # (queue, seconds): its VisibilityTimeout
    retention_periods: Tuple[Tuple[str, int], ...] = ()     # (queue, seconds): its MessageRetentionPeriod
    cross_check: bool = False                         # audited with --cross-check: AWS's own account of the queues
    outside_inventory: Tuple[str, ...] = ()           # hosts that run (and send) but the inventory leaves out
    controller_denied: Tuple[str, ...] = ()           # actions the controller's profiles are denied

    def verdict(self, host):
        return self.verdicts.get(host, "ok")


SCENARIOS = {s.name: s for s in (
    Scenario("healthy", "every host configured alike; jobs flow from api-1 to both workers"),
    Scenario("worker-wrong-region", "video-1 sets AWS_REGION=us-east-1, where the queue does not exist",
             expect=(("video-1", "sqs-queue-missing"), ("video-1", "worker-sqs-errors"),
                     ("video-1", "region-mismatch"), ("video-1", "no-producer-region"),
                     ("video-1", "jobs-not-consumed"), ("video-1", "backlog-no-consumer")),
             verdicts={"video-1": "config"}, env={"video-1": {"AWS_REGION": "us-east-1"}}),
    Scenario("default-region-only", "ai-1 sets only AWS_DEFAULT_REGION=us-west-2: the app still uses "
             "ap-northeast-2, boto3 and the AWS CLI use us-west-2",
             expect=(("ai-1", "region-env-conflict"),),
             env={"ai-1": {"AWS_REGION": None, "AWS_DEFAULT_REGION": "us-west-2"}}),
    Scenario("invalid-key", "api-1's AWS_ROOT_ACCESS_KEY_ID is a key id no one issued",
             expect=(("api-1", "sqs-credentials-invalid"), ("api-1", "api-enqueue-failures")),
             verdicts={"api-1": "config"}, env={"api-1": {"AWS_ROOT_ACCESS_KEY_ID": RANDOM_AWS_KEY_ID}}),
    Scenario("wrong-secret", "video-1's AWS_SECRET_ACCESS_KEY does not belong to its key id",
             expect=(("video-1", "sqs-signature-mismatch"), ("video-1", "worker-sqs-errors"),
                     ("video-1", "jobs-not-consumed"), ("video-1", "backlog-no-consumer")),
             verdicts={"video-1": "config"},
             env={"video-1": {"AWS_SECRET_ACCESS_KEY": RANDOM_SECRET}}),
    Scenario("no-permission", "ai-1's IAM user lacks sqs:GetQueueUrl and sqs:ReceiveMessage",
             expect=(("ai-1", "sqs-access-denied"), ("ai-1", "worker-sqs-errors"), ("ai-1", "jobs-not-consumed"),
                     ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "config"},
             denied_actions={"academy-ai-worker": ("sqs:GetQueueUrl", "sqs:ReceiveMessage")}),
    Scenario("queue-missing", "the AI queue academy-ai-jobs-basic does not exist",
             expect=(("api-1", "sqs-queue-missing"), ("api-1", "api-enqueue-failures"), ("ai-1", "sqs-queue-missing"),
                     ("ai-1", "worker-sqs-errors")),
             verdicts={"api-1": "config", "ai-1": "config"},
             missing_queues=(AI_QUEUE,)),
    Scenario("worker-down", "the video worker container exited",
             expect=(("video-1", "container-not-running"), ("video-1", "backlog-no-consumer")),
             verdicts={"video-1": "worker-down"},
             stopped_containers=("video-1",)),
    Scenario("crash-loop", "the AI worker dies at start and Docker keeps restarting it",
             expect=(("ai-1", "container-restarting"), ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "worker-down"},
             env={"ai-1": {"WORKER_CRASH": "1"}}, crashing=("ai-1",)),
    Scenario("startup-missing-env", "the AI worker exits at start, run after run, because its settings module "
             "raises ImproperlyConfigured for an unset DJANGO_SECRET_KEY (before any job)",
             expect=(("ai-1", "worker-start-config"), ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "config"},
             env={"ai-1": {"WORKER_START_FAILURE": "missing-env"}}, crashing=("ai-1",)),
    Scenario("startup-import-error", "the AI worker exits at start, run after run, because a module its code imports "
             "was left out of the image (ModuleNotFoundError, before any job)",
             expect=(("ai-1", "worker-start-code"), ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "code-suspect"},
             env={"ai-1": {"WORKER_START_FAILURE": "import-error"}}, crashing=("ai-1",)),
    Scenario("stale-env", "video-1's .env was corrected on disk, but the container still runs "
             "with AWS_REGION=us-east-1",
             expect=(("video-1", "stale-env"), ("video-1", "sqs-queue-missing"), ("video-1", "region-mismatch"),
                     ("video-1", "no-producer-region"), ("video-1", "worker-sqs-errors"),
                     ("video-1", "jobs-not-consumed"), ("video-1", "backlog-no-consumer")),
             verdicts={"video-1": "config"},
             env={"video-1": {"AWS_REGION": "us-east-1"}},
             env_on_disk_after_start={"video-1": {"AWS_REGION": REGION}}),
    Scenario("r2-keys", "api-1 has no AWS_ROOT_* keys, so its SQS client uses AWS_ACCESS_KEY_ID, "
             "which holds Cloudflare R2 keys",
             expect=(("api-1", "not-aws-key"), ("api-1", "sqs-credentials-invalid"), ("api-1", "api-enqueue-failures")),
             verdicts={"api-1": "config"},
             env={"api-1": {"AWS_ROOT_ACCESS_KEY_ID": None, "AWS_ROOT_SECRET_ACCESS_KEY": None}}),
    Scenario("host-unreachable", "ai-1's sshd is stopped",
             expect=(("ai-1", "ssh-unreachable"), ("ai-1", "job-flow-unjudged")),
             verdicts={"ai-1": "unreachable"},
             stopped_sshd=("ai-1",)),
    Scenario("other-account", "video-1 uses keys of the staging account, where a queue with the same "
             "name exists: it polls an empty queue while production's fills up",
             expect=(("video-1", "account-mismatch"), ("video-1", "queue-url-mismatch"),
                     ("video-1", "jobs-not-consumed"), ("video-1", "backlog-no-consumer")),
             # a fleet-wide mismatch marks the odd host, though its own checks pass
             verdicts={"video-1": "config"},
             env={"video-1": dict(zip(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                                      key_of("academy-video-worker@" + STAGING_ACCOUNT)))},
             staging_users=("academy-video-worker",), staging_queues=(VIDEO_QUEUE,)),
    Scenario("stale-secret-copy", "video-1 and video-2 share the video workers' key, but video-2 has a "
             "stale copy of its secret",
             expect=(("video-2", "secret-mismatch"), ("video-2", "sqs-signature-mismatch"),
                     ("video-2", "worker-sqs-errors")),
             verdicts={"video-2": "config"},
             hosts=BASE_HOSTS + ("video-2",),
             env={"video-2": {"AWS_SECRET_ACCESS_KEY": RANDOM_SECRET}}),
    Scenario("key-rotation-partial", "the video workers' key was rotated on video-1 only: video-2 still "
             "uses the old key, which works until it is deactivated",
             expect=(("video-1", "key-mismatch"), ("video-2", "key-mismatch")),
             hosts=BASE_HOSTS + ("video-2",),
             env={"video-2": dict(zip(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                                      key_of("academy-video-worker#2")))},
             second_keys=("academy-video-worker",)),
    Scenario("leftover-endpoint", "ai-1 still has AWS_ENDPOINT_URL_SQS from a LocalStack test, "
             "pointing at a local port where nothing listens",
             expect=(("ai-1", "endpoint-override"), ("ai-1", "sqs-endpoint-unreachable"), ("ai-1", "worker-sqs-errors"),
                     ("ai-1", "jobs-not-consumed"), ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "config"},
             env={"ai-1": {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4566"}}),
    Scenario("logs-unreadable", "video-1's worker logs to a driver `docker logs` cannot read back (none): "
             "whether it consumes is unknown",
             expect=(("video-1", "logs-unreadable"), ("video-1", "job-flow-unjudged")),
             verdicts={"video-1": "unknown"}, unreadable_logs=("video-1",)),
    Scenario("docker-down", "video-1's Docker daemon is down while the API enqueues: its worker's state and "
             "logs are unknown",
             expect=(("video-1", "docker-unavailable"), ("video-1", "job-flow-unjudged")),
             verdicts={"video-1": "unknown"}, stopped_dockerd=("video-1",)),
    Scenario("ssm-mixed", "the healthy fleet, with video-1 and ai-1 reached by SSM Run Command (the sandbox's "
             "stand-in runs the agent on them) and api-1 over SSH: the same findings as over SSH alone",
             over_ssm=("video-1", "ai-1")),
    Scenario("ssm-wrong-region", "worker-wrong-region with video-1 reached by SSM Run Command, run as the real SSM "
             "agent runs it (no HOME, the agent's PATH, the default Docker socket): the same findings as over SSH",
             expect=(("video-1", "sqs-queue-missing"), ("video-1", "worker-sqs-errors"),
                     ("video-1", "region-mismatch"), ("video-1", "no-producer-region"),
                     ("video-1", "jobs-not-consumed"), ("video-1", "backlog-no-consumer")),
             verdicts={"video-1": "config"}, env={"video-1": {"AWS_REGION": "us-east-1"}}, over_ssm=("video-1",)),
    Scenario("plain-process-worker", "the AI worker is a plain process on ai-2 (no Docker), logging to a "
             "rotated file; jobs flow as in healthy",
             hosts=("api-1", "video-1", "ai-2")),
    Scenario("api-wrong-region", "api-2, a second API host, sets AWS_REGION=us-east-1: it enqueues where the "
             "queues do not exist, while api-1 and the workers agree",
             expect=(("api-2", "region-mismatch"), ("api-2", "sqs-queue-missing"), ("api-2", "api-enqueue-failures")),
             verdicts={"api-2": "config"}, hosts=BASE_HOSTS + ("api-2",),
             env={"api-2": {"AWS_REGION": "us-east-1"}}),
    Scenario("api-wrong-region-lost", "api-2, a second API host, sets AWS_REGION=us-east-1, where queues of the "
             "same names exist: its jobs are accepted there and lost to the workers, who poll ap-northeast-2",
             expect=(("api-2", "region-mismatch"), ("api-2", "jobs-enqueued-unpolled")),
             verdicts={"api-2": "config"}, hosts=BASE_HOSTS + ("api-2",),
             env={"api-2": {"AWS_REGION": "us-east-1"}},
             extra_queues=(("us-east-1", VIDEO_QUEUE), ("us-east-1", AI_QUEUE))),
    Scenario("quoted-region", "ai-1's .env says AWS_DEFAULT_REGION=\"ap-northeast-2\" and docker --env-file "
             "keeps the quotes: boto3 would refuse that region",
             expect=(("ai-1", "env-value-invalid"), ("ai-1", "region-env-conflict")),
             verdicts={"ai-1": "config"}, env={"ai-1": {"AWS_DEFAULT_REGION": '"ap-northeast-2"'}}),
    Scenario("no-delete-permission", "the video worker's IAM user lacks sqs:DeleteMessage: every video job "
             "comes back after the visibility timeout and runs again",
             expect=(("video-1", "job-processed-twice"),),
             verdicts={"video-1": "config"}, denied_actions={"academy-video-worker": ("sqs:DeleteMessage",)}),
    Scenario("idle-worker", "the AI worker starts and then receives nothing (concurrency 0) while Excel jobs "
             "pile up in its queue",
             expect=(("ai-1", "worker-idle"), ("ai-1", "jobs-not-consumed")),
             verdicts={"ai-1": "worker-down"}, env={"ai-1": {"WORKER_PAUSED": "1"}}),
    Scenario("poison-job", "every second Excel job raises outside the AI worker's job path (`Unexpected error` "
             "and a traceback): the message is not deleted, and SQS redelivers it again and again",
             expect=(("ai-1", "job-repeated-failure"),),
             verdicts={"ai-1": "code-suspect"},
             env={"api-1": {"SIM_FAIL_QUEUE": "ai", "SIM_FAIL_EVERY": "2", "SIM_FAIL_MODE": "raise"}}),
    Scenario("dead-letter", "the AI queue has a redrive policy (2 receives) and every third Excel job raises in the "
             "worker: SQS moves those messages to academy-ai-jobs-basic-dlq",
             expect=(("ai-1", "dead-letter-messages"),),
             verdicts={"ai-1": "code-suspect"}, dead_letter=((AI_QUEUE, 2),),
             env={"api-1": {"SIM_FAIL_QUEUE": "ai", "SIM_FAIL_EVERY": "3", "SIM_FAIL_MODE": "raise"}}),
    Scenario("worker-exceptions", "every third Excel job fails in its handler (`SQS_JOB_FAILED`, the message deleted "
             "on purpose): nothing is redelivered, nothing reaches a dead-letter queue, the other jobs complete",
             expect=(("ai-1", "worker-exceptions"),),
             verdicts={"ai-1": "code-suspect"},
             env={"api-1": {"SIM_FAIL_QUEUE": "ai", "SIM_FAIL_EVERY": "3", "SIM_FAIL_MODE": "clean"}}),
    Scenario("poison-job-crash-loop", "the first video job fails in the video worker (`JOB_PROCESSING_FAILED` and a "
             "traceback), which backs the message off and exits 1, every time it comes back: a restarting container "
             "caused by one job",
             expect=(("video-1", "job-crash-loop"),),
             verdicts={"video-1": "code-suspect"},
             env={"api-1": {"SIM_FAIL_QUEUE": "video", "SIM_FAIL_EVERY": "1", "SIM_FAIL_LIMIT": "1"}}),
    Scenario("job-stuck", "the fourth Excel job never returns from its handler: the AI worker runs, holds it far longer "
             "than the queue's 8 s visibility timeout, and takes no other job",
             expect=(("ai-1", "job-stuck"),),
             verdicts={"ai-1": "code-suspect"}, visibility_timeouts=((AI_QUEUE, 8),),
             env={"api-1": {"SIM_FAIL_QUEUE": "ai", "SIM_FAIL_EVERY": "4", "SIM_FAIL_LIMIT": "1",
                            "SIM_FAIL_MODE": "hang"}}),
    Scenario("celery-healthy", "the second stack: a Celery app on SQS (profile celery), web-1 calling .delay() and two "
             "workers consuming; the web process logs nothing about its sends, so job flow is not judged",
             expect=(("web-1", "job-flow-unjudged"),), hosts=CELERY_HOSTS, stack="celery"),
    Scenario("celery-wrong-region", "worker-2's broker options name no region and boto3 has none: kombu falls back to "
             "its default us-east-1, creates the queue there and polls it, while the jobs wait in ap-northeast-2",
             expect=(("worker-2", "region-mismatch"), ("worker-2", "no-producer-region"), ("web-1", "job-flow-unjudged")),
             verdicts={"worker-2": "config"}, hosts=CELERY_HOSTS, stack="celery",
             env={"worker-2": {"CELERY_SQS_REGION": None}}),
    Scenario("celery-prefix-missing", "worker-2 lacks the queue_name_prefix: it creates and polls `encode`, a queue "
             "nobody sends to, instead of shop-encode",
             expect=(("worker-2", "queue-url-mismatch"), ("web-1", "job-flow-unjudged")),
             verdicts={"worker-2": "config"}, hosts=CELERY_HOSTS, stack="celery",
             env={"worker-2": {"CELERY_QUEUE_PREFIX": None}}),
    Scenario("celery-task-raises", "web-1 also sends shop.report, a task that always raises (a KeyError in the code) "
             "while shop.encode succeeds on worker-1",
             expect=(("worker-1", "worker-exceptions"), ("web-1", "job-flow-unjudged")),
             verdicts={"worker-1": "code-suspect"}, hosts=("web-1", "worker-1"), stack="celery",
             env={"web-1": {"SHOP_SEND_REPORTS": "1"}}),
    Scenario("outside-producer", "api-2, a second API deployment the inventory does not list, sends jobs (ids of "
             "its own) to the same queues: AWS counts more sends than the audited API logged (--cross-check)",
             expect=((OUTSIDE, "sent-outside-inventory"),), hosts=BASE_HOSTS + ("api-2",),
             env={"api-2": {"SIM_FIRST_NUMBER": "100000"}}, outside_inventory=("api-2",), cross_check=True),
    Scenario("retention-expiry", "the AI queue keeps messages 60 s (MessageRetentionPeriod) and its worker is "
             "stopped: the oldest Excel jobs reach the retention and SQS deletes them unseen (--cross-check)",
             expect=(("ai-1", "container-not-running"), ("ai-1", "backlog-no-consumer"), ("ai-1", "jobs-expiring")),
             verdicts={"ai-1": "worker-down"}, stopped_containers=("ai-1",), retention_periods=((AI_QUEUE, 60),),
             cross_check=True),
    Scenario("visibility-too-short", "video jobs take 4 s on two video workers, and the video queue's "
             "VisibilityTimeout is 2 s: each job comes back to the other worker while it still runs and runs twice; "
             "AWS counts two receives per message, and the cause is the queue's setting (--cross-check)",
             expect=(("video-1", "jobs-received-repeatedly"), ("video-2", "jobs-received-repeatedly")),
             verdicts={"video-1": "config", "video-2": "config"}, hosts=BASE_HOSTS + ("video-2",),
             visibility_timeouts=((VIDEO_QUEUE, 2),),
             env={"api-1": {"SIM_INTERVAL_SECONDS": "8"},
                  **{name: {"WORKER_JOB_SECONDS": "4", "WORKER_RECEIVE_VISIBILITY": ""} for name in ("video-1", "video-2")}},
             cross_check=True),
    Scenario("metrics-denied", "the healthy fleet audited with --cross-check by a controller whose principal may "
             "not call cloudwatch:GetMetricData: AWS's account is said unread, never zero",
             expect=(("controller", "queue-account-unread"),), cross_check=True,
             # moto names CloudWatch's actions by its endpoint prefix (monitoring:), AWS by cloudwatch:
             controller_denied=("cloudwatch:GetMetricData", "monitoring:GetMetricData")),
    Scenario("celery-lost-worker", "the Celery fleet's only worker names no region, so kombu polls us-east-1 while "
             "web-1's jobs wait in ap-northeast-2; web-1's .delay() logs nothing, so AWS's counts judge the job flow "
             "(--cross-check)",
             expect=(("worker-1", "region-mismatch"), ("worker-1", "no-producer-region"),
                     ("worker-1", "backlog-no-consumer"), ("worker-1", "sent-not-received")),
             verdicts={"worker-1": "config"}, hosts=("web-1", "worker-1"), stack="celery",
             env={"worker-1": {"CELERY_SQS_REGION": None}}, cross_check=True),
    Scenario("sqs-via-proxy", "ai-1's environment sends HTTP(S) through a proxy (with its own password in the URL) "
             "that does not answer, and no NO_PROXY exempts the SQS endpoint",
             expect=(("ai-1", "sqs-via-proxy"), ("ai-1", "worker-sqs-errors"), ("ai-1", "jobs-not-consumed"),
                     ("ai-1", "backlog-no-consumer")),
             verdicts={"ai-1": "config"},
             env={"ai-1": {"HTTP_PROXY": PROXY_URL, "HTTPS_PROXY": PROXY_URL}}),
)}


def iam_users(scenario):
    """Principal ("user" or "user@account") -> allowed actions, after the scenario's denials."""
    users = {}
    for host in HOSTS:
        actions = {"api": API_ACTIONS, "web": CELERY_WEB_ACTIONS, "worker": CELERY_WORKER_ACTIONS}.get(
            host.role, WORKER_ACTIONS)
        denied = scenario.denied_actions.get(host.iam_user, ())
        users[host.iam_user] = tuple(a for a in actions if a not in denied)
    for user in scenario.staging_users:
        users["%s@%s" % (user, STAGING_ACCOUNT)] = users[user]
    return users


def queues(scenario):
    """(region, name, account or None for the default account, attributes) of every queue to create,
    a dead-letter queue before the queue whose redrive policy names it."""
    attributes = {name: {} for name in (VIDEO_QUEUE, AI_QUEUE)}
    found = []
    for name, seconds in scenario.visibility_timeouts:
        attributes[name]["VisibilityTimeout"] = str(seconds)
    for name, seconds in scenario.retention_periods:
        attributes[name]["MessageRetentionPeriod"] = str(seconds)
    for name, receives in scenario.dead_letter:
        found.append((REGION, name + "-dlq", None, {}))
        attributes[name]["RedrivePolicy"] = {"deadLetterTargetName": name + "-dlq", "maxReceiveCount": receives}
    found += [(REGION, name, None, attributes[name]) for name in (VIDEO_QUEUE, AI_QUEUE)
              if name not in scenario.missing_queues]
    if scenario.stack == "celery":
        found.append((REGION, CELERY_QUEUE, None, {}))
    return tuple(found + [(REGION, name, STAGING_ACCOUNT, {}) for name in scenario.staging_queues] +
                 [(region, name, None, {}) for region, name in scenario.extra_queues])


def healthy_env(host, keys, r2_keys, endpoint):
    """The .env of one host in the healthy fleet (values are secrets: never print them)."""
    key_id, secret = keys[host.iam_user]
    if host.stack == "celery":          # the keys in the broker URL, URL-encoded, as Celery reads them
        return {"CELERY_BROKER_URL": "sqs://%s:%s@" % (urllib.parse.quote(key_id, safe=""),
                                                       urllib.parse.quote(secret, safe="")),
                "CELERY_SQS_REGION": REGION, "CELERY_QUEUE_PREFIX": CELERY_PREFIX, "AWS_ENDPOINT_URL": endpoint,
                "SHOP_INTERVAL_SECONDS": "3"}
    env = {"DJANGO_SETTINGS_MODULE": host.settings_module, "AWS_REGION": REGION,
           "VIDEO_SQS_QUEUE_NAME": VIDEO_QUEUE, "AI_SQS_QUEUE_NAME_BASIC": AI_QUEUE,
           "AWS_ENDPOINT_URL": endpoint}
    if host.role == "api":
        # as in production: R2 keys in AWS_ACCESS_KEY_ID, the SQS keys in AWS_ROOT_*
        env.update(AWS_ROOT_ACCESS_KEY_ID=key_id, AWS_ROOT_SECRET_ACCESS_KEY=secret,
                   AWS_ACCESS_KEY_ID=r2_keys[0], AWS_SECRET_ACCESS_KEY=r2_keys[1])
    else:
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    env.update(host.extra_env)
    return env


def apply_changes(env, changes, resolve):
    """The env with a scenario's changes; `resolve(placeholder)` gives each "{...}" in a value."""
    result = dict(env)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = re.sub(r"\{[^{}]+\}", lambda match: resolve(match.group(0)), value)
    return result


def markdown_table():
    """The docs' scenario table (docs/sandbox.md), generated from SCENARIOS (`python -m sandbox.scenarios`)."""
    lines = ["| scenario | what changes | exactly these findings | verdicts not ok |", "|---|---|---|---|"]
    for scenario in SCENARIOS.values():
        by_host = {}
        for host, code in scenario.expect:
            by_host.setdefault(host, []).append("`%s`" % code)
        found = "; ".join("%s: %s" % (host, ", ".join(codes)) for host, codes in by_host.items()) or "none"
        verdicts = ", ".join("%s `%s`" % item for item in scenario.verdicts.items()) or "-"
        lines.append("| `%s` | %s | %s | %s |" % (scenario.name, scenario.summary, found, verdicts))
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
