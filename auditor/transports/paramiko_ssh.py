"""The paramiko backend (`ansible_connection: paramiko`): SSH in this process, through Fabric.

Fabric's Connection hard-codes AutoAddPolicy (it trusts any key); here every hop loads
known_hosts, parsed once per audit into an indexed table, and rejects unknown keys unless
trust-on-first-use was asked for. The jump hosts (ProxyJump, from the inventory or
ssh_config) and a ProxyCommand are opened here, hop by hop, so that a failure is blamed on the
hop and the phase where it happened, from what the peer really sent.
"""
import base64
import collections
import errno
import hashlib
import functools
import logging
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

import paramiko
from fabric import Config, Connection

from . import causes
from .base import MAX_STDERR, MAX_STDOUT, Cause, OutcomeKind, RunOutcome, Transport, key_problem
from .causes import command_outcome, hop_label
from .ssh import ssh_target

if TYPE_CHECKING:
    from ..inventory import HostSpec

# paramiko logs tracebacks of the failures classified here: thousands of lines on a large fleet
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False
log = logging.getLogger("auditor.transports.paramiko")

# Key exchange and authentication are the CPU-heavy part of a host's audit, spent in paramiko's
# Python threads. Hundreds of them at once only make every thread wait for the interpreter and
# doubled the CPU per host at --parallel 1000 (measured: 36 -> 18 ms); so at most this many
# handshakes are in flight, while any number of hosts wait for TCP or run their agents.
HANDSHAKES_IN_FLIGHT = 8 * (os.cpu_count() or 2)
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


def known_hosts_path(spec: "HostSpec", ssh_config: Any = None) -> str:
    """Precedence: inventory `auditor.known_hosts`, ssh_config UserKnownHostsFile, ~/.ssh/known_hosts."""
    configured = spec.settings.known_hosts
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
    the others: `@revoked` keys are never trusted, `@cert-authority` lines are kept to
    explain an unknown key, and damaged lines are counted by number."""

    def __init__(self, filename=None):
        self._plain, self._hashed = {}, []
        self.filename = filename
        self.revoked = set()            # (key type, base64) of every @revoked key
        self.authorities = []           # (host patterns, line number) of every @cert-authority line
        self.skipped = []               # line numbers that are not a host key OpenSSH or paramiko can use
        super().__init__(filename)

    def load(self, filename: str) -> None:
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
            self.authorities.append((fields[1], number))
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

    def add(self, hostname: str, keytype: str, key: paramiko.PKey) -> None:
        before = len(self._entries)
        super().add(hostname, keytype, key)
        self._index(self._entries[before:])

    def is_revoked(self, key: paramiko.PKey) -> bool:
        return (key.get_name(), key.get_base64()) in self.revoked

    def lookup(self, hostname: str) -> Any:
        matches = list(self._plain.get(hostname, []))
        matches += [e for e in self._hashed if e not in matches and self._hostname_matches(hostname, e)]
        matches = [e for e in matches if not self.is_revoked(e.key)]     # a revoked key is never known
        if not matches:
            return None
        found = paramiko.HostKeys()
        found._entries = matches
        return paramiko.HostKeys.lookup(found, hostname)

    def authority_for(self, hostname: str) -> Optional[str]:
        """'FILE:LINE' of the @cert-authority line covering hostname (`[host]:port` or host), if any."""
        bare = hostname[1:].split("]:")[0] if hostname.startswith("[") else hostname
        for patterns, number in self.authorities:
            names = patterns.split(",")
            if any(_host_matches(hostname, p[1:]) or _host_matches(bare, p[1:]) for p in names if p.startswith("!")):
                continue
            if any(_host_matches(hostname, p) or _host_matches(bare, p) for p in names if not p.startswith("!")):
                return "%s:%d" % (self.filename, number)
        return None


def _host_matches(hostname, pattern):
    """OpenSSH's host pattern: `*` and `?` are its only wildcards (a `[host]:port` pattern is literal,
    where fnmatch would read `[...]` as a set of characters and never match it)."""
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(expression, hostname.lower()) is not None


def fingerprint(key: paramiko.PKey) -> str:
    """A key's fingerprint as OpenSSH prints it: SHA256:base64, no padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class HostKeyRefused(paramiko.SSHException):
    """The host's key is not trusted: unknown (perhaps only certified by a CA) or revoked."""

    def __init__(self, hostname, key, revoked=False, authority=None):
        super().__init__("host key of %s %s" % (hostname, "is revoked" if revoked else "is not known"))
        self.hostname, self.key, self.revoked, self.authority = hostname, key, revoked, authority


