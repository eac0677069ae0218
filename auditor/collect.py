"""Fan-out: one agent run per host over SSH, bounded in parallel, with progress.

This is the only stage that touches the network. It turns host specs into
HostRun records (the transport outcome plus the host's typed reading, or the
agent's parsed JSON when asked).
"""
import dataclasses
import json
import logging
import posixpath
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import USER_AGENT, agent, fingerprints
from .agent.wire import SCHEMA, STEP_TIMEOUT, AgentConfig, AppConfig, KeyPairConfig, LogSourceConfig, \
    MarkerConfig, ProbeConfig, QueueConfig, RegionConfig, WorkloadConfig
from .settings import EVERY_QUEUE
from .transports import OutcomeKind, RunOutcome, Session, capabilities, causes, quote
from .errors import Terminated
from .inventory import HostSpec

log = logging.getLogger("auditor.collect")

PROBE_TIMEOUT = 30
INTERRUPT_GRACE = 1.5       # seconds a Ctrl-C waits for results already on their way


@dataclass(frozen=True)
class HostRun:
    """One host's visit. `facts` is the agent's parsed JSON, kept only when asked (--raw, the
    golden recorder); an audit keeps `report`, its typed reading (facts.HostReport), a quarter
    of the size: at 1,000 hosts the parsed JSON was most of the controller's memory."""
    spec: HostSpec
    outcome: RunOutcome
    facts: Optional[dict] = None
    report: Optional[object] = None


Compactor = Callable[[HostRun], HostRun]    # makes a run's compact record as it finishes (facts.compact)
FINGERPRINT_DOMAIN = "fleet-audit/fp/2"     # the hosts' fingerprints are of this and the value; keyed on the controller


def agent_config(spec: HostSpec) -> AgentConfig:
    """What the host agent needs to know, derived once from the host's settings (the agent reads
    the same record back, and refuses what it cannot read)."""
    s = spec.settings
    keeps_stdin_open, compact_output = capabilities(spec.connection)
    app = spec.app
    public = set(s.public_env) | set(s.region.env) | ({s.settings_module_env} if s.settings_module_env else set())
    public |= {q.env for q in s.queues.values() if q.env}
    # probe the queues this host's roles use (all of them when it has no role, or a role uses every
    # queue the app defines: a Celery app's own queues are read by the probe itself)
    used = {q for role in spec.roles for q in s.queue_keys(role, "produces") + s.queue_keys(role, "consumes")}
    probe = ProbeConfig(
        fingerprint_domain=FINGERPRINT_DOMAIN, user_agent=USER_AGENT, aws_timeout=float(s.timeouts.aws),
        region=RegionConfig(tuple(s.region.env), s.region.default),
        credentials=tuple(KeyPairConfig(p.key_id, p.secret) for p in s.credentials.prefer),
        queues={key: QueueConfig(q.name, q.env) for key, q in s.queues.items()
                if not used or EVERY_QUEUE in used or key in used},
        settings_module_env=s.settings_module_env, celery_app=s.celery_app)
    return AgentConfig(
        probe=probe, public_env=tuple(sorted(public)), key_id_env=tuple(s.key_id_env),
        log_window_seconds=s.log_window_seconds, log_max_bytes=s.log_max_bytes,
        workloads=tuple(WorkloadConfig(w.name, w.role, LogSourceConfig(**dataclasses.asdict(w.source)),
                                       tuple(MarkerConfig(**dataclasses.asdict(m)) for m in w.markers))
                        for w in app.workloads),
        run_check_script=s.run_check_script, step_timeout=float(STEP_TIMEOUT), probe_timeout=float(PROBE_TIMEOUT),
        imds_endpoint=s.imds_endpoint,
        # the agent ends its own steps before the remote `timeout` does, and stops when the
        # connection closes (Ctrl-C)
        budget=float(max(1, s.timeouts.command - 5)), watch_stdin=keeps_stdin_open, compress_output=compact_output,
        app=AppConfig(env_from=app.env_from, container=app.container, app_python=s.app_python,
                      host_python=spec.python, app_dir=s.app_dir, check_script=s.check_script, workdir=s.app_workdir,
                      dotenv_path=posixpath.join(s.app_dir, s.dotenv), dotenv_format=s.dotenv_format))


