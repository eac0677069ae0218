"""The secret shapes both shipped programs use: salted fingerprints and masked
key ids. One definition, so the host agent and the SQS probe always agree
(a secret in a `.env` and the one the probe used must fingerprint alike).

`agent.program()` prepends this file's source to each program when it is
shipped; at home they import it as a module.
"""
import hashlib


def fingerprint(salt, value):
    """Equal values give equal prints within one audit (one salt), nothing more."""
    return hashlib.sha256((salt + "\0" + value).encode("utf-8")).hexdigest()[:16]


def mask_key_id(value):
    """AKIA************WXYZ: enough to tell keys apart, not to use one."""
    if not value:
        return None
    return value[:4] + "*" * max(len(value) - 8, 4) + value[-4:] if len(value) >= 12 else "*" * len(value)
