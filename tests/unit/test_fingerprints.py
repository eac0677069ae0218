"""The operator's fingerprint key: made once 0600, reused, refused when others may read it or
it is a link; host digests are keyed with it, so prints compare across audits and nowhere else."""
import hashlib
import os

from auditor import fingerprints
from auditor.agent.redact import fingerprint


def test_the_key_is_made_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("FLEET_AUDIT_KEY_FILE", raising=False)
    first = fingerprints.operator_key(warn=lambda m: (_ for _ in ()).throw(AssertionError(m)))
    path = tmp_path / "fleet-auditor" / "fingerprint.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert fingerprints.operator_key() == first


def test_a_key_others_may_read_or_a_link_is_not_used(tmp_path, monkeypatch):
    key = tmp_path / "key"
    monkeypatch.setenv("FLEET_AUDIT_KEY_FILE", str(key))
    fingerprints.operator_key()
    key.chmod(0o644)
    said = []
    assert fingerprints.operator_key(warn=said.append) != fingerprints.operator_key(warn=said.append)
    assert "readable by others" in said[0]
    key.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(key)
    monkeypatch.setenv("FLEET_AUDIT_KEY_FILE", str(link))
    said.clear()
    fingerprints.operator_key(warn=said.append)
    assert said and "fingerprint key" in said[0]


def test_host_digests_are_keyed_equal_for_equal_values_and_keys_only():
    digest = fingerprint("domain", "a-secret-value")
    assert digest == "h1:" + hashlib.sha256(b"domain\0a-secret-value").hexdigest()
    text = '{"fp": "%s", "note": "fp:%s"}' % (digest, digest)
    keyed = fingerprints.rekey(text, b"k" * 32)
    assert "h1:" not in keyed and keyed == fingerprints.rekey(text, b"k" * 32)
    assert keyed != fingerprints.rekey(text, os.urandom(32))
