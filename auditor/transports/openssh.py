"""The OpenSSH backend (`ansible_connection: ssh`, Ansible's default): the system `ssh` client.

It honours what the operator's ssh_config says (Include, Match, ProxyJump, ProxyCommand,
CertificateFile, IdentityAgent) and known_hosts as OpenSSH reads it (`@cert-authority`,
`@revoked`, hashed entries). It never prompts (BatchMode) and verifies host keys strictly
unless trust on first use was asked for (then `accept-new`, and each added key is said with its
SHA256 fingerprint). A jump host named in the inventory is reached with a ProxyCommand that
carries the same options, so its host key is checked against the same known_hosts (`-J` would
not pass them on). ssh's own failures (exit 255) are classified from its words into the same
step-0 kinds as the paramiko backend's, naming the hop that failed.

Nothing secret is on ssh's command line (argv is visible in `ps`): the agent and its settings
are, and hold no secret (fingerprints are keyed on the controller).
"""
import logging
import os
import re
import select
import shlex
import signal
import socket
import stat
import subprocess
import threading
import time

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import causes
from .base import MAX_STDERR, MAX_STDOUT, Cause, OutcomeKind, RunOutcome, Transport, key_problem
from .causes import command_outcome, hop_label
from .ssh import split_destination, ssh_target

if TYPE_CHECKING:
    from ..inventory import HostSpec

log = logging.getLogger("auditor.transports.openssh")
K = OutcomeKind
SSH_FAILED = 255
# lines ssh itself writes at LogLevel VERBOSE: progress for the classification, not the agent's stderr
OWN_LINES = re.compile(r"^(Authenticated to |Transferred: |Bytes per second: |Warning: Permanently added )")


def parse_destination(text: str) -> Tuple[Optional[str], str, int]:
    """'user@host:port' (a ProxyJump element, checked when the inventory was read) -> (user, host, port)."""
    user, host, port = split_destination(text)
    return user, host, int(port)


