"""The auditor's settings before any app: generic defaults, and the app profiles.

A profile (`auditor/profiles/NAME.yaml`, or a file of one's own) gives one app's
names: queues, roles with their containers and log markers, the variables its
region and keys come from, and the words its remedies use. `auditor: {profile:
NAME | PATH | none}` chooses one (default: `academy`, the reference deployment);
nothing of another profile applies. The inventory's `auditor:` layers are
merged over it, and null removes an inherited entry (`queues: {video: null}`).
"""
from pathlib import Path


from .agent.wire import MarkerKind

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "academy"

DEFAULT_SETTINGS = {
    # what this host runs: keys of `roles` below
    "roles": [],
    # the app profile: a name under auditor/profiles, a YAML file's path, or none
    "profile": DEFAULT_PROFILE,
    "app_dir": ".",
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
    # the app's working directory inside its container, for its check script (null: the image's)
    "app_workdir": None,
    "settings_module_env": None,
    "check_script": None,
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
    # how the app resolves its region: the first set variable, else the default (boto3's own rule)
    "region": {"env": ["AWS_DEFAULT_REGION"], "default": None},
    # credential pairs the app prefers, in order; else boto3's default chain
    "credentials": {"prefer": []},
    # variables whose values are not secret and may be shown in clear (the region's, the settings
    # module's and the queue names' variables are added to these)
    "public_env": ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
                   "AWS_ENDPOINT_URL_STS", "AWS_PROFILE"],
    # variables holding access key ids: shown masked
    "key_id_env": ["AWS_ACCESS_KEY_ID"],
    # words of the app's own that remedies use
    "queue_create_hint": "aws sqs create-queue --queue-name NAME --region REGION",
    "job_id_hint": "",
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
    # the app's queues: KEY -> {name, env: the variable that overrides the name}
    "queues": {},
    # the app's roles: NAME -> {container, log_source, produces, consumes, markers}
    "role_defs": {},
}
# what one entry of `queues` and of `role_defs` may hold, with its defaults
QUEUE_SCHEMA = {"name": "", "env": None}
ROLE_SCHEMA = {"container": None, "log_source": {"kind": "docker"}, "produces": [], "consumes": [], "markers": []}

MARKER_KINDS = tuple(str(kind) for kind in MarkerKind)
# where a role's logs are read: its container (docker logs), a file and its rotations, or a systemd unit
LOG_SOURCES = {"docker": (), "file": ("path",), "journald": ("unit",)}
ENV_SOURCES = ("container", "dotenv", "shell")


_LOADED = {}


def profile_path(choice):
    """The file of a profile named in the inventory: a name under auditor/profiles, or a path."""
    if "/" in choice or choice.endswith((".yaml", ".yml")):
        return Path(choice).expanduser()
    return PROFILES / (choice + ".yaml")


def shipped_profiles():
    return sorted(path.stem for path in PROFILES.glob("*.yaml"))


def load_profile(choice, loader):
    """A profile's settings (a mapping, read once per process with `loader`, the inventory's YAML
    reader, so its errors name the profile's file and line); {} for `none`."""
    if choice in (None, "none"):
        return {}
    if choice not in _LOADED:
        _LOADED[choice] = loader(profile_path(choice))
    return _LOADED[choice]


# one line per setting: the README's settings reference is generated from these and the defaults
SETTING_DOCS = {
    "roles": "what the host runs: names of `role_defs` entries",
    "profile": "the app profile: a name under auditor/profiles, a YAML file's path, or `none`",
    "app_dir": "the app's directory on the host (its .env and check script are found there)",
    "env_from": "where the app's environment is read: `container`, `dotenv` or `shell`",
    "app_container": "container mode: the app's container (null: the first role's container)",
    "dotenv": "the .env file, relative to app_dir",
    "dotenv_format": "how the .env's reader parses it: `docker` (verbatim), `compose` or `python-dotenv`",
    "app_python": "the Python inside the app's container",
    "app_workdir": "the app's directory inside its container, where its check script runs (null: the image's)",
    "settings_module_env": "the variable naming the app's settings module, shown in the matrix",
    "check_script": "the app's own SQS check script, relative to the app's directory",
    "run_check_script": "run it too (it calls ReceiveMessage, hiding a real job: off unless asked)",
    "known_hosts": "the known_hosts file for host keys (null: ssh_config's, then ~/.ssh/known_hosts)",
    "imds_endpoint": "the instance metadata service asked for the role's name when the app finds no "
                     "credentials (null: never)",
    "ssh_control_persist": "seconds the OpenSSH transport keeps a host's connection for the next audit (0: off)",
    "allowed_endpoints": "AWS endpoint overrides that are expected (not reported)",
    "log_window": "how far back logs are read: seconds or a duration (90m, 1h, 2h30m)",
    "log_max_bytes": "the newest bytes of each workload's logs that are read",
    "parallel": "hosts audited at once",
    "timeouts": "seconds: `connect` (SSH), `command` (the agent's whole run), `aws` (each AWS call)",
    "region": "how the app resolves its region: the first set of `env`, else `default`",
    "credentials": "`prefer`: key id/secret variable pairs the app uses before boto3's chain",
    "public_env": "variables shown in clear (the region's, settings module's and queue names' are added)",
    "key_id_env": "variables holding access key ids: shown masked",
    "queue_create_hint": "how the app's queues are created, for the missing-queue remedy",
    "job_id_hint": "which id the markers should share, for the job-ids remedy",
    "cross_check": "`--cross-check`: the controller's AWS `profiles` (one per account), `regions` ([]: all), "
                   "`config_file`, `credentials_file`, `parallel`",
    "ssm": "Run Command hosts: `region`, `profile`, `bucket`, `key_prefix`, `delivery_timeout`, `endpoint_url`, "
           "`s3_endpoint_url`, `config_file`, `credentials_file`",
    "queues": "KEY -> `{name, env}`: the queue's name and the variable that overrides it",
    "role_defs": "NAME -> `{container, log_source, produces, consumes, markers}`",
}


def settings_table():
    """The README's settings reference (`python -m auditor.profile`)."""
    import json
    lines = ["| setting | generic default | meaning |", "|---|---|---|"]
    for key, default in DEFAULT_SETTINGS.items():
        lines.append("| `%s` | `%s` | %s |" % (key, json.dumps(default), SETTING_DOCS[key]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
