"""SQS probe, run inside the app's own environment. Needs only boto3 there.

Reads its settings as JSON from argv[1]; prints one JSON document. Read-only:
it calls STS GetCallerIdentity, SQS GetQueueUrl and GetQueueAttributes (for each
queue and its dead-letter queue), with short timeouts and no retries. It never
receives, sends or deletes a message. Secrets leave it only as digests, keyed by
the controller.
"""
import email.utils
import json
import os
import platform
import sys
import time
import urllib.parse
import urllib.request

try:
    from .wire import ConfigError, ProbeConfig, from_wire
    from .appenv import preferred_keys, queue_entries, resolved_regions, value_problems
    from .celery_view import celery_view
    from .redact import describe_credentials, mask_key_ids_in, strip_url_user
except ImportError:  # shipped: redact.py's and appenv.py's sources are prepended (see agent.program)
    pass

ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed", "RedrivePolicy", "QueueArn", "VisibilityTimeout",
              "KmsMasterKeyId", "SqsManagedSseEnabled"]
DEPTH = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "QueueArn"]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def resolve_credentials(config, session):
    """The credentials the app uses: a preferred env pair if set, else boto3's chain."""
    key_id, secret, source = preferred_keys(config.credentials, os.environ)
    if key_id:
        return key_id, secret, None, source
    credentials = session.get_credentials() if session is not None else None
    if credentials is None:
        return None, None, None, None
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token, credentials.method


def scrub(text, secrets):
    text = mask_key_ids_in(str(text))
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


def known_regions(session):
    """Every region botocore knows for SQS, in every partition; None when it cannot say."""
    try:
        regions = set()
        for partition in session.get_available_partitions():
            regions |= set(session.get_available_regions("sqs", partition_name=partition))
        return regions
    except Exception:  # an old or broken botocore: the check is skipped, not guessed
        return None


def session_without_profile(boto3):
    """A session that ignores AWS_PROFILE, only to read botocore's region list and profile names."""
    saved = os.environ.pop("AWS_PROFILE", None)
    try:
        return boto3.Session()
    except Exception:
        return None
    finally:
        if saved is not None:
            os.environ["AWS_PROFILE"] = saved


def aws_clock(response_or_error, asked_at):
    """{date, skew_seconds}: the host's clock against the Date of an AWS answer (success or error),
    the request's own time taken at its middle; None without a Date."""
    response = response_or_error if isinstance(response_or_error, dict) else \
        getattr(response_or_error, "response", None) or {}
    date = (response.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return {"date": date, "skew_seconds": round((asked_at + time.time()) / 2 - server, 1)}


def proxy_route(sqs):
    """The proxy the SQS client goes through, as botocore chooses it from the environment: the
    variables (URL user removed), the endpoint, and the proxy applied to it (or None)."""
    variables = {name: strip_url_user(os.environ[name]) for name in PROXY_VARIABLES if os.environ.get(name)}
    if not variables or sqs is None:
        return None
    endpoint = sqs.meta.endpoint_url
    parsed = urllib.parse.urlparse(endpoint)
    proxies = urllib.request.getproxies_environment()
    bypassed = bool(urllib.request.proxy_bypass_environment(parsed.hostname or "", proxies))
    chosen = None if bypassed else proxies.get(parsed.scheme)
    return {"variables": variables, "endpoint": strip_url_user(endpoint),
            "proxy": strip_url_user(chosen) if chosen else None}


def dead_letter(sqs, attributes, secrets):
    """The queue's redrive policy and its dead-letter queue's depth (None: no policy). A
    dead-letter queue that cannot be read says why: "not judged", never "empty"."""
    try:
        policy = json.loads(attributes.get("RedrivePolicy") or "null")
    except ValueError:
        return {"error": {"code": "RedrivePolicyUnreadable", "message": "not JSON"}}
    if not isinstance(policy, dict) or not policy.get("deadLetterTargetArn"):
        return None
    arn = str(policy["deadLetterTargetArn"])
    parts = arn.split(":")
    entry = {"arn": arn, "name": parts[-1], "max_receive_count": policy.get("maxReceiveCount")}
    own_account = (attributes.get("QueueArn") or "").split(":")[4:5]
    try:
        kwargs = {"QueueName": parts[-1]}
        if len(parts) > 4 and [parts[4]] != own_account:
            kwargs["QueueOwnerAWSAccountId"] = parts[4]
        url = sqs.get_queue_url(**kwargs)["QueueUrl"]
        read = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTH)["Attributes"]
        entry.update(url=url, depth=int(read.get("ApproximateNumberOfMessages", 0)),
                     in_flight=int(read.get("ApproximateNumberOfMessagesNotVisible", 0)))
    except Exception as error:
        entry["error"] = error_record(error, secrets)
    return entry


