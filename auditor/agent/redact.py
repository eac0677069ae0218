"""The secret shapes both shipped programs use: digests of secrets and masked
key ids. One definition, so the host agent and the SQS probe always agree
(a secret in a `.env` and the one the probe used must fingerprint alike).

`agent.program()` prepends this file's source to each program when it is
shipped; at home they import it as a module.
"""
import hashlib
import re

AWS_KEY_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$")
KEY_ID_IN_TEXT = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def fingerprint(domain, value):
    """The host's digest of a value, `h1:` and 64 hex. It never reaches a report: the controller
    replaces it at once with a print keyed by the operator's own key (auditor/fingerprints.py)."""
    return "h1:" + hashlib.sha256((domain + "\0" + value).encode("utf-8")).hexdigest()


def mask_key_id(value):
    """AKIA************WXYZ: enough to tell keys apart, not to use one."""
    if not value:
        return None
    return value[:4] + "*" * max(len(value) - 8, 4) + value[-4:] if len(value) >= 12 else "*" * len(value)


def mask_key_ids_in(text):
    """Every full AWS key id in a text, masked."""
    return KEY_ID_IN_TEXT.sub(lambda m: mask_key_id(m.group(0)), text)


def strip_url_user(value):
    """A URL's user info (user:password@) is a secret: http://***@host."""
    return re.sub(r"//[^@/]*@", "//***@", value)


def strip_url_users_in(text):
    """strip_url_user for every URL in a text (JSON included: user info stops at a quote or space)."""
    return re.sub(r"(\w+://)[^/@\s\"]+@", r"\1***@", text)


def describe_credentials(domain, key_id, secret, session_token, source):
    """A credential pair as it may leave the host: masked key id, fingerprints, shape."""
    return {"source": source, "key_id": mask_key_id(key_id),
            "key_id_fp": fingerprint(domain, key_id) if key_id else None,
            "secret_fp": fingerprint(domain, secret) if secret else None,
            "looks_like_aws_key": bool(key_id and AWS_KEY_ID.match(key_id)),
            "session_token": bool(session_token)}
