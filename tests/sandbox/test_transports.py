"""Both SSH transports against the sandbox's real sshds: host certificates, revoked keys, jump
hosts, ProxyCommand and ssh-agent, as operators' set-ups have them."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from auditor.inventory import load_inventory
from auditor.transports import Session

BOTH = ["ssh", "paramiko"]

RELAY = '''import os, socket, sys, threading
with open(sys.argv[3], "a") as record:
    record.write("used %s:%s\\n" % (sys.argv[1], sys.argv[2]))
peer = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while True:
        data = os.read(0, 65536)
        if not data:
            peer.shutdown(socket.SHUT_WR)
            return
        peer.sendall(data)
threading.Thread(target=up, daemon=True).start()
while True:
    data = peer.recv(65536)
    if not data:
        break
    os.write(1, data)
'''


def run(spec, connection, accept_new=False):
    return Session(accept_new).run(replace(spec, connection=connection), "echo reached", 20, connect_timeout=5)


def with_known_hosts(spec, path):
    return replace(spec, settings=replace(spec.settings, known_hosts=str(path)))


def key_line(fleet, spec):
    key = (fleet.host(spec.name).dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return "[%s]:%d %s %s\n" % (spec.address, spec.target.port, *key)


@pytest.fixture
def specs(fleet):
    fleet.use("healthy")
    return load_inventory(fleet.sandbox.inventory)


def test_a_host_certified_by_a_ca_is_reached_over_openssh_and_named_on_paramiko(fleet, specs, tmp_path):
    ca = fleet.sandbox.host_ca.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text("@cert-authority 127.0.0.* %s %s\n" % tuple(ca))
    spec = with_known_hosts(specs[0], known)
    reached = run(spec, "ssh")
    assert reached.ok and reached.stdout.strip() == "reached", reached
    refused = run(spec, "paramiko")
    assert refused.kind == "host-key-unknown" and refused.seconds < 5, refused
    assert "%s:1: @cert-authority" % known in refused.detail and "ansible_connection: ssh" in refused.detail


@pytest.mark.parametrize("connection", BOTH)
def test_a_revoked_key_is_refused(fleet, specs, tmp_path, connection):
    spec = specs[0]
    key = key_line(fleet, spec)
    known = tmp_path / "known_hosts"
    known.write_text(key + "@revoked * %s\n" % " ".join(key.split()[1:3]))
    outcome = run(with_known_hosts(spec, known), connection)
    assert outcome.kind == "host-key-revoked", outcome
    assert "[%s]:%d" % (spec.address, spec.target.port) in outcome.detail


@pytest.mark.parametrize("connection", BOTH)
def test_a_jump_host_with_an_unknown_key_is_named_as_the_jump_host(fleet, specs, tmp_path, connection):
    jump, target = specs[:2]
    known = tmp_path / "known_hosts"
    known.write_text(key_line(fleet, target))
    via = with_known_hosts(target, known).with_target(proxy_jump="root@%s:%d" % (jump.address, jump.target.port))
    outcome = run(via, connection)
    assert outcome.kind == "host-key-unknown", outcome
    assert "jump host [%s]:%d" % (jump.address, jump.target.port) in outcome.detail
    assert "ssh-keyscan -p %d %s" % (jump.target.port, jump.address) in outcome.detail
    known.write_text(key_line(fleet, jump))               # now the jump host is known, the target not
    outcome = run(via, connection)
    assert outcome.kind == "host-key-unknown", outcome
    assert outcome.detail.startswith("[%s]:%d is not in" % (target.address, target.target.port)), outcome.detail
    known.write_text(key_line(fleet, target) + key_line(fleet, jump))
    assert run(via, connection).ok


@pytest.mark.parametrize("connection", BOTH)
def test_a_proxy_command_is_used(specs, tmp_path, connection):
    relay, record = tmp_path / "relay.py", tmp_path / "used"
    relay.write_text(RELAY)
    spec = specs[1].with_target(proxy_command="%s %s %%h %%p %s" % (sys.executable, relay, record))
    outcome = run(spec, connection)
    assert outcome.ok and outcome.stdout.strip() == "reached", outcome
    assert record.read_text() == "used %s:%d\n" % (spec.address, spec.target.port)


@pytest.fixture
def agent_with_encrypted_key(fleet, tmp_path, monkeypatch):
    """A running ssh-agent holding a passphrase-protected key that the sandbox hosts accept."""
    key = tmp_path / "id_encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(key)], check=True)
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 'correct horse'\n")
    askpass.chmod(0o700)
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if socket_path.exists():
                break
            subprocess.run(["sleep", "0.1"])
        env = dict(os.environ, SSH_AUTH_SOCK=str(socket_path), SSH_ASKPASS=str(askpass),
                   SSH_ASKPASS_REQUIRE="force", DISPLAY="none")
        subprocess.run(["ssh-add", str(key)], env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        authorized = fleet.sandbox.client_dir / "authorized_keys"
        before = authorized.read_text()
        authorized.write_text(before + key.with_suffix(".pub").read_text())
        yield key
        authorized.write_text(before)
    finally:
        agent.kill()
        agent.wait()


@pytest.mark.parametrize("connection", BOTH)
def test_an_encrypted_key_held_by_ssh_agent_works(specs, agent_with_encrypted_key, connection):
    spec = specs[2].with_target(key_file=str(agent_with_encrypted_key))
    outcome = run(spec, connection)
    assert outcome.ok and outcome.stdout.strip() == "reached", outcome


@pytest.mark.parametrize("connection", BOTH)
def test_an_encrypted_key_without_an_agent_says_so(specs, tmp_path, monkeypatch, connection):
    key = tmp_path / "id_encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret words", "-f", str(key)], check=True)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    outcome = run(specs[2].with_target(key_file=str(key)), connection)
    assert outcome.kind == "auth-failed", outcome
    assert "passphrase" in outcome.detail and "ssh-add %s" % key in outcome.detail


@pytest.mark.parametrize("connection", BOTH)
def test_a_key_trusted_on_first_use_is_said_with_its_sha256_fingerprint(fleet, specs, tmp_path, connection):
    spec = specs[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    said = []
    session = Session(accept_new=True, announce=said.append)
    outcome = session.run(replace(with_known_hosts(spec, known), connection=connection), "true", 20, 5)
    assert outcome.ok, outcome
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(fleet.host(spec.name).dir / "ssh_host_ed25519_key.pub")],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    assert len(said) == 1 and "[%s]:%d" % (spec.address, spec.target.port) in said[0] and fingerprint in said[0], said
    found = subprocess.run(["ssh-keygen", "-F", "[%s]:%d" % (spec.address, spec.target.port), "-f", str(known)],
                           capture_output=True, text=True)          # hashed, where ssh_config says so
    assert found.returncode == 0, known.read_text()


def test_a_persisted_openssh_connection_is_reused_from_a_private_directory(specs, monkeypatch):
    import shutil
    import stat
    import tempfile
    runtime = tempfile.mkdtemp(prefix="cm", dir="/tmp")        # a socket path must stay short
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    spec = replace(specs[0], connection="ssh", settings=replace(specs[0].settings, ssh_control_persist=30))
    try:
        first = Session().run(spec, "echo one", 20, 5)
        assert first.ok and first.stdout.strip() == "one", first
        directory = os.path.join(runtime, "fleet-auditor-ssh")
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700 and len(os.listdir(directory)) == 1
        session = Session()
        assert session.transport("ssh").reuses_connection(spec, 5)
        second = session.run(spec, "echo two", 20, 5)
        assert second.ok and second.stdout.strip() == "two", second
    finally:
        socket_path = os.path.join(runtime, "fleet-auditor-ssh")
        for name in os.listdir(socket_path) if os.path.isdir(socket_path) else ():
            subprocess.run(["ssh", "-O", "exit", "-o", "ControlPath=%s" % os.path.join(socket_path, name), "x"],
                           capture_output=True, timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.parametrize("connection", BOTH)
def test_a_host_that_pours_out_output_is_cut_at_the_cap_not_held(specs, connection):
    """A host printing 40 MB (an interpreter or login script gone wrong): reading stops at 16 MiB
    and the host is an error saying so; the controller never holds the rest."""
    outcome = Session().run(replace(specs[1], connection=connection), "head -c 40000000 /dev/zero", 60, 5)
    assert outcome.kind == "error" and "more than 16 MiB" in outcome.detail, outcome.kind
    assert len(outcome.stdout) == 0
