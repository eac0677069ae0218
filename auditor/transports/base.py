"""What every transport shares: the outcome of one remote command, its failure kinds, the
quoting helper, and the per-audit session that owns what connections share.

A transport runs the one agent command on one host with a timeout and returns a RunOutcome;
it never raises for the host's failure. Models: pytest-testinfra's backends (one `run`,
non-zero exits as data) and Ansible's ConnectionBase.exec_command.
"""
import subprocess
import threading
from dataclasses import dataclass
from typing import Optional

from ..agent.wire import Word
from ..shell import quote  # noqa: F401  (the transports' one quoting, re-exported)


class OutcomeKind(Word):
    """How a visit ended; each failure kind maps to one step-0 finding code."""
    OK = "ok"
    UNREACHABLE = "unreachable"             # no working connection: refused, reset, dropped, unresolvable
    PROTOCOL = "protocol"                   # the port answered, but not as an SSH-2 server
    AUTH_FAILED = "auth-failed"
    KEY_UNUSABLE = "key-unusable"           # the private key file cannot be used
    HOST_KEY_UNKNOWN = "host-key-unknown"
    HOST_KEY_CHANGED = "host-key-changed"
    HOST_KEY_REVOKED = "host-key-revoked"
    TIMEOUT = "timeout"
    PYTHON_MISSING = "python-missing"
    ERROR = "error"                         # the agent ran but printed no facts, or the auditor failed
    NOT_AUDITED = "not-audited"             # interrupted before this host finished
    # Run Command's own (SSM)
    NOT_MANAGED = "not-managed"             # not an SSM managed instance, or its agent is not connected
    DENIED = "denied"                       # the controller may not send the command or read its result
    DELIVERY_TIMEOUT = "delivery-timeout"
    COMMAND_TIMEOUT = "command-timeout"
    CANCELLED = "cancelled"
    OUTPUT_TOO_LARGE = "output-too-large"   # the facts exceed the inline output, and no S3 bucket is named


OUTCOME_KINDS = tuple(str(kind) for kind in OutcomeKind)
TIMEOUT_EXIT = 124          # coreutils `timeout`
NOT_FOUND_EXIT = 127
MAX_STDOUT = 16 << 20       # the agent's facts are tens of kB: more is not an agent talking
MAX_STDERR = 1 << 20        # only the tail of stderr is ever shown


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
        return self.kind == OutcomeKind.OK


def key_problem(path):
    """None when the private key file is usable, "protected" when it needs a passphrase (only an
    ssh-agent holding it can use it), else why not: as OpenSSH reads it (`ssh-keygen -y`)."""
    try:
        done = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", path], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return "ssh-keygen could not check it (%s)" % error
    said = done.stderr.strip().splitlines()
    if done.returncode == 0:
        return None
    if "passphrase" in done.stderr:
        return "protected"
    return said[-1] if said else "ssh-keygen cannot read it"


class Transport:
    """One way of reaching hosts. Subclasses implement `run`; `describe` says how a host is
    reached (the `hosts` task shows it); `close_all` ends what is in flight (Ctrl-C)."""

    name = "?"
    keeps_stdin_open = True     # the agent stops when its stdin ends (the connection closed)
    compact_output = False      # the agent's facts travel compressed

    def __init__(self, session):
        self.session = session

    def run(self, spec, command, timeout, connect_timeout):
        raise NotImplementedError

    def describe(self, spec):
        return self.name

    def close_all(self):
        pass


class Session:
    """What one audit's connections share, created by the fan-out and closed at its end: the
    transports in use (one instance per kind), their caches and their open connections. Nothing
    of this is module-global, so two audits in one process never see each other's state."""

    def __init__(self, accept_new=False, announce=None, parallel=1):
        self.accept_new = accept_new
        self.parallel = parallel                                # hosts at once (SSM's MaxConcurrency)
        self.announce = announce or (lambda message: None)      # trusted-on-first-use keys, said on stderr
        self._transports = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()

    def transport(self, name):
        from . import backend_class         # the registry imports the backends, which import this module
        with self._lock:
            if name not in self._transports:
                self._transports[name] = backend_class(name)(self)
            return self._transports[name]

    def run(self, spec, command, timeout, connect_timeout):
        return self.transport(spec.connection).run(spec, command, timeout, connect_timeout)

    def close_all(self):
        """Ctrl-C: every connection in flight is closed; threads blocked on them fail at once."""
        self.closing.set()
        with self._lock:
            transports = list(self._transports.values())
        for transport in transports:
            transport.close_all()
