"""The controller's own AWS sessions (the cross-check, and SSM Run Command): a profile, the
configured config and credentials files, one attempt per call with short timeouts."""
import threading

from . import USER_AGENT

# boto3 sessions are not thread-safe (clients are): sessions and clients are made under this lock
CLIENTS_LOCK = threading.Lock()


def session_for(profile=None, config_file=None, credentials_file=None):
    """A boto3 session on the controller's credentials, honouring the configured files."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    if config_file:
        core.set_config_variable("config_file", config_file)
    if credentials_file:
        core.set_config_variable("credentials_file", credentials_file)
    if profile:
        core.set_config_variable("profile", profile)
    return boto3.Session(botocore_session=core)


def client_config(timeout, attempts=2):
    """botocore's settings for the controller's clients: `attempts` in all (botocore's own
    `max_attempts` counts retries after the first, not attempts), each bounded by `timeout`."""
    from botocore.config import Config

    return Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=float(timeout),
                  read_timeout=float(timeout), user_agent_extra=USER_AGENT)
