"""SSH transport on Fabric, with host keys verified and failures returned as data.

`run_on_host(spec, command, ...)` makes one connection and one exec, and always
returns a RunOutcome whose `kind` is one of OUTCOME_KINDS, keeping the cause.
Fabric's Connection hard-codes AutoAddPolicy (it trusts any key); here the
client loads known_hosts and rejects unknown keys unless trust-on-first-use was
asked for explicitly, and the same holds for a ProxyJump gateway.
"""
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import logging
import select

import paramiko
from fabric import Config, Connection

# paramiko logs tracebacks of the failures classified here: thousands of lines on a large fleet
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False
log = logging.getLogger("auditor.transport")

OUTCOME_KINDS = ("ok", "unreachable", "auth-failed", "host-key-unknown", "host-key-changed", "timeout",
                 "python-missing", "error", "not-audited")
TIMEOUT_EXIT = 124          # coreutils `timeout`
NOT_FOUND_EXIT = 127


@dataclass(frozen=True)
class RunOutcome:
    host: str
    kind: str
    exit_status: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self):
        return self.kind == "ok"


def quote(value):
    """The one quoting helper for anything put into a remote command line."""
    return shlex.quote(str(value))


# Key exchange and authentication are the CPU-heavy part of a host's audit, spent in paramiko's
# Python threads. Hundreds of them at once only make every thread wait for the interpreter and
# doubled the CPU per host at --parallel 1000 (measured: 36 -> 18 ms); so at most this many
# handshakes are in flight, while any number of hosts wait for TCP or run their agents.
HANDSHAKES_IN_FLIGHT = 8 * (os.cpu_count() or 2)
_handshakes = threading.BoundedSemaphore(HANDSHAKES_IN_FLIGHT)

_known_hosts_lock = threading.Lock()
_open_lock = threading.Lock()
_open_connections = set()      # for Ctrl-C: every connection in use, to close from the main thread


def close_all():
    """Close every open connection (Ctrl-C): threads blocked on them fail at once."""
    with _open_lock:
        connections = list(_open_connections)
    for connection in connections:
        try:
            connection.close()
        except Exception:  # already half-closed by its own thread: nothing left to close
            pass


class RecordNewHostKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use, only when asked: accept an unknown key and append it to known_hosts."""

    def __init__(self, path):
        self.path = Path(path)

    def missing_host_key(self, client, hostname, key):
        line = "%s %s %s\n" % (hostname, key.get_name(), key.get_base64())
        with _known_hosts_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def known_hosts_path(spec, ssh_config=None):
    """Precedence: inventory `auditor.known_hosts`, ssh_config UserKnownHostsFile, ~/.ssh/known_hosts."""
    configured = spec.settings.get("known_hosts")
    if configured:
        return os.path.expanduser(configured)
    from_config = (ssh_config or {}).get("userknownhostsfile")
    if from_config:
        return os.path.expanduser(from_config.split()[0] if isinstance(from_config, str) else from_config[0])
    return os.path.expanduser("~/.ssh/known_hosts")


class IndexedHostKeys(paramiko.HostKeys):
    """A known_hosts table parsed once per audit and shared, read-only, by every connection.

    paramiko's own lookup scans every entry (an HMAC per hashed `|1|` entry) and
    `load_host_keys` reparses the file per connection: a fleet audit became quadratic.
    Here plain names are a dict lookup; hashed entries are still matched by HMAC-SHA1
    with each entry's salt, as OpenSSH does."""

    def __init__(self, filename=None):
        self._plain, self._hashed = {}, []
        super().__init__(filename)

    def load(self, filename):
        super().load(filename)
        self._index(self._entries)

    def _index(self, entries):
        for entry in entries:
            for name in entry.hostnames:
                if name.startswith("|1|"):
                    self._hashed.append(entry)
                else:
                    self._plain.setdefault(name, []).append(entry)

    def add(self, hostname, keytype, key):
        before = len(self._entries)
        super().add(hostname, keytype, key)
        self._index(self._entries[before:])

    def lookup(self, hostname):
        matches = list(self._plain.get(hostname, []))
        matches += [e for e in self._hashed if e not in matches and self._hostname_matches(hostname, e)]
        if not matches:
            return None
        found = paramiko.HostKeys()
        found._entries = matches
        return paramiko.HostKeys.lookup(found, hostname)


