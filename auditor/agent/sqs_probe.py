"""SQS probe, run inside the app's own environment. Needs only boto3 there.

Reads its settings as JSON from argv[1]; prints one JSON document. Read-only:
it calls STS GetCallerIdentity, SQS GetQueueUrl and GetQueueAttributes, once
each, with short timeouts and no retries. It never receives, sends or deletes
a message. Secrets leave it only as salted, truncated fingerprints.
"""
import json
import os
import platform
import re
import sys

try:
    from .redact import fingerprint, mask_key_id
except ImportError:  # shipped: redact.py's source is prepended (see agent.program)
    pass

AWS_KEY_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$")
KEY_ID_IN_TEXT = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed", "RedrivePolicy", "QueueArn"]


def first_set(names):
    for name in names:
        if os.environ.get(name):
            return name, os.environ[name]
    return None, None


def resolve_regions(config, session):
    """The region as the app, boto3 and AWS CLI v2 each resolve it, with the source."""
    name, value = first_set(config["region"]["env"])
    app = {"value": value, "source": "env:" + name} if name else \
        {"value": config["region"].get("default"), "source": "app-default"}
    profile_region = session._session.get_scoped_config().get("region") if session else None
    if os.environ.get("AWS_DEFAULT_REGION"):
        boto = {"value": os.environ["AWS_DEFAULT_REGION"], "source": "env:AWS_DEFAULT_REGION"}
    else:
        boto = {"value": profile_region, "source": "config-file" if profile_region else None}
    name, value = first_set(["AWS_REGION", "AWS_DEFAULT_REGION"])
    cli = {"value": value, "source": "env:" + name} if name else \
        {"value": profile_region, "source": "config-file" if profile_region else None}
    return {"app": app, "boto3": boto, "cli": cli}


def resolve_credentials(config, boto3):
    """The credentials the app uses: a preferred env pair if set, else boto3's chain."""
    for pair in config["credentials"].get("prefer", []):
        key_id, secret = os.environ.get(pair["key_id"]), os.environ.get(pair["secret"])
        if key_id and secret:
            return key_id, secret, None, "env:" + pair["key_id"]
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return None, None, None, None
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token, credentials.method


def scrub(text, secrets):
    text = KEY_ID_IN_TEXT.sub(lambda m: mask_key_id(m.group(0)), str(text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:400]


def error_record(error, secrets):
    response = getattr(error, "response", None) or {}
    err = response.get("Error", {})
    return {"code": err.get("Code") or type(error).__name__,
            "query_code": err.get("QueryErrorCode"),
            "http_status": response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "message": scrub(err.get("Message") or error, secrets)}


def main():
    config = json.loads(sys.argv[1])
    result = {"schema": "sqs-probe/1", "python": platform.python_version(),
              "executable": sys.executable, "read_only": True}
    try:
        import boto3
        import botocore
        from botocore.config import Config
    except ImportError as error:
        result["error"] = {"kind": "boto3-missing", "message": str(error)}
        print(json.dumps(result))
        return
    result.update(boto3=boto3.__version__, botocore=botocore.__version__)
    salt = config["salt"]
    try:
        session = boto3.Session()
    except Exception:  # a broken profile must not hide everything else
        session = None
    result["region"] = resolve_regions(config, session)
    result["endpoints"] = {k: re.sub(r"//[^@/]*@", "//***@", v) for k, v in sorted(os.environ.items())
                           if k.startswith("AWS_ENDPOINT_URL")}
    result["settings_module"] = os.environ.get(config.get("settings_module_env") or "", None)
    key_id, secret, token, source = resolve_credentials(config, boto3)
    secrets = [secret, token]
    result["credentials"] = {
        "source": source,
        "key_id": mask_key_id(key_id),
        "key_id_fp": fingerprint(salt, key_id) if key_id else None,
        "secret_fp": fingerprint(salt, secret) if secret else None,
        "looks_like_aws_key": bool(key_id and AWS_KEY_ID.match(key_id)),
        "session_token": bool(token),
    }
    if not key_id:
        result["error"] = {"kind": "credentials-missing", "message": "no credentials in the app's environment"}
        print(json.dumps(result))
        return
    timeout = float(config.get("aws_timeout", 5))
    botocore_config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=timeout,
                             read_timeout=timeout, user_agent_extra=config["user_agent"])
    region = result["region"]["app"]["value"]
    kwargs = dict(region_name=region, aws_access_key_id=key_id, aws_secret_access_key=secret,
                  aws_session_token=token, config=botocore_config)
    try:
        identity = boto3.client("sts", **kwargs).get_caller_identity()
        result["identity"] = {"account": identity.get("Account"), "arn": identity.get("Arn")}
    except Exception as error:
        result["identity"] = {"error": error_record(error, secrets)}
    sqs = boto3.client("sqs", **kwargs)
    result["queues"] = []
    for key, queue in config["queues"].items():
        env_name = queue.get("env")
        name = os.environ.get(env_name) if env_name and os.environ.get(env_name) else queue["name"]
        entry = {"key": key, "name": name, "name_source": "env:" + env_name if name != queue["name"] else "profile",
                 "region": region}
        try:
            entry["url"] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except Exception as error:
            entry["error"] = error_record(error, secrets)
        if entry.get("url"):
            try:
                attributes = sqs.get_queue_attributes(QueueUrl=entry["url"], AttributeNames=ATTRIBUTES)
                entry["attributes"] = attributes.get("Attributes", {})
            except Exception as error:
                entry["attributes_error"] = error_record(error, secrets)
        result["queues"].append(entry)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