class OpenSSH(Transport):
    """One `ssh` process per host; the processes of one audit belong to its session."""

    name = "ssh"

    def __init__(self, session):
        super().__init__(session)
        self._lock = threading.Lock()
        self._running = set()
        self._keys = {}         # key file -> None (usable), "protected", or why it cannot be used

    def options(self, spec: "HostSpec", connect_timeout: float) -> List[str]:
        """The options every ssh of this host's visit gets (the target's and its jump hosts')."""
        words = ["-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=%s" % ("accept-new" if self.session.accept_new else "yes"),
                 "-o", "ConnectTimeout=%d" % max(1, round(connect_timeout)), "-o", "LogLevel=VERBOSE"]
        if spec.settings.known_hosts:
            words += ["-o", "UserKnownHostsFile=%s" % os.path.expanduser(spec.settings.known_hosts)]
        key_file = ssh_target(spec).key_file
        if key_file:
            words += ["-i", os.path.expanduser(key_file)]
        if spec.settings.ssh_control_persist:
            words += ["-o", "ControlMaster=auto", "-o", "ControlPersist=%ds" % spec.settings.ssh_control_persist,
                      "-o", "ControlPath=%s" % os.path.join(control_directory(), "%C")]
        return words

    def reuses_connection(self, spec: "HostSpec", connect_timeout: float) -> bool:
        """Whether a persisted connection to the host is open (`ssh -O check`): then no handshake
        happens, and none is waited for."""
        if not spec.settings.ssh_control_persist:
            return False
        argv = self.argv(spec, "true", connect_timeout)[:-3]
        done = subprocess.run(argv[:1] + ["-O", "check"] + argv[1:] + ["--", spec.address], capture_output=True,
                              timeout=10, stdin=subprocess.DEVNULL)
        return done.returncode == 0

    def jump_proxy(self, spec: "HostSpec", connect_timeout: float) -> Optional[str]:
        """A ProxyCommand for the inventory's jump hosts (`a,b` is a chain), with the same options."""
        proxy = None
        for element in (ssh_target(spec).proxy_jump or "").split(","):
            user, host, port = parse_destination(element)
            argv = ["ssh", "-T", *self.options(spec, connect_timeout), "-W", "%h:%p", "-p", str(port)]
            if user:
                argv += ["-l", user]
            if proxy:
                argv += ["-o", "ProxyCommand=%s" % proxy]
            proxy = " ".join(shlex.quote(word) for word in argv + ["--", host])
        return proxy

    def argv(self, spec: "HostSpec", command: str, connect_timeout: float) -> List[str]:
        target = ssh_target(spec)
        argv = ["ssh", "-T", *self.options(spec, connect_timeout), "-p", str(target.port)]
        if target.user:
            argv += ["-l", target.user]
        if target.proxy_jump:
            argv += ["-o", "ProxyCommand=%s" % self.jump_proxy(spec, connect_timeout)]
        elif target.proxy_command:
            argv += ["-o", "ProxyCommand=%s" % target.proxy_command]
        argv += list(target.ssh_args)
        return argv + ["--", spec.address, command]      # `--`: no address is ever read as an option

    def describe(self, spec: "HostSpec") -> str:
        """The route as ssh will take it: the inventory's jump hosts, else ssh_config's (`ssh -G`)."""
        ssh = ssh_target(spec)
        resolved = self.resolved(spec)
        jumps = ssh.proxy_jump or (resolved["proxyjump"] if resolved["proxyjump"] != "none" else "")
        route = [hop_label(*parse_destination(j)[1:]) for j in jumps.split(",") if j]
        route.append(hop_label(resolved["hostname"], resolved["port"]))
        via = " (ProxyCommand %s)" % ssh.proxy_command if ssh.proxy_command and not ssh.proxy_jump else ""
        return "ssh %s%s" % (" -> ".join(route), via)

    def close_all(self) -> None:
        with self._lock:
            processes = list(self._running)
        for process in processes:
            _kill(process)

    def key_problem(self, path: str) -> Optional[str]:
        """key_problem(path), asked once per audit."""
        path = os.path.expanduser(path)
        with self._lock:
            if path not in self._keys:
                self._keys[path] = key_problem(path)
            return self._keys[path]

    def run(self, spec: "HostSpec", command: str, timeout: float, connect_timeout: float) -> RunOutcome:
        started = time.monotonic()
        target = ssh_target(spec)
        if target.key_file:
            problem = self.key_problem(target.key_file)
            if problem not in (None, "protected"):
                return RunOutcome(spec.name, K.KEY_UNUSABLE, seconds=time.monotonic() - started,
                                  detail="%s: private key %s cannot be used: %s" % (
                                      spec.name, target.key_file, problem))
        reused = self.reuses_connection(spec, connect_timeout)
        argv = self.argv(spec, command, connect_timeout)
        log.debug("%s: %s", spec.name, " ".join(shlex.quote(word) for word in argv[:-1]) + " <agent command>")
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as error:
            return RunOutcome(spec.name, K.ERROR, seconds=time.monotonic() - started,
                              detail="the OpenSSH client could not start (%s): install openssh-client, or set "
                                     "ansible_connection: paramiko" % error.strerror)
        with self._lock:
            self._running.add(process)
        hops = 1 + len([j for j in (target.proxy_jump or "").split(",") if j])
        try:
            exited, stdout, stderr, failure = _communicate(process, spec, timeout, hops,
                                                           handshake=connect_timeout * hops + 5, reused=reused)
        finally:
            with self._lock:
                self._running.discard(process)
            _kill(process)
        seconds = time.monotonic() - started
        own = [line for line in stderr.splitlines() if OWN_LINES.match(line)]
        stderr = "\n".join(line for line in stderr.splitlines() if not OWN_LINES.match(line))
        self._announce_added(spec, own)
        if failure:
            return RunOutcome(spec.name, failure[0], detail=failure[1], seconds=seconds)
        # the target's own "Authenticated to" comes after one per jump host of ours (their ssh runs
        # at LogLevel VERBOSE too): fewer means ssh failed before or while reaching the target
        reached = sum(line.startswith("Authenticated to ") for line in own) >= hops
        if exited == SSH_FAILED and not reused and not reached:
            resolved = self.resolved(spec)
            kind, detail = classify(stderr, spec, connect_timeout, resolved)
            if kind in (K.TIMEOUT, K.UNREACHABLE) and ("handshake" in detail or "banner" in detail):
                kind, detail = _what_answered(spec, resolved, connect_timeout) or (kind, detail)
            if kind == K.AUTH_FAILED and target.key_file and self.key_problem(target.key_file) == "protected":
                detail += ": " + causes.without_agent(target.key_file)
            return RunOutcome(spec.name, kind, exit_status=exited, detail=detail, seconds=seconds)
        if exited is None or exited < 0:
            return RunOutcome(spec.name, K.ERROR, detail="ssh ended by signal %s" % -(exited or 0),
                              seconds=seconds)
        return command_outcome(spec.name, exited, stdout, stderr, timeout, seconds)

    def resolved(self, spec: "HostSpec") -> Dict[str, Any]:
        """{hostname, port, proxyjump} as the operator's ssh_config resolves the target (`ssh -G`,
        no connection): asked only to name the hop of a failure."""
        ssh = ssh_target(spec)
        done = subprocess.run(["ssh", "-G", "-p", str(ssh.port), "--", spec.address], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
        pairs = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        return {"hostname": pairs.get("hostname", spec.address), "port": int(pairs.get("port", ssh.port)),
                "proxyjump": pairs.get("proxyjump", "none"), "proxycommand": pairs.get("proxycommand", "none")}

    def _announce_added(self, spec, own):
        for line in own:
            added = re.match(r"Warning: Permanently added '([^']+)' \((\S+)\)", line)
            if not added:
                continue
            known = spec.settings.known_hosts or "~/.ssh/known_hosts"
            listed = subprocess.run(["ssh-keygen", "-F", added.group(1), "-l", "-f", os.path.expanduser(known)],
                                    capture_output=True, text=True, timeout=10).stdout
            prints = re.findall(r"SHA256:\S+", listed)
            self.session.announce("added %s (%s %s) to %s" % (added.group(1), added.group(2),
                                                             prints[-1] if prints else "?", known))


def control_directory() -> str:
    """Where persisted connections' sockets live: private to the user (0700, checked), with a
    short path (a unix socket path must stay under about 100 bytes)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "fleet-auditor-ssh")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError("%s is not a private directory of yours (mode 0700): remove it" % path)
    return path


def _kill(process):
    """ssh and its whole process group: a ProxyCommand's children outlive ssh's own exit (ssh ends
    only the proxy it started), so the group is ended even when ssh has exited by itself."""
    try:
        os.killpg(process.pid, signal.SIGKILL)      # the group outlives its leader while it has members
    except OSError:
        pass
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream and not stream.closed:
            stream.close()


def _communicate(process, spec, timeout, hops, handshake, reused=False):
    """(exit status, stdout, stderr, failure) with every wait bounded: until the target (the last of
    `hops`) is authenticated the handshake deadline (ssh's ConnectTimeout covers only TCP and the
    banner), then the command's;
    `failure` is (kind, detail) when a bound was hit. stdin stays open: when it closes (Ctrl-C),
    the remote agent stops."""
    started = time.monotonic()
    stdout, stderr = bytearray(), bytearray()
    authenticated = reused          # a persisted connection has no handshake to wait for
    streams = {process.stdout.fileno(): stdout, process.stderr.fileno(): stderr}
    open_streams = set(streams)
    while open_streams:
        now = time.monotonic()
        if not authenticated and now - started > handshake:
            return None, "", stderr.decode("utf-8", "replace"), (K.TIMEOUT, _stalled(stderr, spec, handshake))
        if now - started > timeout:
            return None, "", "", (K.TIMEOUT, causes.ran_past(timeout))
        ready, _, _ = select.select(list(open_streams), [], [], 0.5)
        for descriptor in ready:
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                open_streams.discard(descriptor)
                continue
            streams[descriptor] += chunk
            if len(stdout) > MAX_STDOUT:
                return None, "", "", (K.ERROR, causes.too_much_output(MAX_STDOUT))
            if descriptor == process.stderr.fileno():
                authenticated = authenticated or stderr.count(b"Authenticated to ") >= hops
                del stderr[:-MAX_STDERR]
        authenticated = authenticated or bool(stdout)
    exited = process.wait(timeout=max(1, timeout - (time.monotonic() - started)))
    return exited, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), None


def _stalled(stderr, spec, handshake):
    said = stderr.decode("utf-8", "replace").strip().splitlines()
    return "no SSH session with %s after %ss: the handshake or authentication stalled%s" % (
        hop_label(spec.address, ssh_target(spec).port), round(handshake),
        " (ssh said: %s)" % said[-1][:200] if said else "")


# -- classification of ssh's own failures (exit 255) ---------------------------------------------

def _what_answered(spec, resolved, connect_timeout):
    """ssh does not say what a peer that is not sshd sent (an HTTP server's 400 is "no banner" or "closed"
    to it): on a direct route, one more connection says an SSH client's banner and reads the answer
    (read-only, bounded), so both transports name the other service alike. None when it is sshd-like
    or silent."""
    ssh = ssh_target(spec)
    if ssh.proxy_jump or ssh.proxy_command or resolved.get("proxyjump", "none") != "none" or \
            resolved.get("proxycommand", "none") != "none":
        return None
    seconds = min(connect_timeout, 3)
    try:
        with socket.create_connection((resolved["hostname"], resolved["port"]), timeout=seconds) as peer:
            peer.sendall(b"SSH-2.0-fleet-audit\r\n")
            answer = peer.recv(256)
    except OSError:
        return None
    first = (answer.decode("ascii", "replace").splitlines() or [""])[0][:60]
    if not first or first.startswith("SSH-"):
        return None
    return causes.not_ssh(hop_label(spec.address, ssh.port), first)


def _proxy_of(spec, resolved):
    """The ProxyCommand ssh ran for the target, as the operator would name it."""
    ssh = ssh_target(spec)
    if ssh.proxy_jump or resolved.get("proxyjump", "none") != "none":
        return "the jump host's ssh, ProxyJump %s" % (ssh.proxy_jump or resolved["proxyjump"])
    return ssh.proxy_command or resolved.get("proxycommand", "none")


def classify(stderr: str, spec: "HostSpec", connect_timeout: float, resolved: Dict[str, Any]) -> Cause:
    """(kind, detail) from what ssh said when it failed itself; `resolved` is the target as the
    operator's ssh_config resolves it (its real host name, port and jump hosts)."""
    text = stderr
    target_port, user = ssh_target(spec).port, ssh_target(spec).user
    target = {spec.address, hop_label(spec.address, target_port), resolved["hostname"],
              hop_label(resolved["hostname"], resolved["port"])}

    def hop_of(name, port=None):
        """The hop ssh named ('host', '[host]:port', or a host and a port): the target, or a jump host."""
        label = hop_label(name, port) if port is not None else name
        return hop_label(spec.address, target_port) if label in target else "jump host %s" % label

    last = (text.strip().splitlines() or ["ssh failed and said nothing"])[-1][:200]
    found = re.search(r"The (\S+) host key for (\S+) is marked as revoked", text)
    if found or "REVOKED HOST KEY" in text:
        return causes.revoked_key(hop_of(found.group(2)) if found else hop_label(spec.address, target_port))
    found = re.search(r"Host key for (\S+) has changed", text)
    if found:
        offending = re.search(r"ssh-keygen -f \"([^\"]+)\" -R \"([^\"]+)\"", text)
        fix = "`ssh-keygen -f %s -R '%s'`" % offending.groups() if offending else "`ssh-keygen -R`"
        fp = re.search(r"SHA256:\S+", text)
        return causes.changed_key(hop_of(found.group(1)), fp.group(0).rstrip(".") if fp else "?", fix)
    found = re.search(r"No (\S+) host key is known for (\S+)", text)
    if found or "Host key verification failed" in text:
        name = found.group(2) if found else None
        where = hop_of(name) if name else "%s or one of its jump hosts" % hop_label(spec.address, target_port)
        host, its_port = (name.strip("[]").rsplit("]:", 1)[0], name.rsplit(":", 1)[1]) \
            if name and name.startswith("[") else (name or spec.address, 22 if name else target_port)
        return causes.unknown_key(where, "known_hosts (nor covered by a @cert-authority line)", host, its_port)
    found = re.search(r"(?:(\S+)@(\S+): )?Permission denied \(([^)]*)\)", text)
    if found:
        where = hop_of(found.group(2)) if found.group(2) else hop_label(spec.address, target_port)
        bad_key = re.search(r"Load key \"([^\"]+)\": (.+)", text)
        if bad_key and "passphrase" in bad_key.group(2):
            return K.AUTH_FAILED, "%s refused user %r (%s): %s" % (where, found.group(1) or user, found.group(3),
                                                                    causes.without_agent(bad_key.group(1)))
        return K.AUTH_FAILED, "%s refused user %r (%s)" % (where, found.group(1) or user, found.group(3))
    found = re.search(r"Could not resolve hostname (\S+?):", text)
    if found:
        return causes.unresolved(hop_of(found.group(1)))
    found = re.search(r"connect to host (\S+) port (\d+): (.+)", text)
    if found:
        where, cause = hop_of(found.group(1), found.group(2)), found.group(3).strip()
        if "timed out" in cause.lower():
            return causes.no_answer(where, connect_timeout)
        if "refused" in cause.lower():
            return causes.refused(where)
        if "reset" in cause.lower():
            return causes.reset_at_connect(where)
        return K.UNREACHABLE, "%s: %s" % (where, cause)
    found = re.search(r"channel \d+: open failed: connect failed: (.+)", text)
    if found:
        return causes.tunnel_failed("the jump host", spec.address, target_port, found.group(1).strip())
    if "Protocol major versions differ" in text:
        return causes.ssh1_only(hop_label(spec.address, target_port))
    if "invalid format" in text and "banner" in text or "banner line contains invalid characters" in text:
        return K.PROTOCOL, "%s answered, but not as an SSH server (%s)" % (hop_label(spec.address, target_port), last)
    if "timed out during banner exchange" in text:
        return causes.no_banner(hop_label(spec.address, target_port), connect_timeout)
    if "Connection reset by" in text:
        return causes.reset_in_handshake(hop_label(spec.address, target_port))
    if "Connection closed by UNKNOWN port 65535" in text:     # the ProxyCommand's end, not sshd's
        said = [line.strip() for line in text.strip().splitlines() if line.strip() and
                not line.startswith(("kex_exchange_identification:", "Connection closed by"))]
        return causes.proxy_failed(hop_label(spec.address, target_port), _proxy_of(spec, resolved),
                                   said[-1][:200] if said else "")
    if "Connection closed by" in text:
        return K.UNREACHABLE, "%s closed the connection during the SSH handshake: not an SSH server there, or " \
            "sshd refusing it (MaxStartups, tcp wrappers, AllowUsers)" % hop_label(spec.address, target_port)
    return K.ERROR, "ssh failed (exit 255): %s" % last