_tables_lock = threading.Lock()
_tables = {}        # (path, mtime, size) -> IndexedHostKeys


def host_key_table(path):
    """The parsed known_hosts at path, shared; parsed again only when the file changed."""
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (path, None, None)
    with _tables_lock:
        if key not in _tables:
            _tables[key] = IndexedHostKeys(path if key[1] is not None else None)
        return _tables[key]


SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


def _secure(connection, known_hosts, accept_new):
    """Strict host keys from tables parsed once per audit (paramiko's loaders reparse per client)."""
    client = connection.client
    client._system_host_keys = host_key_table(SYSTEM_KNOWN_HOSTS)
    client._host_keys = host_key_table(known_hosts)
    client._host_keys_filename = None       # never written back by paramiko: RecordNewHostKey appends
    client.set_missing_host_key_policy(RecordNewHostKey(known_hosts) if accept_new else paramiko.RejectPolicy())


def connection_for(spec, timeout, accept_new=False):
    """A Fabric Connection that does no network work yet, with strict host keys."""
    connect_kwargs = {"banner_timeout": timeout, "auth_timeout": timeout, "channel_timeout": timeout,
                      "allow_agent": not spec.key_file, "look_for_keys": not spec.key_file}
    if spec.key_file:
        connect_kwargs["key_filename"] = os.path.expanduser(spec.key_file)
    config = Config(overrides={"run": {"in_stream": False}})
    gateway = None
    if spec.proxy_jump:
        gateway = Connection(spec.proxy_jump, connect_timeout=timeout, connect_kwargs=dict(connect_kwargs),
                             config=config)
    connection = Connection(spec.address, user=spec.user, port=spec.port, connect_timeout=timeout,
                            connect_kwargs=connect_kwargs, gateway=gateway, config=config)
    known_hosts = known_hosts_path(spec, connection.ssh_config)
    for conn in filter(None, (gateway, connection)):
        _secure(conn, known_hosts, accept_new)
    return connection, known_hosts


def classify_exception(error, spec, known_hosts):
    """Map a connection failure to (kind, detail with the fix)."""
    target = "[%s]:%d" % (spec.address, spec.port) if spec.port != 22 else spec.address
    if isinstance(error, paramiko.BadHostKeyException):
        return "host-key-changed", (
            "host key of %s changed (got %s %s); if the host was rebuilt, verify the new key out of band, then "
            "`ssh-keygen -R '%s' -f %s`" % (target, error.key.get_name(), error.key.get_fingerprint().hex(),
                                             target, known_hosts))
    if isinstance(error, paramiko.AuthenticationException):
        return "auth-failed", "authentication refused for user %r: %s" % (spec.user, error)
    message = str(error)
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in message:
        return "host-key-unknown", (
            "%s is not in %s; add its key (ssh-keyscan -p %d %s, checked out of band) or run once with "
            "--accept-new-host-keys" % (target, known_hosts, spec.port, spec.address))
    if isinstance(error, CommandTimeout):      # its own text, never the remote command
        return "timeout", "the remote command ran past %ss and was stopped" % error.timeout
    if isinstance(error, (socket.timeout, TimeoutError)) or "timed out" in message.lower() \
            or "banner" in message.lower():
        return "timeout", "%s: %s" % (type(error).__name__, message or "timed out")
    if isinstance(error, (paramiko.ssh_exception.NoValidConnectionsError, OSError, EOFError)):
        return "unreachable", "%s: %s" % (type(error).__name__, message)
    return "error", "%s: %s" % (type(error).__name__, message)