class Finished(Exception):
    """The probe cannot go on: what it read so far is the result (with its error)."""


def main():
    result = {"schema": "sqs-probe/1", "python": platform.python_version(),
              "executable": sys.executable, "read_only": True}
    try:
        probe(result)
    except Finished:
        pass
    print(json.dumps(result))


def _stop(result, kind, message):
    result["error"] = {"kind": kind, "message": message}
    raise Finished()


def probe(result):
    """Fill `result` in order: the settings, boto3, the app's environment (its region, endpoints,
    a Celery app's broker), its credentials, who AWS says they are, then each queue."""
    try:
        config = from_wire(ProbeConfig, json.loads(sys.argv[1]))
    except ConfigError as error:        # a controller of another version: said, never guessed around
        _stop(result, "probe-crashed", "cannot read the controller's settings (%s)" % error)
    try:
        import boto3
        import botocore
        from botocore.config import Config
    except ImportError as error:
        _stop(result, "boto3-missing", str(error))
    result.update(boto3=boto3.__version__, botocore=botocore.__version__)
    problems = {}
    session, profile_region = _environment(result, config, boto3, problems)
    celery = _celery(result, config, profile_region) if config.celery_app else None
    key_id, secret, token, source = _credentials(config, session, celery, problems)
    secrets = [secret, token]
    result["credentials"] = describe_credentials(config.fingerprint_domain, key_id, secret, token, source)
    if problems:
        result["field_errors"] = {k: scrub(v, secrets) for k, v in problems.items()}
    if not key_id:
        _stop(result, "credentials-missing", "no credentials in the app's environment" +
              ("" if not problems else " (%s)" % "; ".join(result["field_errors"].values())))
    timeout = config.aws_timeout
    botocore_config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=timeout,
                             read_timeout=timeout, user_agent_extra=config.user_agent)
    region = result["region"]["app"]["value"]
    kwargs = dict(region_name=region, aws_access_key_id=key_id, aws_secret_access_key=secret,
                  aws_session_token=token, config=botocore_config)
    _identity(result, boto3, kwargs, secrets)
    try:
        sqs, client_error = boto3.client("sqs", **kwargs), None
    except Exception as error:  # an invalid region or endpoint: every queue says so
        sqs, client_error = None, error_record(error, secrets)
    result["proxy"] = proxy_route(sqs)
    result["queues"] = celery["queues"] if celery else queue_entries(config.queues, os.environ, region)
    for entry in result["queues"]:
        _queue(entry, boto3, sqs, client_error, kwargs, region, secrets, config.fingerprint_domain)