class StrictHostKeys(paramiko.MissingHostKeyPolicy):
    """Refuse a key that known_hosts does not list; with `record_in`, trust it on first use
    (appended to that file, and said with its fingerprint) unless known_hosts revokes it."""

    def __init__(self, transport, tables, record_in=None):
        self.transport, self.tables, self.record_in = transport, tables, record_in

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if any(table.is_revoked(key) for table in self.tables):
            raise HostKeyRefused(hostname, key, revoked=True)
        if self.record_in is None:
            authority = next(filter(None, (table.authority_for(hostname) for table in self.tables)), None)
            raise HostKeyRefused(hostname, key, authority=authority)
        self.transport.record_host_key(self.record_in, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


class KeyUnusable(Exception):
    def __init__(self, path, reason):
        super().__init__("private key %s cannot be used: %s" % (path, reason))
        self.path = path


class PassphraseProtected(Exception):
    """The key file needs a passphrase: only an ssh-agent holding the key can use it."""


class Hop:
    """One SSH connection of a visit (a jump host or the target) and the phase it reached."""

    def __init__(self, role, connection):
        self.role, self.connection = role, connection       # role: "jump host" or "target"
        self.phase = "tcp"
        self.wire = None
        self.proxy_command = None

    @property
    def label(self) -> str:
        return hop_label(self.connection.host, self.connection.port)

    @property
    def name(self) -> str:
        return "%s %s" % (self.role, self.label) if self.role != "target" else self.label

    @property
    def where(self) -> str:
        return self.name + (" (via its ProxyCommand)" if self.proxy_command else "")


class HopFailed(Exception):
    def __init__(self, hop, error):
        super().__init__(str(error))
        self.hop, self.error = hop, error


class CommandTimeout(Exception):
    """The remote command did not finish in time (its text never holds the command)."""

    def __init__(self, timeout):
        super().__init__(causes.ran_past(timeout))
        self.timeout = timeout


class OutputTooLarge(Exception):
    def __init__(self, limit):
        super().__init__(causes.too_much_output(limit))


class RecordingSocket:
    """The socket handed to paramiko, recording what the peer sent first and how the connection
    ended: failures are classified by what happened, not by paramiko's words."""

    def __init__(self, sock):
        self.sock = sock
        self.first_bytes = b""
        self.closed_by_peer = False
        self.error = None

    def recv(self, size: int) -> bytes:
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

    def send(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except OSError as error:
            self.error = error
            raise

    def wait_for_banner(self, timeout: float) -> None:
        """Until the peer has sent something (its SSH banner): a peer that accepts TCP and never
        speaks costs no CPU, so it must not hold a key-exchange slot while it is waited for."""
        if not select.select([self.sock], [], [], timeout)[0]:
            raise socket.timeout("no SSH banner within %ss" % timeout)

    def settimeout(self, timeout: Optional[float]) -> None:
        self.sock.settimeout(timeout)

    def gettimeout(self) -> Optional[float]:
        return self.sock.gettimeout()

    def getpeername(self) -> Any:      # a ProxyCommand has no peer address
        return getattr(self.sock, "getpeername", lambda: ("unknown", 0))()

    def close(self) -> None:
        self.sock.close()

    @property
    def _closed(self):      # read by paramiko's Transport.stop_thread
        return getattr(self.sock, "_closed", getattr(self.sock, "closed", False))


class ProxyProcess:
    """A ProxyCommand run as OpenSSH runs it (`sh -c 'exec COMMAND'`), in its own process group:
    what it says on stderr is kept (its last lines are why it failed, which paramiko's own
    ProxyCommand discards), its end reads as the end of the connection (paramiko's spins until the
    timeout), and closing it ends its whole group (a hung proxy and its children never outlive
    the audit)."""

    def __init__(self, command_line):
        self.command = command_line
        self.process = subprocess.Popen(["/bin/sh", "-c", "exec " + command_line], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                                        start_new_session=True)
        self.timeout = None
        self.said = collections.deque(maxlen=5)
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self):
        for line in self.process.stderr:
            if line.strip():
                self.said.append(line.decode("utf-8", "replace").strip()[:200])

    def last_words(self) -> Optional[str]:
        """The proxy's last stderr line, once it has ended (a moment for the pipe to drain)."""
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
        deadline = time.monotonic() + 1
        while not self.said and self.process.stderr and not self.process.stderr.closed and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        return self.said[-1] if self.said else ""

    def send(self, data: bytes) -> int:
        try:
            return os.write(self.process.stdin.fileno(), data)
        except OSError as error:
            raise paramiko.ssh_exception.ProxyCommandFailure(self.command, error.strerror)

    def recv(self, size: int) -> bytes:
        if not select.select([self.process.stdout], [], [], self.timeout)[0]:
            raise socket.timeout()
        return os.read(self.process.stdout.fileno(), size)      # b"" at its end: the connection closed

    def settimeout(self, timeout: Optional[float]) -> None:
        self.timeout = timeout

    def fileno(self) -> int:           # select() waits on what the proxy prints
        return self.process.stdout.fileno()

    def close(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, signum)
            except (ProcessLookupError, PermissionError):
                break
            try:
                self.process.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue

    @property
    def closed(self) -> bool:
        return self.process.poll() is not None

    _closed = closed


def expand_tokens(command: str, host: str, port: Union[int, str], user: Optional[str]) -> str:
    """ssh_config's %h, %p, %r and %% in a ProxyCommand."""
    return command.replace("%%", "\0").replace("%h", host).replace("%p", str(port)).replace(
        "%r", user or "").replace("\0", "%")


class ParamikoSSH(Transport):
    """The in-process SSH backend; its caches and open connections belong to one audit."""

    name = "paramiko"

    def __init__(self, session):
        super().__init__(session)
        self.handshakes = threading.BoundedSemaphore(HANDSHAKES_IN_FLIGHT)
        self._lock = threading.Lock()
        self._tables = {}       # (path, mtime, size) -> IndexedHostKeys
        self._keys = {}         # (path, mtime) -> PKey, or the reason it cannot be used
        self._open = set()      # every connection in use, for Ctrl-C

    @functools.cached_property
    def fabric_config(self) -> Config:
        """Fabric's configuration, its files and ssh_config read once per audit: a Connection uses
        the Config it is given as it is (building one per host cost 1.4 ms of CPU each)."""
        return Config(overrides={"run": {"in_stream": False}})

    # -- what the connections of one audit share --------------------------------------------

    def host_key_table(self, path: str) -> IndexedHostKeys:
        """The parsed known_hosts at path, shared; parsed again only when the file changed. An
        unreadable file is an empty table (as for OpenSSH), never a failed audit."""
        try:
            stat = os.stat(path)
            key: Tuple[str, Optional[int], Optional[int]] = (path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (path, None, None)
        with self._lock:
            if key not in self._tables:
                try:
                    self._tables[key] = IndexedHostKeys(path if key[1] is not None else None)
                except (OSError, UnicodeError):
                    self._tables[key] = IndexedHostKeys()
            return self._tables[key]

    def record_host_key(self, path: str, hostname: str, key: paramiko.PKey) -> None:
        line = "%s %s %s\n" % (hostname, key.get_name(), key.get_base64())
        with self._lock:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as handle:
                handle.write(line)
        self.session.announce("added %s (%s %s) to %s" % (hostname, key.get_name(), fingerprint(key), path))

    def private_key(self, path: str) -> paramiko.PKey:
        """The key file at path, loaded once per audit (not once per host). Raises KeyUnusable,
        or PassphraseProtected (then only an ssh-agent holding it can help)."""
        path = os.path.expanduser(path)
        try:
            cache_key = (path, os.stat(path).st_mtime_ns)
        except OSError as error:
            raise KeyUnusable(path, error.strerror)
        with self._lock:
            if cache_key not in self._keys:
                try:
                    self._keys[cache_key] = paramiko.PKey.from_path(path)
                except paramiko.PasswordRequiredException:
                    self._keys[cache_key] = PassphraseProtected
                except Exception as error:  # a .pub file, a damaged or unknown key: paramiko's types vary
                    # paramiko raises TypeError for an encrypted key in OpenSSH's format: ask OpenSSH
                    self._keys[cache_key] = PassphraseProtected if key_problem(path) == "protected" else \
                        "not a private key paramiko can read (%s)" % (
                            "a public key file" if path.endswith(".pub") else type(error).__name__)
            loaded = self._keys[cache_key]
        if loaded is PassphraseProtected:
            raise PassphraseProtected(path)
        if isinstance(loaded, str):
            raise KeyUnusable(path, loaded)
        return loaded

    def _secure(self, connection, known_hosts):
        """Strict host keys from tables parsed once per audit (paramiko's loaders reparse per client)."""
        client = connection.client
        client._system_host_keys = self.host_key_table(SYSTEM_KNOWN_HOSTS)
        client._host_keys = self.host_key_table(known_hosts)
        client._host_keys_filename = None       # never written back by paramiko: StrictHostKeys appends
        client.set_missing_host_key_policy(StrictHostKeys(
            self, (client._system_host_keys, client._host_keys), known_hosts if self.session.accept_new else None))

    def hops_for(self, spec: "HostSpec", timeout: float) -> Tuple[List[Hop], str]:
        """(hops, known_hosts): Fabric Connections that do no network work yet, with strict host
        keys, jump hosts first. Jump hosts come from the inventory (ProxyJump, `-J`) or else from
        ssh_config; a ProxyCommand likewise. Fabric would open them itself inside `open()`; they are
        taken out of its hands so that each hop's failure is its own."""
        ssh = ssh_target(spec)
        connect_kwargs = {"banner_timeout": timeout, "auth_timeout": timeout, "channel_timeout": timeout,
                          "allow_agent": True, "look_for_keys": not ssh.key_file}
        config = self.fabric_config
        target = Connection(spec.address, user=ssh.user, port=ssh.port, connect_timeout=timeout,
                            connect_kwargs=dict(connect_kwargs), config=config)
        chain = []
        if ssh.proxy_jump:
            chain = [Connection(jump, connect_timeout=timeout, connect_kwargs=dict(connect_kwargs), config=config)
                     for jump in ssh.proxy_jump.split(",")]
        else:
            gateway = target.gateway
            while isinstance(gateway, Connection):      # ssh_config's ProxyJump, nested by Fabric
                chain.insert(0, gateway)
                gateway = gateway.gateway
        hops = [Hop("jump host", connection) for connection in chain] + [Hop("target", target)]
        proxy = ssh.proxy_command or (target.gateway if isinstance(target.gateway, str) else None)
        if proxy:
            first = hops[0].connection
            hops[0].proxy_command = expand_tokens(proxy, first.host, first.port, first.user)
        known_hosts = known_hosts_path(spec, target.ssh_config)
        for hop in hops:
            hop.connection.gateway = None
            self._secure(hop.connection, known_hosts)
        return hops, known_hosts

    def describe(self, spec: "HostSpec") -> str:
        ssh = ssh_target(spec)
        resolved = self.fabric_config.base_ssh_config.lookup(spec.address)
        if not (ssh.proxy_jump or ssh.proxy_command or "proxyjump" in resolved or "proxycommand" in resolved):
            # a direct route, as Connection resolves it (ssh_config's Hostname, the inventory's port),
            # without building one: `hosts` lists 100,000 of them
            return "paramiko %s" % hop_label(resolved.get("hostname", spec.address), ssh.port)
        hops, _ = self.hops_for(spec, 10)
        route = " -> ".join(hop.label for hop in hops)
        return "paramiko %s%s" % (route, " (ProxyCommand %s)" % hops[0].proxy_command if hops[0].proxy_command else "")

    def close_all(self) -> None:
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.close()
            except Exception:  # already half-closed by its own thread: nothing left to close
                pass

    # -- one visit ---------------------------------------------------------------------------

    def run(self, spec: "HostSpec", command: str, timeout: float, connect_timeout: float) -> RunOutcome:
        """One connection (through the jump hosts, if any), one exec; never raises for the host's failure."""
        ssh = ssh_target(spec)
        started = time.monotonic()
        hops, known_hosts = self.hops_for(spec, connect_timeout)
        log.debug("%s: paramiko %s, user %s, key %s, host keys %s (%s)", spec.name,
                  " -> ".join(hop.label for hop in hops), ssh.user or "-", ssh.key_file or "agent/default",
                  known_hosts, "accept new" if self.session.accept_new else "strict")
        with self._lock:
            self._open.update(hop.connection for hop in hops)
        try:
            self._use_key(spec, hops)
            exited, stdout, stderr = self._execute(hops, command, timeout)
        except HopFailed as failure:  # every failure of one host becomes data about that host
            kind, detail = classify(failure, spec, known_hosts, connect_timeout)
            log.debug("%s: %s at %s %s after %.2fs: %s", spec.name, type(failure.error).__name__, failure.hop.role,
                      failure.hop.phase, time.monotonic() - started, kind)
            return RunOutcome(spec.name, kind, detail=detail, seconds=time.monotonic() - started)
        finally:
            with self._lock:
                self._open.difference_update(hop.connection for hop in hops)
            for hop in reversed(hops):
                _close_hop(hop)
        log.debug("%s: exit %s after %.2fs", spec.name, exited, time.monotonic() - started)
        return command_outcome(spec.name, exited, stdout, stderr, timeout, time.monotonic() - started)

    def _use_key(self, spec, hops):
        """The inventory's key, loaded once per audit, offered to every hop (as Ansible's -J does);
        one protected by a passphrase is left to the ssh-agent, as OpenSSH leaves it."""
        ssh = ssh_target(spec)
        if not ssh.key_file:
            return
        try:
            key = self.private_key(ssh.key_file)
        except PassphraseProtected:
            hops[-1].connection.connect_kwargs["passphrase_protected"] = ssh.key_file
            return
        except KeyUnusable as error:
            raise HopFailed(hops[-1], error)
        for hop in hops:
            hop.connection.connect_kwargs["pkey"] = key

    def _execute(self, hops, command, timeout):
        """(exit status, stdout, stderr) of one command, read on this thread; raises HopFailed.

        The channel is read here with select() instead of through Invoke's runner, which starts
        three IO threads per command: per host, that was most of the controller's cost. stdin
        stays open and unused: when the connection closes (Ctrl-C), the remote agent sees it end
        and stops. Output beyond MAX_STDOUT ends the command."""
        previous = None
        for hop in hops:
            conn = hop.connection
            try:
                if previous is not None:
                    previous.phase = "tunnel"       # the jump host opens the way to the next hop
                    try:
                        sock = previous.connection.client.get_transport().open_channel(
                            "direct-tcpip", (conn.host, int(conn.port)), ("", 0), timeout=conn.connect_timeout)
                    except Exception as error:
                        raise HopFailed(previous, error) from error
                elif hop.proxy_command:
                    hop.phase = "proxy"
                    sock = ProxyProcess(hop.proxy_command)
                else:
                    # TCP first, outside the handshake slots: a dead subnet must not hold them for its timeouts
                    sock = socket.create_connection((conn.host, conn.port), timeout=conn.connect_timeout)
                self._open_hop(hop, sock)
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

    def _open_hop(self, hop, sock):
        """The SSH handshake, host key and authentication of one hop, on a socket made by the caller."""
        hop.wire = RecordingSocket(sock)
        protected = hop.connection.connect_kwargs.pop("passphrase_protected", None)
        hop.connection.connect_kwargs["sock"] = hop.wire
        hop.phase = "handshake"
        client = hop.connection.client
        original_auth = client._auth

        def authenticate(*args, **kwargs):  # the handshake and host key are done when paramiko authenticates
            hop.phase = "auth"
            try:
                return original_auth(*args, **kwargs)
            except paramiko.SSHException as error:      # also "No authentication methods available"
                if protected:
                    raise paramiko.AuthenticationException(
                        "%s; %s" % (error, causes.without_agent(protected)))
                raise

        client._auth = authenticate
        try:
            hop.wire.wait_for_banner(hop.connection.connect_timeout)
            with self.handshakes:
                hop.connection.open()
        finally:
            del client._auth
        hop.phase = "exec"


def _close_hop(hop):
    """Close a hop whatever it reached: Fabric closes only a connected client, so a transport left by
    a failed authentication is stopped here, its thread joined *before* its socket closes (a thread
    still reading a closed descriptor would read the next connection's bytes once the number is
    reused); then the socket no transport took (no banner came), or the ProxyCommand, is closed."""
    hop.connection.close()
    transport = hop.connection.client.get_transport()
    if transport is not None:
        transport.close()                   # stops and joins its thread, then closes its socket
        if transport.is_alive() and transport is not threading.current_thread():
            transport.join(5)               # one that never became active still has a thread to end
    if hop.wire is not None:
        hop.wire.close()


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


# -- classification: what happened, where ----------------------------------------------------

K = OutcomeKind


def classify(failure: "HopFailed", spec: "HostSpec", known_hosts: str, connect_timeout: float) -> Cause:
    """(kind, detail with the fix) of a failed visit, from the hop and phase where it failed."""
    hop, error = failure.hop, failure.error
    where = hop.where
    if isinstance(error, KeyUnusable):
        return K.KEY_UNUSABLE, "%s: %s" % (spec.name, error)
    if isinstance(error, HostKeyRefused):
        if error.revoked:
            return causes.revoked_key(where, fingerprint(error.key))
        if error.authority:
            return K.HOST_KEY_UNKNOWN, (
                "%s is vouched for only by a certificate authority (%s: @cert-authority), and the paramiko "
                "transport cannot verify SSH certificates: set `ansible_connection: ssh` for this host (the "
                "OpenSSH client verifies them), or add its plain key to %s" % (where, error.authority, known_hosts))
        return causes.unknown_key(where, known_hosts, hop.connection.host, hop.connection.port)
    if isinstance(error, paramiko.BadHostKeyException):
        return causes.changed_key(where, "%s %s" % (error.key.get_name(), fingerprint(error.key)),
                                  "`ssh-keygen -R '%s' -f %s`" % (hop.label, known_hosts))
    if isinstance(error, CommandTimeout):
        return K.TIMEOUT, str(error)
    if isinstance(error, OutputTooLarge):
        return K.ERROR, str(error)
    proxy = getattr(hop.wire, "sock", None)
    if isinstance(proxy, ProxyProcess) and hop.phase in ("proxy", "handshake"):
        said = proxy.last_words()
        if said is not None:            # it ended: the proxy failed, the host's sshd was never reached
            return causes.proxy_failed(hop.name, proxy.command, said)
    if isinstance(error, paramiko.ssh_exception.ProxyCommandFailure) or hop.phase == "proxy":
        return causes.proxy_failed(hop.name, hop.proxy_command, str(error))
    if not isinstance(error, (OSError, EOFError, paramiko.SSHException)):     # the auditor's own failure
        return K.ERROR, "%s, %s: %s: %s" % (where, hop.phase, type(error).__name__, error)
    if hop.phase == "tcp":
        return _tcp_failure(error, where, connect_timeout)
    if hop.phase == "handshake":
        return _handshake_failure(error, hop, where, connect_timeout)
    if hop.phase == "auth" or isinstance(error, paramiko.AuthenticationException):
        return K.AUTH_FAILED, "%s refused user %r: %s" % (where, hop.connection.user, error)
    if hop.phase == "tunnel":
        return causes.tunnel_failed(where, spec.address, ssh_target(spec).port, error)
    return K.ERROR, "%s, %s: %s: %s" % (where, hop.phase, type(error).__name__, error)


def _tcp_failure(error, where, connect_timeout):
    if isinstance(error, socket.gaierror):
        return causes.unresolved(where, error.strerror)
    if isinstance(error, (socket.timeout, TimeoutError)) or getattr(error, "errno", None) == errno.ETIMEDOUT:
        return causes.no_answer(where, connect_timeout)     # one condition, one code, every transport
    if isinstance(error, ConnectionResetError):
        return causes.reset_at_connect(where)
    if isinstance(error, ConnectionRefusedError):
        return causes.refused(where)
    return K.UNREACHABLE, "%s: %s" % (where, getattr(error, "strerror", None) or error)


def _what_answered(wire):
    text = wire.first_bytes.decode("ascii", "replace").splitlines()
    return (text[0] if text else "")[:60]


def _handshake_failure(error, hop, where, connect_timeout):
    wire, transport = hop.wire, hop.connection.client.get_transport()
    answered = _what_answered(wire) if wire else ""
    if answered.startswith("SSH-1.") and not answered.startswith("SSH-1.99"):
        return causes.ssh1_only(where, answered)
    if answered and not answered.startswith("SSH-"):
        return causes.not_ssh(where, answered)
    if wire and isinstance(wire.error, ConnectionResetError):
        return causes.reset_in_handshake(where)
    if wire and wire.closed_by_peer:
        return K.UNREACHABLE, "%s closed the connection during the SSH handshake%s (sshd's MaxStartups, tcp " \
            "wrappers or AllowUsers, or a proxy refusing it)" % (where, " after its banner" if answered else "")
    if not answered:
        return causes.no_banner(where, connect_timeout)
    remote = getattr(transport, "remote_version", None) or answered
    return K.TIMEOUT, "the SSH handshake with %s stalled after its banner (%s) for %ss" % (
        where, remote[:60], connect_timeout)
