"""SSH transport on Fabric, with host keys verified and failures returned as data.

`run_on_host(spec, command, ...)` makes one connection and one exec, and always
returns a RunOutcome whose `kind` is one of OUTCOME_KINDS, keeping the cause.
Fabric's Connection hard-codes AutoAddPolicy (it trusts any key); here the
client loads known_hosts and rejects unknown keys unless trust-on-first-use was
asked for explicitly, and the same holds for a ProxyJump gateway.
"""
import base64
import errno
import fnmatch
import hashlib
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

OUTCOME_KINDS = ("ok", "unreachable", "protocol", "auth-failed", "key-unusable", "host-key-unknown",
                 "host-key-changed", "host-key-revoked", "timeout", "python-missing", "error", "not-audited")
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
    with each entry's salt, as OpenSSH does.

    paramiko raises on lines it does not know (`@cert-authority`, `@revoked`, a damaged
    line), which used to kill the audit; here, as OpenSSH does, such a line never stops
    the others: `@revoked` keys are never trusted, `@cert-authority` patterns are kept to
    explain an unknown key, and damaged lines are counted by number."""

    def __init__(self, filename=None):
        self._plain, self._hashed = {}, []
        self.revoked = set()            # (key type, base64) of every @revoked key
        self.authorities = []           # host patterns of every @cert-authority line
        self.skipped = []               # line numbers that are not a host key OpenSSH or paramiko can use
        super().__init__(filename)

    def load(self, filename):
        with open(filename, "r", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                self._load_line(line.strip(), number)
        self._index(self._entries)

    def _load_line(self, line, number):
        if not line or line.startswith("#"):
            return
        fields = line.split()
        if fields[0] == "@revoked" and len(fields) >= 4:
            self.revoked.add((fields[2], fields[3]))
            return
        if fields[0] == "@cert-authority" and len(fields) >= 4:
            self.authorities.append(fields[1])
            return
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        except Exception:  # a damaged line: OpenSSH skips it too; the others still count
            entry = None
        if entry is None:
            self.skipped.append(number)
        else:
            self._entries.append(entry)

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

    def is_revoked(self, key):
        return (key.get_name(), key.get_base64()) in self.revoked

    def lookup(self, hostname):
        matches = list(self._plain.get(hostname, []))
        matches += [e for e in self._hashed if e not in matches and self._hostname_matches(hostname, e)]
        matches = [e for e in matches if not self.is_revoked(e.key)]     # a revoked key is never known
        if not matches:
            return None
        found = paramiko.HostKeys()
        found._entries = matches
        return paramiko.HostKeys.lookup(found, hostname)

    def authority_for(self, hostname):
        """The @cert-authority pattern that covers hostname (`[host]:port` or host), if any."""
        bare = hostname[1:].split("]:")[0] if hostname.startswith("[") else hostname
        for patterns in self.authorities:
            names = patterns.split(",")
            if any(fnmatch.fnmatch(hostname, p[1:]) or fnmatch.fnmatch(bare, p[1:]) for p in names
                   if p.startswith("!")):
                continue
            if any(fnmatch.fnmatch(hostname, p) or fnmatch.fnmatch(bare, p) for p in names if not p.startswith("!")):
                return patterns
        return None


_tables_lock = threading.Lock()
_tables = {}        # (path, mtime, size) -> IndexedHostKeys


def host_key_table(path):
    """The parsed known_hosts at path, shared; parsed again only when the file changed. An
    unreadable file is an empty table (as for OpenSSH), never a failed audit."""
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (path, None, None)
    with _tables_lock:
        if key not in _tables:
            try:
                _tables[key] = IndexedHostKeys(path if key[1] is not None else None)
            except (OSError, UnicodeError):
                _tables[key] = IndexedHostKeys()
        return _tables[key]


SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
MAX_STDOUT = 16 << 20       # the agent's facts are tens of kB: more is not an agent talking
MAX_STDERR = 1 << 20        # only the tail of stderr is ever shown


class HostKeyRefused(paramiko.SSHException):
    """The host's key is not trusted: unknown (perhaps only certified by a CA) or revoked."""

    def __init__(self, hostname, key, revoked=False, authority=None):
        super().__init__("host key of %s %s" % (hostname, "is revoked" if revoked else "is not known"))
        self.hostname, self.key, self.revoked, self.authority = hostname, key, revoked, authority


