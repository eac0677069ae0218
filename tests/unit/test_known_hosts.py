"""Host keys are parsed once per audit and shared: the per-connection cost does not grow with
known_hosts (plain names are a dict lookup; hashed `|1|` entries are matched by HMAC)."""
import base64
import os

import paramiko

from auditor.transports import Session
from auditor.transports.paramiko_ssh import IndexedHostKeys


def write_known_hosts(path, plain, hashed):
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)).decode()
    lines = ["[10.0.%d.%d]:22 ssh-ed25519 %s" % (n // 250, n % 250, blob) for n in range(plain)]
    lines += ["%s ssh-ed25519 %s" % (paramiko.HostKeys.hash_host("[10.9.%d.%d]:22" % (n // 250, n % 250)), blob)
              for n in range(hashed)]
    path.write_text("\n".join(lines) + "\n")
    return blob


def test_a_2000_line_known_hosts_is_parsed_once_for_many_connections(tmp_path, monkeypatch):
    path = tmp_path / "known_hosts"
    write_known_hosts(path, 1800, 200)
    parses = []
    original = IndexedHostKeys.load
    monkeypatch.setattr(IndexedHostKeys, "load", lambda self, f: (parses.append(f), original(self, f)))
    paramiko_ssh = Session().transport("paramiko")      # one audit's
    tables = {id(paramiko_ssh.host_key_table(str(path))) for _ in range(500)}
    assert len(tables) == 1 and parses == [str(path)]


def test_plain_lookups_do_not_scan_and_hashed_entries_still_match(tmp_path, monkeypatch):
    path = tmp_path / "known_hosts"
    write_known_hosts(path, 1800, 200)
    table = Session().transport("paramiko").host_key_table(str(path))
    scanned = []
    original = table._hostname_matches
    monkeypatch.setattr(table, "_hostname_matches", lambda h, e: (scanned.append(e), original(h, e))[1])
    assert table.lookup("[10.0.3.7]:22") is not None
    assert len(scanned) == 200                      # the hashed entries only, never the 1,800 plain ones
    assert table.lookup("[10.9.0.42]:22") is not None
    assert table.lookup("[10.8.0.1]:22") is None


def test_a_changed_file_is_parsed_again(tmp_path):
    path = tmp_path / "known_hosts"
    write_known_hosts(path, 10, 0)
    paramiko_ssh = Session().transport("paramiko")
    first = paramiko_ssh.host_key_table(str(path))
    write_known_hosts(path, 20, 0)
    os.utime(path, ns=(1, 1))
    assert paramiko_ssh.host_key_table(str(path)) is not first
