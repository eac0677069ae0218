"""What every transport shares: the outcome of one remote command, its failure kinds, the
quoting helper, and the per-audit session that owns what connections share.

A transport runs the one agent command on one host with a timeout and returns a RunOutcome;
it never raises for the host's failure. Models: pytest-testinfra's backends (one `run`,
non-zero exits as data) and Ansible's ConnectionBase.exec_command.
"""
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Tuple, Union

from ..agent.wire import Word
from ..shell import quote  # noqa: F401  (the one quoting, re-exported for the transports)

if TYPE_CHECKING:
    from ..inventory import HostSpec


class OutcomeKind(Word):
    """How a visit ended, in every transport's words; each failure kind maps to one step-0 finding
    code (FAILURE_CODES). A backend with failures of its own declares them beside its class."""
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
    OUTPUT_TOO_LARGE = "output-too-large"   # more facts than the transport can carry


Cause = Tuple[Word, str]      # (an outcome kind, its detail with the fix): what a transport learned of a failure
FAILURE_CODES: Dict[Word, str] = {OutcomeKind.UNREACHABLE: "ssh-unreachable", OutcomeKind.PROTOCOL: "ssh-not-ssh",
                 OutcomeKind.AUTH_FAILED: "ssh-auth-failed", OutcomeKind.KEY_UNUSABLE: "ssh-key-unusable",
                 OutcomeKind.HOST_KEY_UNKNOWN: "ssh-host-key-unknown",
                 OutcomeKind.HOST_KEY_CHANGED: "ssh-host-key-changed",
                 OutcomeKind.HOST_KEY_REVOKED: "ssh-host-key-revoked", OutcomeKind.TIMEOUT: "ssh-timeout",
                 OutcomeKind.PYTHON_MISSING: "agent-python-missing", OutcomeKind.ERROR: "agent-failed",
                 OutcomeKind.NOT_AUDITED: "host-not-audited", OutcomeKind.OUTPUT_TOO_LARGE: "agent-output-too-large"}


class TargetProblem(ValueError):
    """A host's variables do not make a target: `key` is the variable at fault (None: the host
    itself), `message` what is wrong, `fix` what to write instead. The inventory adds file:line."""

    def __init__(self, key: Optional[str], message: str, fix: str) -> None:
        super().__init__(message)
        self.key, self.message, self.fix = key, message, fix


@dataclass(frozen=True)
class Target:
    """Where a transport reaches a host; each backend's target record extends it with its own
    fields and builds itself from the host's variables (`from_variables`)."""
    address: str

    @classmethod
    def from_variables(cls, name: str, variables: Mapping, settings: object,
                       declared: Callable[[str], bool] = lambda key: True) -> "Target":
        raise NotImplementedError

    def location(self) -> str:
        """Where the host is, as the `hosts` table shows it."""
        return self.address

    def login(self) -> Optional[str]:
        """The user the transport logs in as, when it has one."""
        return None

    def key_files(self) -> Tuple[str, ...]:
        """Private key files on the controller this target needs (checked before any connection)."""
        return ()
TIMEOUT_EXIT = 124          # coreutils `timeout`
NOT_FOUND_EXIT = 127
MAX_STDOUT = 16 << 20       # the agent's facts are tens of kB: more is not an agent talking
MAX_STDERR = 1 << 20        # only the tail of stderr is ever shown


@dataclass(frozen=True)
class RunOutcome:
    host: str
    kind: Union[OutcomeKind, Word]          # OutcomeKind, or a backend's own failure kind
    exit_status: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == OutcomeKind.OK


def key_problem(path: str) -> Optional[str]:
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

    def __init__(self, session: "Session") -> None:
        self.session = session

    def run(self, spec: "HostSpec", command: str, timeout: float, connect_timeout: float) -> RunOutcome:
        raise NotImplementedError

    def describe(self, spec: "HostSpec") -> str:
        return self.name

    def close_all(self) -> None:
        pass


class Session:
    """What one audit's connections share, created by the fan-out and closed at its end: the
    transports in use (one instance per kind), their caches and their open connections. Nothing
    of this is module-global, so two audits in one process never see each other's state."""

    def __init__(self, accept_new: bool = False, announce: Optional[Callable[[str], None]] = None,
                 parallel: int = 1) -> None:
        self.accept_new = accept_new
        self.parallel = parallel                                # hosts at once (SSM's MaxConcurrency)
        self.announce = announce or (lambda message: None)      # trusted-on-first-use keys, said on stderr
        self._transports: Dict[str, Transport] = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()

    def transport(self, name: str) -> Transport:
        from . import backend_class         # the registry imports the backends, which import this module
        with self._lock:
            if name not in self._transports:
                self._transports[name] = backend_class(name)(self)
            return self._transports[name]

    def run(self, spec: "HostSpec", command: str, timeout: float, connect_timeout: float) -> RunOutcome:
        return self.transport(spec.connection).run(spec, command, timeout, connect_timeout)

    def close_all(self) -> None:
        """Ctrl-C: every connection in flight is closed; threads blocked on them fail at once."""
        self.closing.set()
        with self._lock:
            transports = list(self._transports.values())
        for transport in transports:
            transport.close_all()