def _environment(result, config, boto3, problems):
    """(boto3 session, its profile's region) and what the app's environment says: value problems,
    regions as each library resolves them, endpoint overrides, the settings module."""
    try:
        session = boto3.Session()
        profile_region = session.region_name if os.environ.get("AWS_DEFAULT_REGION") is None else None
    except Exception as error:  # a broken AWS_PROFILE: one field's error, the rest is still read
        problems["session"] = "%s: %s" % (type(error).__name__, error)
        session, profile_region = None, None
    bare = session or session_without_profile(boto3)
    try:
        profiles = set(bare.available_profiles) if bare else None
    except Exception:  # an unreadable config file: the profile check is skipped
        profiles = None
    result["env_problems"] = value_problems(config, os.environ, known_regions(bare) if bare else None, profiles)
    result["region"] = resolved_regions(config.region, os.environ, profile_region)
    result["endpoints"] = {k: strip_url_user(v) for k, v in sorted(os.environ.items())
                           if k.startswith("AWS_ENDPOINT_URL")}
    result["settings_module"] = os.environ.get(config.settings_module_env or "", None)
    return session, profile_region


def _celery(result, config, profile_region):
    """The app's own Celery object says where its broker is: imported, never connected."""
    try:
        celery = celery_view(config.celery_app, profile_region)
    except BaseException as error:      # its import may fail in any way, even SystemExit
        _stop(result, "celery-unreadable", scrub("importing %s: %s: %s" % (
            config.celery_app, type(error).__name__, error), []))
    result["celery"] = {k: celery[k] for k in ("broker", "options", "predefined")}
    if celery["scheme"] != "sqs":
        _stop(result, "celery-unreadable", "the Celery broker is %s, not SQS" % celery["broker"])
    result["region"]["app"] = celery["region"]
    return celery


def _credentials(config, session, celery, problems):
    """(key id, secret, token, source): the broker URL's keys, else the app's own choice or boto3's chain."""
    try:
        if celery and celery["keys"][0]:        # the broker URL's keys (else kombu falls back to boto3's chain)
            (key_id, secret, source) = celery["keys"]
            return key_id, secret, None, source
        return resolve_credentials(config, session)
    except Exception as error:  # a credential provider that fails (bad profile, expired SSO cache)
        problems["credentials"] = "%s: %s" % (type(error).__name__, error)
        return None, None, None, None


def _identity(result, boto3, kwargs, secrets):
    """Who AWS says the credentials are (STS needs no permission), and its clock."""
    asked_at = time.time()
    try:
        identity = boto3.client("sts", **kwargs).get_caller_identity()
        result["identity"] = {"account": identity.get("Account"), "arn": identity.get("Arn")}
        result["aws_clock"] = aws_clock(identity, asked_at)
    except Exception as error:
        result["identity"] = {"error": error_record(error, secrets)}
        result["aws_clock"] = aws_clock(error, asked_at)


def _queue(entry, boto3, sqs, client_error, kwargs, region, secrets, domain):
    """One queue: its URL (GetQueueUrl, or a Celery predefined one) and attributes, read-only; a
    queue in another region, or with keys of its own, gets its own client."""
    client = sqs
    own = entry.pop("keys", None)           # a Celery predefined queue with keys of its own
    if own or entry.get("region") != region:
        client_kwargs = dict(kwargs, region_name=entry.get("region"))
        if own:
            client_kwargs.update(aws_access_key_id=own[0], aws_secret_access_key=own[1], aws_session_token=None)
            secrets.append(own[1])
            entry["credentials"] = describe_credentials(domain, own[0], own[1], None, own[2])
        try:
            client = boto3.client("sqs", **client_kwargs)
        except Exception as error:
            client, client_error = None, error_record(error, secrets)
    try:
        if client is None:
            entry["error"] = client_error
        elif entry.get("predefined_url"):
            entry["url"] = entry.pop("predefined_url")
        else:
            entry["url"] = client.get_queue_url(QueueName=entry["name"])["QueueUrl"]
    except Exception as error:
        entry["error"] = error_record(error, secrets)
    if entry.get("url"):
        try:
            attributes = client.get_queue_attributes(QueueUrl=entry["url"], AttributeNames=ATTRIBUTES)
            entry["attributes"] = attributes.get("Attributes", {})
            entry["dead_letter"] = dead_letter(client, entry["attributes"], secrets)
        except Exception as error:
            entry["attributes_error"] = error_record(error, secrets)


if __name__ == "__main__":
    main()
