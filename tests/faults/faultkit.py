"""Helpers for the fault matrix: the real command line (its program run in this process, or as a
process where only a process shows the fault) on throwaway inventories whose hosts are loopback
ports (nothing outside this machine is ever contacted)."""
import functools
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import fabric.main
import pytest
import yaml

from auditor import cli

ROOT = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peer(reply=None, then="hold"):
    """(listener, accepted): a loopback port whose every connection gets `reply` (bytes, or None
    for nothing) and is then held open, closed or reset ("hold", "close", "reset"), as a hung
    sshd, another service or a firewall would; `accepted()` counts the connections so far."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    held = []
    count = [0]

    def serve():
        while True:
            try:
                connection = listener.accept()[0]
            except OSError:
                return
            count[0] += 1
            if reply:
                connection.sendall(reply)
            if then == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
            elif then == "close":       # a clean close (FIN), as a server that read the request closes:
                connection.shutdown(socket.SHUT_WR)     # closing with the client's banner unread would reset
                threading.Thread(target=_drain_and_close, args=(connection,), daemon=True).start()
            else:
                held.append(connection)
    threading.Thread(target=serve, daemon=True).start()
    return listener, lambda: count[0]


def _drain_and_close(connection):
    connection.settimeout(5)
    try:
        while connection.recv(4096):
            pass
    except OSError:
        pass
    connection.close()


def silent_listener():
    """A loopback port that accepts TCP and never says a word, as a hung sshd would."""
    return peer()[0]


class Hung(BaseException):
    """A command line that outlived its timeout (a BaseException: no task may swallow it)."""


@pytest.fixture
def fab(monkeypatch, capfd):
    """fab(*args) -> CompletedProcess of `fab ARGS` in the checkout, run in this process through
    Fabric's own program (parsing, fabfile, tasks, exit code): most of the fault matrix checks the
    auditor's logic, which needs no new interpreter. What only a real process shows (the console
    script, a closed pipe, signals) has `fab_process` and its own tests."""
    return _in_process(monkeypatch, capfd, "fab", fabric.main.make_program)


@pytest.fixture
def fleet_audit(monkeypatch, capfd):
    """fleet_audit(*args): the installed command's program (auditor.cli), in this process."""
    return _in_process(monkeypatch, capfd, "fleet-audit", cli.program)


def _in_process(monkeypatch, capfd, command, make_program):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args, timeout=120, env=None):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capfd.readouterr()
        previous = signal.signal(signal.SIGALRM, _hung)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        code = 0
        try:
            make_program().run([command, *args])
        except SystemExit as ended:
            code = ended.code if isinstance(ended.code, int) else 0 if ended.code is None else 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        out, err = capfd.readouterr()
        assert "Traceback" not in err, err[-3000:]
        return subprocess.CompletedProcess([command, *args], code, out, err)
    return run


def _hung(signum, frame):
    raise Hung("the command line outlived its timeout")


def in_a_process(executable, *args, timeout=120, env=None):
    """A command as its own process, for what only a process shows (how it was started, signals)."""
    done = subprocess.run([executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, NO_COLOR="1", **(env or {})))
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.fixture
def fab_process():
    """fab(*args) as its own process."""
    return functools.partial(in_a_process, FAB)


@pytest.fixture
def inventory(tmp_path):
    """write(hosts={name: vars}, auditor={...}) -> path of an inventory on loopback ports."""
    def write(hosts=None, auditor=None, name="inventory.yaml", raw=None):
        path = tmp_path / name
        if raw is not None:
            path.write_bytes(raw)
            return path
        known = tmp_path / "known_hosts"
        known.touch()
        document = {"all": {"vars": {"ansible_user": "nobody",
                                     "auditor": dict({"known_hosts": str(known), "roles": ["api"]}, **(auditor or {}))},
                            "hosts": hosts or {"api-1": {"ansible_host": "127.0.0.1", "ansible_port": free_port()}}}}
        path.write_text(yaml.safe_dump(document))
        return path
    return write