class StrictHostKeys(paramiko.MissingHostKeyPolicy):
    """Refuse a key that known_hosts does not list; with `record`, trust it on first use
    (appended to known_hosts) unless known_hosts revokes it."""

    def __init__(self, tables, record_in=None):
        self.tables, self.record_in = tables, record_in

    def missing_host_key(self, client, hostname, key):
        if any(table.is_revoked(key) for table in self.tables):
            raise HostKeyRefused(hostname, key, revoked=True)
        if self.record_in is None:
            authority = next(filter(None, (table.authority_for(hostname) for table in self.tables)), None)
            raise HostKeyRefused(hostname, key, authority=authority)
        line = "%s %s %s\n" % (hostname, key.get_name(), key.get_base64())
        path = Path(self.record_in)
        with _known_hosts_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.info("added %s to %s: %s", hostname, path, fingerprint(key))


def fingerprint(key):
    """A key's fingerprint as OpenSSH prints it: SHA256:base64, no padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _secure(connection, known_hosts, accept_new):
    """Strict host keys from tables parsed once per audit (paramiko's loaders reparse per client)."""
    client = connection.client
    client._system_host_keys = host_key_table(SYSTEM_KNOWN_HOSTS)
    client._host_keys = host_key_table(known_hosts)
    client._host_keys_filename = None       # never written back by paramiko: StrictHostKeys appends
    client.set_missing_host_key_policy(StrictHostKeys((client._system_host_keys, client._host_keys),
                                                      known_hosts if accept_new else None))


_keys_lock = threading.Lock()
_keys = {}          # (path, mtime) -> PKey or the reason it cannot be used


def private_key(path):
    """The key file at path, loaded once per audit (not once per host); raises KeyUnusable."""
    path = os.path.expanduser(path)
    try:
        cache_key = (path, os.stat(path).st_mtime_ns)
    except OSError as error:
        raise KeyUnusable(path, error.strerror)
    with _keys_lock:
        if cache_key not in _keys:
            try:
                _keys[cache_key] = paramiko.PKey.from_path(path)
            except paramiko.PasswordRequiredException:
                _keys[cache_key] = "it is protected by a passphrase, and the audit never prompts"
            except Exception as error:  # a .pub file, a damaged or unknown key: paramiko's types vary
                _keys[cache_key] = "not a private key paramiko can read (%s)" % (
                    "a public key file" if path.endswith(".pub") else type(error).__name__)
        loaded = _keys[cache_key]
    if isinstance(loaded, str):
        raise KeyUnusable(path, loaded)
    return loaded


class KeyUnusable(Exception):
    def __init__(self, path, reason):
        super().__init__("private key %s cannot be used: %s" % (path, reason))
        self.path = path


def connection_for(spec, timeout, accept_new=False):
    """(target, jump or None, known_hosts path): Fabric Connections that do no network work yet,
    with strict host keys. The jump host is opened by `execute` itself, so that a failure there
    is blamed on the jump host."""
    connect_kwargs = {"banner_timeout": timeout, "auth_timeout": timeout, "channel_timeout": timeout,
                      "allow_agent": not spec.key_file, "look_for_keys": not spec.key_file}
    config = Config(overrides={"run": {"in_stream": False}})
    jump = None
    if spec.proxy_jump:
        jump = Connection(spec.proxy_jump, connect_timeout=timeout, connect_kwargs=dict(connect_kwargs),
                          config=config)
    connection = Connection(spec.address, user=spec.user, port=spec.port, connect_timeout=timeout,
                            connect_kwargs=connect_kwargs, config=config)
    known_hosts = known_hosts_path(spec, connection.ssh_config)
    for conn in filter(None, (jump, connection)):
        _secure(conn, known_hosts, accept_new)
    return connection, jump, known_hosts


class Wire:
    """The TCP socket handed to paramiko, recording what the peer sent first and how the
    connection ended: failures are classified by what happened, not by paramiko's words."""

    def __init__(self, sock):
        self.sock = sock
        self.first_bytes = b""
        self.closed_by_peer = False
        self.error = None

    def recv(self, size):
        try:
            data = self.sock.recv(size)
        except socket.timeout:
            raise
        except OSError as error:
            self.error = error
            raise
        if not data:
            self.closed_by_peer = True
        elif len(self.first_bytes) < 120:
            self.first_bytes += data[:120 - len(self.first_bytes)]
        return data

    def send(self, data):
        try:
            return self.sock.send(data)
        except OSError as error:
            self.error = error
            raise

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def gettimeout(self):
        return self.sock.gettimeout()

    def getpeername(self):
        return self.sock.getpeername()

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    @property
    def _closed(self):      # read by paramiko's Transport.stop_thread
        return self.sock._closed


class Hop:
    """One SSH connection of a visit (the jump host or the target) and the phase it reached."""

    def __init__(self, role, connection):
        self.role, self.connection = role, connection       # role: "jump host" or "target"
        self.phase = "tcp"
        self.wire = None

    @property
    def label(self):
        return "[%s]:%d" % (self.connection.host, self.connection.port) if self.connection.port != 22 \
            else self.connection.host


class HopFailed(Exception):
    def __init__(self, hop, error):
        super().__init__(str(error))
        self.hop, self.error = hop, error


class CommandTimeout(Exception):
    """The remote command did not finish in time (its text never holds the command)."""

    def __init__(self, timeout):
        super().__init__("the remote command ran past %ss and was stopped" % timeout)
        self.timeout = timeout


class OutputTooLarge(Exception):
    def __init__(self, limit):
        super().__init__("the remote command printed more than %d MiB on stdout: reading stopped and the command "
                         "was ended (an interpreter or login script that prints on start-up?)" % (limit >> 20))


def _what_answered(wire):
    text = wire.first_bytes.decode("ascii", "replace").splitlines()
    return (text[0] if text else "")[:60]


def classify(failure, spec, known_hosts, timeouts):
    """(kind, detail with the fix) of a failed visit, from the hop and phase where it failed."""
    hop, error = failure.hop, failure.error
    where = "%s %s" % (hop.role, hop.label) if hop.role == "jump host" else hop.label
    if isinstance(error, KeyUnusable):
        return "key-unusable", "%s: %s" % (spec.name, error)
    if isinstance(error, HostKeyRefused):
        if error.revoked:
            return "host-key-revoked", (
                "the key %s presented by %s is marked @revoked in known_hosts: do not connect until the host is "
                "rebuilt with a new key" % (fingerprint(error.key), where))
        hint = (" (known_hosts trusts a certificate authority for it, `@cert-authority %s`, but this transport "
                "cannot verify host certificates: add the host's plain key, or reach it with the OpenSSH "
                "client)" % error.authority) if error.authority else ""
        return "host-key-unknown", (
            "%s is not in %s%s; add its key (`ssh-keyscan -p %d %s`, checked out of band) or run once with "
            "--accept-new-host-keys" % (where, known_hosts, hint, hop.connection.port, hop.connection.host))
    if isinstance(error, paramiko.BadHostKeyException):
        return "host-key-changed", (
            "host key of %s changed (now %s %s); if the host was rebuilt, verify the new key out of band, then "
            "`ssh-keygen -R '%s' -f %s`" % (where, error.key.get_name(), fingerprint(error.key), hop.label,
                                             known_hosts))
    if isinstance(error, CommandTimeout):
        return "timeout", str(error)
    if isinstance(error, OutputTooLarge):
        return "error", str(error)
    if not isinstance(error, (OSError, EOFError, paramiko.SSHException)):     # the auditor's own failure
        return "error", "%s, %s: %s: %s" % (where, hop.phase, type(error).__name__, error)
    if hop.phase == "tcp":
        return _tcp_failure(error, where, timeouts)
    if hop.phase == "handshake":
        return _handshake_failure(error, hop, where, timeouts)
    if hop.phase == "auth" or isinstance(error, paramiko.AuthenticationException):
        user = hop.connection.user
        return "auth-failed", "%s refused user %r: %s" % (where, user, error)
    if hop.phase == "tunnel":
        return "unreachable", "jump host %s could not open a connection to %s:%d (%s): check the target's address " \
            "as the jump host sees it" % (failure.hop.label, spec.address, spec.port, error)
    return "error", "%s, %s: %s: %s" % (where, hop.phase, type(error).__name__, error)


def _tcp_failure(error, where, timeouts):
    if isinstance(error, socket.gaierror):
        return "unreachable", "%s: the name does not resolve (%s)" % (where, error.strerror)
    if isinstance(error, (socket.timeout, TimeoutError)) or getattr(error, "errno", None) == errno.ETIMEDOUT:
        # one condition, one code: nothing answered the TCP connection
        return "unreachable", "%s: no answer to the TCP connection within %ss (packets dropped: the host is down, " \
            "or a firewall or security group drops them)" % (where, timeouts["connect"])
    if isinstance(error, ConnectionResetError):
        return "unreachable", "%s reset the connection as soon as it was made (a firewall, or sshd's MaxStartups " \
            "or tcp wrappers refusing it)" % where
    if isinstance(error, ConnectionRefusedError):
        return "unreachable", "%s: connection refused (nothing listens on that port)" % where
    return "unreachable", "%s: %s" % (where, getattr(error, "strerror", None) or error)


def _handshake_failure(error, hop, where, timeouts):
    wire, transport = hop.wire, hop.connection.client.get_transport()
    answered = _what_answered(wire) if wire else ""
    if answered.startswith("SSH-1.") and not answered.startswith("SSH-1.99"):
        return "protocol", "%s speaks only SSH-1 (%r): the audit needs SSH-2" % (where, answered)
    if answered and not answered.startswith("SSH-"):
        return "protocol", "%s answered, but not as an SSH server: %r (another service on that port?)" % (
            where, answered)
    if wire and isinstance(wire.error, ConnectionResetError):
        return "unreachable", "%s reset the connection during the SSH handshake (a firewall, or sshd's " \
            "MaxStartups or tcp wrappers refusing it)" % where
    if wire and wire.closed_by_peer:
        return "unreachable", "%s closed the connection during the SSH handshake%s (sshd's MaxStartups, tcp " \
            "wrappers or AllowUsers, or a proxy refusing it)" % (where, " after its banner" if answered else "")
    if not answered:
        return "timeout", "no SSH banner from %s within %ss: something accepts TCP there but is not answering as " \
            "sshd" % (where, timeouts["connect"])
    remote = getattr(transport, "remote_version", None) or answered
    return "timeout", "the SSH handshake with %s stalled after its banner (%s) for %ss" % (
        where, remote[:60], timeouts["connect"])


def run_on_host(spec, command, timeout, connect_timeout=10, accept_new=False):
    """One connection (through the jump host, if any), one exec; never raises for the host's failure."""
    started = time.monotonic()
    connection, jump, known_hosts = connection_for(spec, connect_timeout, accept_new)
    log.debug("%s: ssh %s@%s:%d, key %s, host keys %s (%s)%s", spec.name, spec.user or "-", spec.address, spec.port,
              spec.key_file or "agent/default", known_hosts, "accept new" if accept_new else "strict",
              ", via %s" % spec.proxy_jump if spec.proxy_jump else "")
    hops = [Hop("jump host", jump)] if jump else []
    hops.append(Hop("target", connection))
    with _open_lock:
        _open_connections.update(hop.connection for hop in hops)
    try:
        if spec.key_file:       # the jump host is offered the same key, as Ansible's -J does
            try:
                key = private_key(spec.key_file)
            except KeyUnusable as error:
                raise HopFailed(hops[-1], error)
            for hop in hops:
                hop.connection.connect_kwargs["pkey"] = key
        exited, stdout, stderr = execute(hops, command, timeout)
    except HopFailed as failure:  # every failure of one host becomes data about that host
        kind, detail = classify(failure, spec, known_hosts, {"connect": connect_timeout})
        log.debug("%s: %s at %s %s after %.2fs: %s", spec.name, type(failure.error).__name__, failure.hop.role,
                  failure.hop.phase, time.monotonic() - started, kind)
        return RunOutcome(spec.name, kind, detail=detail, seconds=time.monotonic() - started)
    finally:
        with _open_lock:
            _open_connections.difference_update(hop.connection for hop in hops)
        for hop in reversed(hops):
            hop.connection.close()
    log.debug("%s: exit %s after %.2fs", spec.name, exited, time.monotonic() - started)
    kind, detail = "ok", ""
    if exited == TIMEOUT_EXIT:
        kind, detail = "timeout", "the remote command ran past %ss and was stopped" % timeout
    elif exited == NOT_FOUND_EXIT and ("not found" in stderr or "No such file" in stderr):
        kind, detail = "python-missing", stderr.strip()[-300:]
    return RunOutcome(spec.name, kind, exit_status=exited, stdout=stdout, stderr=stderr, detail=detail,
                      seconds=time.monotonic() - started)


def _open(hop, sock):
    """TCP is made by the caller; here the SSH handshake, host key and authentication of one hop."""
    hop.wire = Wire(sock)
    hop.connection.connect_kwargs["sock"] = hop.wire
    hop.phase = "handshake"
    client = hop.connection.client
    original_auth = client._auth

    def authenticate(*args, **kwargs):  # the handshake and host key are done when paramiko authenticates
        hop.phase = "auth"
        return original_auth(*args, **kwargs)

    client._auth = authenticate
    try:
        with _handshakes:
            hop.connection.open()
    finally:
        del client._auth
    hop.phase = "exec"


def execute(hops, command, timeout):
    """(exit status, stdout, stderr) of one command, read on this thread; raises HopFailed.

    Fabric opens each connection (ssh_config, our host-key policy); the channel is read here
    with select() instead of through Invoke's runner, which starts three IO threads per
    command: per host, that was most of the controller's cost. stdin stays open and unused:
    when the connection closes (Ctrl-C), the remote agent sees it end and stops. Output
    beyond MAX_STDOUT ends the command: a controller never holds what a host pours out."""
    previous = None
    for hop in hops:
        conn = hop.connection
        try:
            if previous is None:
                # TCP first, outside the handshake slots: a dead subnet must not hold them for its timeouts
                sock = socket.create_connection((conn.host, conn.port), timeout=conn.connect_timeout)
            else:
                previous.phase = "tunnel"       # the jump host opens the way to the target
                try:
                    sock = previous.connection.client.get_transport().open_channel(
                        "direct-tcpip", (conn.host, int(conn.port)), ("", 0), timeout=conn.connect_timeout)
                except Exception as error:
                    raise HopFailed(previous, error) from error
            _open(hop, sock)
        except HopFailed:
            raise
        except Exception as error:
            raise HopFailed(hop, error) from error
        previous = hop
    target = hops[-1]
    try:
        return _exec(target.connection, command, timeout)
    except Exception as error:
        raise HopFailed(target, error) from error


def _exec(connection, command, timeout):
    channel = connection.client.get_transport().open_session(timeout=connection.connect_timeout)
    try:
        channel.exec_command(command)
        deadline = time.monotonic() + timeout
        stdout, stderr = bytearray(), bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeout(timeout)
            select.select([channel], [], [], min(left, 5))
            while channel.recv_ready():
                stdout += channel.recv(1 << 16)
                if len(stdout) > MAX_STDOUT:
                    raise OutputTooLarge(MAX_STDOUT)
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(1 << 16)
                del stderr[:-MAX_STDERR]
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                if channel.eof_received or channel.closed:
                    break
        return (channel.recv_exit_status(), stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))
    finally:
        channel.close()