def _no_banner(connection):
    """Whether the TCP connection was made but the server never sent its SSH banner."""
    transport = connection.client.get_transport()
    return transport is not None and not getattr(transport, "remote_version", None)


def run_on_host(spec, command, timeout, connect_timeout=10, accept_new=False):
    """One connection, one exec; never raises for the host's failure."""
    started = time.monotonic()
    connection, known_hosts = connection_for(spec, connect_timeout, accept_new)
    log.debug("%s: ssh %s@%s:%d, key %s, host keys %s (%s)%s", spec.name, spec.user or "-", spec.address, spec.port,
              spec.key_file or "agent/default", known_hosts, "accept new" if accept_new else "strict",
              ", via %s" % spec.proxy_jump if spec.proxy_jump else "")
    with _open_lock:
        _open_connections.add(connection)
    try:
        exited, stdout, stderr = execute(connection, command, timeout)
    except Exception as error:  # every failure of one host becomes data about that host
        kind, detail = classify_exception(error, spec, known_hosts)
        log.debug("%s: %s after %.2fs: %s", spec.name, type(error).__name__, time.monotonic() - started, kind)
        if kind != "timeout" and _no_banner(connection):
            # classified by what happened, not by paramiko's message ("No existing session")
            kind, detail = "timeout", "no SSH banner from %s:%d within %ss: something accepts TCP there but is " \
                "not answering as sshd" % (spec.address, spec.port, connect_timeout)
        return RunOutcome(spec.name, kind, detail=detail, seconds=time.monotonic() - started)
    finally:
        with _open_lock:
            _open_connections.discard(connection)
        connection.close()
    log.debug("%s: exit %s after %.2fs", spec.name, exited, time.monotonic() - started)
    kind, detail = "ok", ""
    if exited == TIMEOUT_EXIT:
        kind, detail = "timeout", "the remote command ran past %ss and was stopped" % timeout
    elif exited == NOT_FOUND_EXIT and ("not found" in stderr or "No such file" in stderr):
        kind, detail = "python-missing", stderr.strip()[-300:]
    return RunOutcome(spec.name, kind, exit_status=exited, stdout=stdout, stderr=stderr, detail=detail,
                      seconds=time.monotonic() - started)


class CommandTimeout(Exception):
    """The remote command did not finish in time (its text never holds the command)."""

    def __init__(self, timeout):
        super().__init__("the remote command ran past %ss and was stopped" % timeout)
        self.timeout = timeout


def execute(connection, command, timeout):
    """(exit status, stdout, stderr) of one command, read on this thread.

    Fabric opens the connection (ssh_config, gateway, our host-key policy); the channel is
    read here with select() instead of through Invoke's runner, which starts three IO
    threads per command: per host, that was most of the controller's cost. stdin stays open
    and unused: when the connection closes (Ctrl-C), the remote agent sees it end and stops."""
    if connection.gateway is None:
        # TCP first, outside the handshake slots: a dead subnet must not hold them for its timeouts
        connection.connect_kwargs["sock"] = socket.create_connection(
            (connection.host, connection.port), timeout=connection.connect_timeout)
    try:
        with _handshakes:
            connection.open()
    except BaseException:
        sock = connection.connect_kwargs.pop("sock", None)
        if sock is not None and connection.client.get_transport() is None:   # paramiko never took it over
            sock.close()
        raise
    channel = connection.client.get_transport().open_session(timeout=connection.connect_timeout)
    try:
        channel.exec_command(command)
        deadline = time.monotonic() + timeout
        stdout, stderr = [], []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeout(timeout)
            select.select([channel], [], [], min(left, 5))
            while channel.recv_ready():
                stdout.append(channel.recv(1 << 16))
            while channel.recv_stderr_ready():
                stderr.append(channel.recv_stderr(1 << 16))
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                if channel.eof_received or channel.closed:
                    break
        return (channel.recv_exit_status(), b"".join(stdout).decode("utf-8", "replace"),
                b"".join(stderr).decode("utf-8", "replace"))
    finally:
        channel.close()
