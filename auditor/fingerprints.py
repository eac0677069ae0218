"""Fingerprints that compare across audits without becoming a dictionary oracle.

On the host, the agent reduces every secret to a plain digest (`h1:` and 64 hex, of a fixed
domain and the value); the digest travels only inside the SSH channel. The controller keys
each one here, as soon as a host's output arrives and before anything is shown or stored:
HMAC-SHA256 with the operator's own key, truncated to 16 hex. The key is made once (32 random
bytes, mode 0600, in the user's config directory), never sent to a host and never written to
a report: two audits by the same operator give equal prints for equal values, and whoever
holds only a report cannot test guesses against them.
"""
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import sys
from pathlib import Path

from . import files

HOST_DIGEST = re.compile(r"h1:([0-9a-f]{64})")
log = logging.getLogger("auditor.fingerprints")


def key_path():
    """$FLEET_AUDIT_KEY_FILE, else $XDG_CONFIG_HOME (or ~/.config)/fleet-auditor/fingerprint.key."""
    configured = os.environ.get("FLEET_AUDIT_KEY_FILE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "fleet-auditor" / "fingerprint.key"


def _read(path):
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if files.others_may_read(info):
            raise OSError("readable by others or not yours (chmod 600 it, or delete it to make a new one)")
        text = os.read(descriptor, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(descriptor)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise OSError("damaged (delete it to make a new one: prints will change once)")
    return bytes.fromhex(text)


def _create(path):
    key = secrets.token_bytes(32)
    with os.fdopen(files.create_private(path), "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def operator_key(warn=None):
    """The operator's fingerprint key, made on first use. If it cannot be read or made, a key
    for this audit only (its prints compare within it, not with other audits), said on stderr."""
    path = key_path()
    try:
        try:
            return _read(path)
        except FileNotFoundError:
            return _create(path)
    except OSError as error:
        reason = error.strerror or str(error)
    (warn or _warn)("warning: fingerprint key %s: %s; this audit uses a key of its own, so its fingerprints will "
                    "not compare with other audits'" % (path, reason))
    return secrets.token_bytes(32)


def _warn(message):
    print(message, file=sys.stderr)


def rekey(text, key):
    """Every host digest in text replaced by its keyed fingerprint."""
    return HOST_DIGEST.sub(lambda m: hmac.new(key, m.group(1).encode(), hashlib.sha256).hexdigest()[:16], text)