def run_agent(spec: HostSpec, key: bytes, session: Session, compact: Optional[Compactor] = None) -> HostRun:
    """One host's visit over its transport (`session` holds the audit's connections); `key` is
    the operator's fingerprint key (fingerprints.operator_key)."""
    timeouts = spec.settings.timeouts
    config = agent_config(spec)
    command = agent.command_line(spec.python, config, timeouts.command, quote)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s", spec.name, agent.command_display(spec.python, config, timeouts.command))
    sent = time.time()
    waited = timeouts.command + 10          # the host's own `timeout` ends the agent first, with 5 s of grace
    outcome = session.run(spec, command, timeout=waited, connect_timeout=timeouts.connect)
    received = time.time()
    if outcome.detail == causes.ran_past(waited):
        outcome = dataclasses.replace(outcome, detail=causes.ran_past(timeouts.command))    # the operator's number
    outcome = dataclasses.replace(outcome, stdout=fingerprints.rekey(outcome.stdout, key),
                                  stderr=fingerprints.rekey(outcome.stderr, key))
    if not outcome.ok:
        return HostRun(spec, outcome)
    try:
        facts = json.loads(outcome.stdout.strip().splitlines()[-1])
        if facts.get("schema") != SCHEMA:
            raise ValueError("schema %r" % facts.get("schema"))
    except (ValueError, IndexError) as error:
        detail = "agent printed no facts (%s); exit %s; stderr: %s" % (
            error, outcome.exit_status, outcome.stderr.strip()[-300:])
        return HostRun(spec, RunOutcome(spec.name, OutcomeKind.ERROR, outcome.exit_status, detail=detail,
                                                  seconds=outcome.seconds))
    facts["controller_clock"] = [round(sent, 3), round(received, 3)]     # the host's clock was read between
    log.debug("%s: agent steps %s", spec.name, ", ".join("%s %.2fs" % item for item in
                                                        sorted((facts.get("timings") or {}).items())))
    run = HostRun(spec, dataclasses.replace(outcome, stdout="", stderr=""), facts)   # the text is parsed now
    try:
        return compact(run) if compact else run
    except Exception as error:  # facts this controller cannot read: that host's error, not a stuck fan-out
        log.debug("%s: facts not readable", spec.name, exc_info=True)
        return HostRun(spec, RunOutcome(spec.name, OutcomeKind.ERROR, outcome.exit_status, seconds=outcome.seconds,
                                                  detail="the agent's facts could not be read (%s: %s); run "
                                                  "check-host %s --raw and report it" % (
                                                      type(error).__name__, error, spec.name)))


def visit(spec: HostSpec, key: bytes, session: Session, compact: Optional[Compactor] = None) -> HostRun:
    """run_agent that cannot raise: a worker thread that died would leave collect() waiting for
    its host forever. Whatever fails, at any stage, becomes that host's error row."""
    started = time.monotonic()
    try:
        return run_agent(spec, key, session, compact)
    except Exception as error:  # the auditor's own failure on this host: data, and the other hosts go on
        log.debug("%s: the visit failed", spec.name, exc_info=True)
        return HostRun(spec, RunOutcome(
            spec.name, OutcomeKind.ERROR, seconds=time.monotonic() - started,
            detail="the auditor failed while visiting this host (%s: %s); run `check-host %s --debug` and report "
                   "it" % (type(error).__name__, str(error)[:200], spec.name)))


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during the fan-out; `runs` has every host, those not finished as not
    audited; `signal` says which ("SIGINT" or "SIGTERM")."""

    def __init__(self, runs, signal="SIGINT"):
        super().__init__("interrupted")
        self.runs, self.signal = runs, signal


def collect(specs: Sequence[HostSpec], key: bytes, parallel: int, accept_new: bool = False,
            progress: Optional[Callable[..., None]] = None, compact: Optional[Compactor] = None,
            announce: Optional[Callable[[str], None]] = None) -> List[HostRun]:
    """Run the agent on every host, at most `parallel` at once; results in inventory order.
    `compact(run)`, applied on the worker thread as each host finishes, makes its compact record.

    Workers are daemon threads fed from a queue, so a Ctrl-C returns at once: no host is
    launched after it, open connections are closed (their remote agents stop when their
    stdin closes), and the finished hosts' results are kept."""
    session = Session(accept_new, announce, parallel)
    pending: "queue.Queue[HostSpec]" = queue.Queue()
    for spec in specs:
        pending.put(spec)
    finished: "queue.Queue[Tuple[HostSpec, HostRun]]" = queue.Queue()
    stopping = threading.Event()
    running = {}                # host name -> when its run started, for "slowest running"

    def worker():
        while not stopping.is_set():
            try:
                spec = pending.get_nowait()
            except queue.Empty:
                return
            running[spec.name] = time.monotonic()
            finished.put((spec, visit(spec, key, session, compact)))
            running.pop(spec.name, None)

    for _ in range(max(1, min(parallel, len(specs) or 1))):
        threading.Thread(target=worker, daemon=True, name="fleet-audit-worker").start()
    results: Dict[str, HostRun] = {}
    failed = 0
    try:
        while len(results) < len(specs):
            spec, run = finished.get()
            results[spec.name] = run
            failed += not run.outcome.ok
            if progress:
                oldest = min(running.copy().items(), key=lambda item: item[1], default=None)
                progress(len(results), len(specs), spec.name, failed,
                         (oldest[0], time.monotonic() - oldest[1]) if oldest else None)
    except KeyboardInterrupt as stop:
        signal = "SIGTERM" if isinstance(stop, Terminated) else "SIGINT"
        stopping.set()
        session.close_all()
        deadline = time.monotonic() + INTERRUPT_GRACE
        while time.monotonic() < deadline and len(results) < len(specs):
            try:
                spec, run = finished.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if run.outcome.ok:          # finished before the Ctrl-C landed: keep it
                results[spec.name] = run
        because = "Ctrl-C" if signal == "SIGINT" else signal
        raise Interrupted([results.get(spec.name) or HostRun(spec, RunOutcome(
            spec.name, OutcomeKind.NOT_AUDITED, detail="interrupted (%s) before this host finished" % because))
            for spec in specs], signal)
    return [results[spec.name] for spec in specs]
