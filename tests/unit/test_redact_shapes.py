"""Secrets nobody declared are scrubbed on the host by their shape, and nothing else is: every
recorded scenario's facts (job ids, hashes, image digests, host keys, tracebacks) pass unchanged."""
import json
from pathlib import Path

import pytest

from auditor.agent import environment
from auditor.agent.redact import REMOVED, scrub_shapes

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz3xAmPLEK"                   # made up, 40 characters
TOKEN = "FwoGZXIvYXdzEBYaDHqa0AP1yBZBOk9fmvLRd/U3eQ1kPbyNkXn2+hpCmz8Q4" * 4    # made up, 240 characters


def scrubbed(line):
    """A line as it stands in the facts' JSON text, scrubbed, read back."""
    return json.loads(scrub_shapes(json.dumps({"line": line})))["line"]


@pytest.mark.parametrize("line, kept", [
    ("botocore: key=%s sess=%s" % (SECRET, TOKEN), "botocore: key=%s sess=%s" % (REMOVED, REMOVED)),
    ("Traceback (most recent call last):\nValueError: bad secret %s" % SECRET, "ValueError: bad secret " + REMOVED),
    ("aws_secret_access_key = %s" % SECRET, "aws_secret_access_key = " + REMOVED),
    ("AKIA************WXYZ:%s" % SECRET, "AKIA************WXYZ:" + REMOVED),
    ("token %s" % TOKEN, "token " + REMOVED),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=abc\nnext",
     "Authorization: %s\nnext" % REMOVED),
    ("GET /?X-Amz-Security-Token=%s&X-Amz-Date=20261202" % TOKEN, "X-Amz-Security-Token=%s&X-Amz-Date" % REMOVED),
    ("x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nZm9v\n-----END RSA PRIVATE KEY-----\ny",
     "x\n%s\ny" % REMOVED),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", REMOVED),
])
def test_credentials_are_removed_by_their_shape(line, kept):
    after = scrubbed(line)
    assert kept in after
    assert SECRET not in after and TOKEN[:40] not in after and "MIIEpAIBAAKCAQEA" not in after


@pytest.mark.parametrize("line", [
    "image sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae pulled",
    "commit key=3f786850e387550fdab836ed7e6dc881de23001b",                  # a SHA-1 after `key=`: hex
    "host key SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU is marked @revoked",
    "Task tasks.encode[1c9d1bf2-7b0e-4c5e-9a3f-2b1f6c1e0d7a] succeeded in 0.01s",
    "SQS_MESSAGE_RECEIVED | worker=ai-1 | request_id=4f1c2d | job_id=xl-1-0de942 | tier=basic",
    "video_id=567 job_id=1234 path=/srv/academy/media/videos/2026/11/26/clip.mp4",
    "integrity sha512-%s" % ("Ab9" * 30),
])
def test_public_shapes_survive(line):
    assert scrubbed(line) == line


def test_no_recorded_scenario_loses_a_byte_to_the_shape_scrub():
    """The false positives, measured: every recorded scenario's facts (the sandbox's real app logs,
    reduced by the agent) and every hand-made case, through the shape scrub, unchanged."""
    changed = [path.name for path in sorted(GOLDEN.glob("*.json")) + sorted((GOLDEN / "handmade").glob("*.json"))
               if scrub_shapes(path.read_text()) != path.read_text()]
    assert changed == []


def test_a_private_value_is_scrubbed_only_as_a_whole_token_and_never_inside_a_public_one(monkeypatch):
    monkeypatch.setattr(environment, "SECRETS", {"127.0.0.1", "hunter2-secret", "abcdefgh12"})
    monkeypatch.setattr(environment, "PUBLIC_VALUES", {"http://127.0.0.1:2498"})
    facts = {"endpoint": "AWS_ENDPOINT_URL=http://127.0.0.1:2498", "log": "line\nhunter2-secret end",
             "id": "xabcdefgh12y", "word": "abcdefgh12"}
    after = json.loads(environment.scrub_outgoing(json.dumps(facts), "domain"))
    assert after["endpoint"] == facts["endpoint"] and after["id"] == "xabcdefgh12y"
    assert after["log"].startswith("line\nfp:") and after["word"].startswith("fp:")
