"""`fleet-audit watch`: the audit on a schedule, its result where operators already look.

Each round is one whole audit (the inventory read again, so an edit applies at the next round),
recorded in the history like any audit, and published to Prometheus through its own client
library: an HTTP `/metrics` endpoint (127.0.0.1 by default) and/or a node-exporter textfile
(written to a temporary file and renamed: a scrape never reads half of one). Rounds never
overlap (the next starts `every` after the previous one started, or at once when it overran),
start at a random offset within `jitter` (many watchers do not hit the fleet together), and a
round that fails is counted and said, never the end of the loop. Labels are bounded: host,
verdict, finding code and severity, queue key; never job ids or free text.
"""
import random
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server, write_to_textfile

from .codes import Verdict
from .errors import AuditorError, UsageError

if TYPE_CHECKING:
    from .audit import AuditResult

QUEUE_ATTRIBUTES = {"ApproximateNumberOfMessages": "visible", "ApproximateNumberOfMessagesNotVisible": "in_flight"}


class Metrics:
    """The watched fleet, as Prometheus reads it; one registry per watch."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.verdict = Gauge("fleet_audit_host_verdict", "1 for the host's verdict in the last round, 0 for the others",
                             ["host", "verdict"], registry=r)
        self.reachable = Gauge("fleet_audit_host_reachable", "1 when the last round reached the host", ["host"],
                               registry=r)
        self.findings = Gauge("fleet_audit_findings", "findings of the last round by code and severity",
                              ["code", "severity"], registry=r)
        self.queue_messages = Gauge("fleet_audit_queue_messages", "messages in each queue as the hosts read them "
                                    "(the largest reading): visible (waiting) or in flight", ["queue", "state"],
                                    registry=r)
        self.duration = Gauge("fleet_audit_round_duration_seconds", "how long the last round took", registry=r)
        self.last_success = Gauge("fleet_audit_last_success_timestamp_seconds",
                                  "when the last round that audited the fleet ended (Unix time)", registry=r)
        self.rounds = Counter("fleet_audit_rounds", "rounds run", registry=r)
        self.failures = Counter("fleet_audit_round_failures", "rounds that could not audit the fleet", registry=r)

    def audited(self, result: "AuditResult", seconds: float) -> None:
        self.rounds.inc()
        self.duration.set(seconds)
        self.last_success.set(time.time())
        for gauge in (self.verdict, self.reachable, self.findings, self.queue_messages):
            gauge.clear()       # a host or code gone from the fleet leaves no stale series
        for host in result.hosts:
            for verdict in Verdict:
                self.verdict.labels(host.report.name, str(verdict)).set(int(host.verdict == verdict))
            self.reachable.labels(host.report.name).set(int(host.report.reachable))
        counts: dict = {}
        for finding in result.findings:
            key = (finding.code, str(finding.severity))
            counts[key] = counts.get(key, 0) + 1
        for (code, severity), count in counts.items():
            self.findings.labels(code, severity).set(count)
        largest: dict = {}
        for host in result.hosts:
            for queue in host.report.probe.queues if host.report.probe else ():
                for attribute, state in QUEUE_ATTRIBUTES.items():
                    value = queue.attributes.get(attribute)
                    if isinstance(value, (int, str)) and str(value).isdigit():
                        largest[(queue.key, state)] = max(largest.get((queue.key, state), 0), int(value))
        for (key, state), value in largest.items():
            self.queue_messages.labels(key, state).set(value)

    def failed(self) -> None:
        self.rounds.inc()
        self.failures.inc()


@dataclass(frozen=True)
class Schedule:
    every: float        # seconds from one round's start to the next's
    jitter: float       # the largest random delay before a round
    once: bool = False


def listen_address(text: str) -> Tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` -> (host, port); 127.0.0.1 unless told."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError("--listen %r: give PORT or ADDRESS:PORT (e.g. 127.0.0.1:9464)" % text)
    return host, int(port)


def watch(run_round: Callable[[], "AuditResult"], schedule: Schedule, metrics: Metrics,
          textfile: Optional[str] = None, stop: Optional[threading.Event] = None,
          say: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> int:
    """Run rounds until `stop` is set (or once); the number of rounds run."""
    stop = stop or threading.Event()
    rounds = 0
    while not stop.is_set():
        if schedule.jitter and not schedule.once and stop.wait(random.uniform(0, schedule.jitter)):
            break
        started = time.monotonic()
        try:
            result = run_round()
        except AuditorError as error:   # an inventory made wrong since the last round: said, counted, tried again
            metrics.failed()
            say("watch: round %d failed: %s" % (rounds + 1, str(error).splitlines()[0]))
        except Exception as error:  # the auditor's own bug in one round must not end the watch
            metrics.failed()
            say("watch: round %d failed: unexpected %s: %s" % (rounds + 1, type(error).__name__, str(error)[:300]))
        else:
            if result.interrupted:      # hosts left unaudited: nothing whole to publish
                break
            metrics.audited(result, time.monotonic() - started)
            say("watch: round %d: %s" % (rounds + 1, ", ".join(
                "%d %s" % (sum(h.verdict == v for h in result.hosts), v) for v in Verdict
                if any(h.verdict == v for h in result.hosts))))
            if result.interrupted_by:   # the signal came after the last host: a whole round, and the last
                stop.set()
        rounds += 1
        if textfile:
            write_to_textfile(textfile, metrics.registry)
        if schedule.once:
            break
        stop.wait(max(0.0, schedule.every - (time.monotonic() - started)))
    return rounds


def serve(metrics: Metrics, address: Tuple[str, int]):
    """The /metrics endpoint, on its own thread; the server, to shut it down."""
    try:
        server, _ = start_http_server(address[1], address[0], registry=metrics.registry)
    except OSError as error:
        raise UsageError("--listen %s:%d: %s\n  fix: choose a free port (--listen 127.0.0.1:PORT)" % (
            address[0], address[1], error.strerror or error))
    return server
