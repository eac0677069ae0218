"""Transport edge cases on real loopback sockets and a real paramiko client (no sandbox needed)."""
import socket
import threading
import time

import pytest

from auditor.transports.ssh import SshTarget
from auditor.inventory import HostSpec
from auditor.settings import Settings
from auditor.transports import Session
from faultkit import free_port, peer, silent_listener


def test_a_host_that_accepts_tcp_and_never_sends_a_banner_is_a_timeout(tmp_path):
    listener = silent_listener()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spec = HostSpec("silent", SshTarget("127.0.0.1", port=listener.getsockname()[1], user="nobody"),
                    settings=Settings(known_hosts=str(known_hosts)))
    started = time.monotonic()
    outcome = Session().run(spec, "true", timeout=30, connect_timeout=2)
    elapsed = time.monotonic() - started
    listener.close()
    assert outcome.kind == "timeout", outcome
    assert "banner" in outcome.detail
    assert elapsed < 10           # bounded by the connect timeout, not the command's


def _with_every_slot_taken(tmp_path, port, seconds):
    """The outcome of one host's visit (paramiko, 2 s connect timeout) while every key-exchange slot
    is held; None when it was still waiting after `seconds`."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spec = HostSpec("h", SshTarget("127.0.0.1", port=port, user="nobody"), settings=Settings(known_hosts=str(known_hosts)))
    session = Session()
    slots = session.transport("paramiko").handshakes
    while slots.acquire(blocking=False):
        pass
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(session.run(spec, "true", 30, connect_timeout=2)),
                              daemon=True)
    worker.start()
    worker.join(seconds)
    return outcomes[0] if outcomes else None


def test_tcp_is_connected_outside_the_handshake_slots(tmp_path):
    """Hosts that never answer TCP must not hold the slots that bound concurrent key exchanges:
    with every slot taken, a refused host is still classified (it never waits for a slot)."""
    outcome = _with_every_slot_taken(tmp_path, free_port(), 10)
    assert outcome is not None and outcome.kind == "unreachable", outcome


def test_a_silent_host_waits_for_its_banner_outside_the_handshake_slots(tmp_path):
    """A peer that accepts TCP and never speaks costs no CPU: with every key-exchange slot taken,
    a silent host is still classified (no banner) within its connect timeout, never queued behind
    the slots (200 silent hosts took 310 s for 80 of them when the slot was taken first)."""
    listener = silent_listener()
    outcome = _with_every_slot_taken(tmp_path, listener.getsockname()[1], 20)
    listener.close()
    assert outcome is not None and outcome.kind == "timeout" and "banner" in outcome.detail, outcome


def _outcome(tmp_path, port, known_hosts_text="", connection="paramiko", **target_fields):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_text)
    spec = HostSpec("h", SshTarget("127.0.0.1", port=port, user="nobody", **target_fields),
                    settings=Settings(known_hosts=str(known_hosts)), connection=connection)
    started = time.monotonic()
    outcome = Session().run(spec, "true", timeout=30, connect_timeout=2)
    return outcome, time.monotonic() - started


HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("connection, reply, then, kind, words", [
    ("paramiko", HTTP, "close", "protocol", "not as an SSH server: 'HTTP/1.1 400 Bad Request'"),
    # OpenSSH does not say what a non-SSH peer sent: the transport asks the peer itself, as paramiko sees it
    ("ssh", HTTP, "close", "protocol", "not as an SSH server: 'HTTP/1.1 400 Bad Request'"),
    ("ssh", HTTP, "hold", "protocol", "not as an SSH server: 'HTTP/1.1 400 Bad Request'"),
    ("paramiko", b"SSH-1.5-OldServer\r\n", "hold", "protocol", "SSH-1"),
    ("ssh", b"SSH-1.5-OldServer\r\n", "hold", "protocol", "SSH-1"),
    ("paramiko", None, "reset", "unreachable", "reset the connection"),
    ("ssh", None, "reset", "unreachable", "reset the connection"),
    ("paramiko", b"SSH-2.0-OpenSSH_9.2\r\n", "hold", "timeout", "stalled"),
    ("ssh", b"SSH-2.0-OpenSSH_9.2\r\n", "hold", "timeout", "stalled"),
    ("paramiko", None, "hold", "timeout", "no SSH banner"),
    ("ssh", None, "hold", "timeout", "no SSH banner"),
])
def test_each_handshake_failure_gets_the_code_of_what_happened(tmp_path, connection, reply, then, kind, words):
    listener, _ = peer(reply, then)
    outcome, took = _outcome(tmp_path, listener.getsockname()[1], connection=connection)
    listener.close()
    assert outcome.kind == kind, outcome
    assert words in outcome.detail, outcome.detail
    assert took < 15


@pytest.mark.parametrize("connection", ["paramiko", "ssh"])
@pytest.mark.parametrize("content", ["not a key\n", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKp7 me@host\n"])
def test_an_unusable_key_file_is_named_and_no_connection_is_made(tmp_path, connection, content):
    key = tmp_path / "id_test.pub"
    key.write_text(content)
    key.chmod(0o600)
    outcome, _ = _outcome(tmp_path, free_port(), key_file=str(key), connection=connection)
    assert outcome.kind == "key-unusable", outcome
    assert str(key) in outcome.detail and "cannot be used" in outcome.detail


@pytest.mark.parametrize("line", [
    "@cert-authority *.example.com,127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "@revoked * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "127.0.0.1 ssh-ed25519 !!!not-base64!!!",
    "@cert-authority",
])
def test_a_known_hosts_line_paramiko_cannot_parse_never_stops_the_audit(tmp_path, line):
    """It used to kill the worker thread and hang the audit forever (InvalidHostKey)."""
    listener = silent_listener()
    outcome, took = _outcome(tmp_path, listener.getsockname()[1], known_hosts_text=line + "\n")
    listener.close()
    assert outcome.kind == "timeout" and took < 15, outcome


@pytest.mark.parametrize("connection", ["paramiko", "ssh"])
def test_syn_drops_are_one_code_for_every_host(tmp_path, connection):
    """A listener whose accept queue is full drops SYNs (loopback only): 60 such hosts at once all
    get the same code and cause, never a mix of timeout and unreachable."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(3):          # fill the accept queue; later SYNs are dropped by the kernel
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.3)
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(_outcome(tmp_path, port, connection=connection)[0]))
               for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    full.close()
    assert len(outcomes) == 60
    assert {(o.kind, "no answer to the TCP connection" in o.detail) for o in outcomes} == {("unreachable", True)}, \
        {o.detail for o in outcomes}


@pytest.mark.parametrize("connection", ["paramiko", "ssh"])
def test_a_failing_proxy_command_is_named_with_its_own_words_not_blamed_on_sshd(tmp_path, connection):
    proxy = "sh -c 'echo proxy.internal:3128: connection refused by policy >&2; exit 1'"
    outcome, _ = _outcome(tmp_path, free_port(), connection=connection, proxy_command=proxy)
    assert outcome.kind == "unreachable", outcome
    assert "the ProxyCommand for" in outcome.detail and proxy in outcome.detail, outcome.detail
    assert "connection refused by policy" in outcome.detail and "MaxStartups" not in outcome.detail


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("connection", ["paramiko", "ssh"])
def test_a_hung_proxy_command_and_its_children_end_with_the_visit(tmp_path, connection):
    pids = tmp_path / "pids"
    proxy = "sh -c 'sleep 300 & echo $$ $! > %s; wait'" % pids
    outcome, _ = _outcome(tmp_path, free_port(), connection=connection, proxy_command=proxy)
    assert outcome.kind == "timeout", outcome
    deadline = time.monotonic() + 10
    while any(_alive(int(pid)) for pid in pids.read_text().split()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids.read_text().split() if _alive(int(pid))], "the proxy outlived the audit"
