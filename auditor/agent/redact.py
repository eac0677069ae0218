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


# -- secrets by shape: what no .env declared (an unreadable .env, a traceback quoting a credential) --
# Every pattern runs on the facts' JSON text, where a line break is the two characters `\n`: a token
# starts after a character outside its alphabet or after such an escape.
_AFTER = r"(?:(?<=\\[nrt\"])|(?<![A-Za-z0-9/+_-]))"
# base64 runs of 40 characters or more (an AWS secret access key is 40, a session token hundreds)
LONG_TOKEN = re.compile(_AFTER + r"[A-Za-z0-9/+_-]{40,}={0,2}(?![A-Za-z0-9/+=_-])")
# the words that make a 40-character run a credential when they come just before it
SECRET_CONTEXT = re.compile(r"(?i)(secret|passw|pwd|token|cred|private|signature|\bkey|\bsk\b|sess|auth)"
                            r"|\b(?:AKIA|ASIA)[A-Z0-9*]{12,16}\b")
CONTEXT_CHARS = 40
DIGEST_PREFIX = re.compile(r"(?i)\b(?:sha(?:1|224|256|384|512)|md5)[:=-]$")
ALWAYS_SECRET = 100                 # no job id, hash or digest is a mixed-case base64 run this long
HEADER_VALUE = re.compile(r"(?i)(\b(?:authorization|proxy-authorization|x-amz-security-token|x-amz-signature)"
                          r"(?:\\?\")?\s*[:=]\s*(?:\\?\")?)((?:(?!\\[nrt\"]|\\\\|[\"&]).)+)")
PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]+ )?PRIVATE KEY-----(?:(?!-----END).)*?"
                         r"(?:-----END ([A-Z0-9 ]+ )?PRIVATE KEY-----|(?=\"|$))")
REMOVED = "[secret removed]"


def _is_credential_shape(token):
    """Mixed-case base64, not hex: SHA-1s, SHA-256s and image digests are hex; ids are short."""
    letters = token.rstrip("=")
    return any(c.isupper() for c in letters) and any(c.islower() for c in letters) and \
        not re.fullmatch(r"[0-9a-fA-F]+", letters)


def _long_token(match):
    token = match.group(0)
    if not _is_credential_shape(token):
        return token
    before = match.string[max(0, match.start() - CONTEXT_CHARS):match.start()]
    if DIGEST_PREFIX.search(before):
        return token                    # SHA256:... of an SSH key, sha512-... of a package: public
    if len(token) >= ALWAYS_SECRET or SECRET_CONTEXT.search(before):
        return REMOVED
    return token


def scrub_shapes(text):
    """Credentials found by their shape in free text: private key blocks, Authorization and
    X-Amz-Security-Token values, base64 runs that are long enough to be a session token, or
    40 characters and more just after a secret-like word or a key id (an AWS secret access key)."""
    text = PRIVATE_KEY.sub(REMOVED, text)
    text = HEADER_VALUE.sub(lambda m: m.group(1) + REMOVED, text)
    return LONG_TOKEN.sub(_long_token, text)


def describe_credentials(domain, key_id, secret, session_token, source):
    """A credential pair as it may leave the host: masked key id, fingerprints, shape."""
    return {"source": source, "key_id": mask_key_id(key_id),
            "key_id_fp": fingerprint(domain, key_id) if key_id else None,
            "secret_fp": fingerprint(domain, secret) if secret else None,
            "looks_like_aws_key": bool(key_id and AWS_KEY_ID.match(key_id)),
            "session_token": bool(session_token)}
