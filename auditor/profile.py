"""The default profile: the reference deployment of the runbook.

Every name here can be overridden under the inventory's `auditor:` key, per
group or per host; nothing else in the code assumes these values.
"""
from .agent.wire import MarkerKind

# lines both reference workers log, from their shared SQS client
WORKER_SQS_MARKERS = [
    {"name": "sqs-unavailable", "kind": "error", "pattern": r"SQS unavailable"},
    {"name": "queue-url-unavailable", "kind": "error", "pattern": r"Queue URL unavailable"},
]

DEFAULT_SETTINGS = {
    # what this host runs: keys of `roles` below
    "roles": [],
    "app_dir": "/home/ec2-user/academy",
    # where the app's environment comes from: container | dotenv | shell
    "env_from": "container",
    # container mode: the app container (default: the first role's container);
    # it falls back to the .env when that container is not running
    "app_container": None,
    "dotenv": ".env",
    # how the .env's consumer reads it: docker (--env-file, values verbatim),
    # compose or python-dotenv (quotes, `export` and inline comments handled)
    "dotenv_format": "compose",
    "app_python": "python",
    "settings_module_env": "DJANGO_SETTINGS_MODULE",
    "check_script": "scripts/check_sqs_worker_connectivity.py",
    # the app's own check script calls ReceiveMessage (it hides a real job),
    # so the audit runs it only when asked to
    "run_check_script": False,
    "known_hosts": None,
    # the instance metadata service, asked (for the instance role's name only) when the app's
    # container finds no credentials; null: never asked
    "imds_endpoint": "http://169.254.169.254",
    # the OpenSSH transport keeps each host's connection open this many seconds after an audit
    # (ControlMaster/ControlPersist, sockets in a private directory), so that repeated audits skip the
    # handshake; 0: off
    "ssh_control_persist": 0,
    "allowed_endpoints": [],
    "log_window": "1h",
    "log_max_bytes": 2000000,
    "parallel": 100,           # hosts at once; why 100: README, "Measured"
    "timeouts": {"connect": 10, "command": 60, "aws": 5},
    # how the app resolves its region: the first set variable, else the default
    "region": {"env": ["AWS_REGION"], "default": "ap-northeast-2"},
    # credential pairs the app prefers, in order; else boto3's default chain
    "credentials": {"prefer": [{"key_id": "AWS_ROOT_ACCESS_KEY_ID", "secret": "AWS_ROOT_SECRET_ACCESS_KEY"}]},
    # variables whose values are not secret and may be shown in clear
    "public_env": ["AWS_REGION", "AWS_DEFAULT_REGION", "DJANGO_SETTINGS_MODULE",
                   "VIDEO_SQS_QUEUE_NAME", "AI_SQS_QUEUE_NAME_BASIC", "AWS_ENDPOINT_URL",
                   "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_STS", "AWS_PROFILE"],
    # variables holding access key ids: shown masked
    "key_id_env": ["AWS_ACCESS_KEY_ID", "AWS_ROOT_ACCESS_KEY_ID"],
    # `fab audit --cross-check`: the controller's own AWS credentials look for every
    # queue name, to say where a queue really is. One AWS profile per account to
    # search (null: the default credential chain); regions: [] means every region
    # where SQS is offered; the files default to ~/.aws/config and credentials.
    "cross_check": {"profiles": [None], "regions": [], "config_file": None, "credentials_file": None,
                    "parallel": 16},
    # hosts reached by AWS Systems Manager Run Command (ansible_connection: community.aws.aws_ssm);
    # Ansible's ansible_aws_ssm_region/_profile/_bucket_name win over these. bucket: where output
    # larger than Run Command's inline 24,000 characters goes (read back with the controller's
    # credentials); endpoint_url/s3_endpoint_url: for a stand-in (the sandbox), never needed on AWS.
    "ssm": {"region": None, "profile": None, "bucket": None, "key_prefix": "fleet-audit", "delivery_timeout": 60,
            "endpoint_url": None, "s3_endpoint_url": None, "config_file": None, "credentials_file": None},
    "queues": {
        "video": {"name": "academy-video-jobs", "env": "VIDEO_SQS_QUEUE_NAME"},
        "ai-basic": {"name": "academy-ai-jobs-basic", "env": "AI_SQS_QUEUE_NAME_BASIC"},
    },
    "role_defs": {
        "api": {
            "container": "academy-api",
            "log_source": {"kind": "docker"},
            "produces": ["video", "ai-basic"],
            "consumes": [],
            "markers": [
                {"name": "video-enqueued", "kind": "enqueued", "queue": "video",
                 "pattern": r"Video job enqueued: video_id=(?P<job>[\w-]+)"},
                {"name": "excel-dispatch", "kind": "enqueued", "queue": "ai-basic",
                 "pattern": r"EXCEL_PARSING dispatch .*?job_id=(?P<job>[\w-]+)"},
                # the dispatch line comes before the send: a failed send names the job it lost
                {"name": "video-enqueue-failed", "kind": "enqueue-failed", "queue": "video",
                 "pattern": r"Failed to enqueue video job"},
                {"name": "ai-enqueue-failed", "kind": "enqueue-failed", "queue": "ai-basic",
                 "pattern": r"Failed to enqueue AI job: job_id=(?P<job>[\w-]+)"},
                {"name": "http-503", "kind": "enqueue-failed", "pattern": r"\" 503\b"},
            ],
        },
        "video-worker": {
            "container": "academy-video-worker",
            "log_source": {"kind": "docker"},
            "produces": [],
            "consumes": ["video"],
            # the video worker's job_id is its job row; the API names only the video: follow video_id
            "markers": [
                {"name": "started", "kind": "started", "pattern": r"Video Worker \(SQS\)"},
                {"name": "received", "kind": "received",
                 "pattern": r"SQS_MESSAGE_RECEIVED \|.*?\bvideo_id=(?P<job>[\w-]+)"},
                {"name": "completed", "kind": "completed",
                 "pattern": r"SQS_JOB_COMPLETED \|.*?\bvideo_id=(?P<job>[\w-]+)"},
                # logged with its traceback; then the worker backs the message off and exits 1
                {"name": "failed", "kind": "failed",
                 "pattern": r"JOB_PROCESSING_FAILED \|.*?\bvideo_id=(?P<job>[\w-]+)(?:.*?\berror=(?P<error>.*))?"},
                {"name": "delete-failed", "kind": "delete-failed", "pattern": r"Error deleting message"},
            ] + WORKER_SQS_MARKERS,
        },
        "ai-worker": {
            "container": "academy-ai-worker-cpu",
            "log_source": {"kind": "docker"},
            "produces": [],
            "consumes": ["ai-basic"],
            "markers": [
                {"name": "started", "kind": "started", "pattern": r"AI Worker \(SQS\)"},
                {"name": "received", "kind": "received",
                 "pattern": r"SQS_MESSAGE_RECEIVED \|.*?\bjob_id=(?P<job>[\w-]+)"},
                {"name": "completed", "kind": "completed",
                 "pattern": r"EXCEL_PARSING processed_by=worker job_id=(?P<job>[\w-]+)"},
                # the handler's error is the job's result: the message is deleted on purpose
                {"name": "failed", "kind": "failed",
                 "pattern": r"SQS_JOB_FAILED \|.*?\bjob_id=(?P<job>[\w-]+)(?: \| error=(?P<error>.*))?"},
                # outside the job path, with a traceback: the job in progress is not deleted and comes back
                {"name": "unexpected-error", "kind": "failed", "pattern": r"Unexpected error: (?P<error>.*)"},
                {"name": "delete-failed", "kind": "delete-failed",
                 "pattern": r"AI_JOB_SQS_DELETE_FAILED \| job_id=(?P<job>[\w-]+)"},
            ] + WORKER_SQS_MARKERS,
        },
    },
}

MARKER_KINDS = tuple(str(kind) for kind in MarkerKind)
# where a role's logs are read: its container (docker logs), a file and its rotations, or a systemd unit
LOG_SOURCES = {"docker": (), "file": ("path",), "journald": ("unit",)}
ENV_SOURCES = ("container", "dotenv", "shell")
