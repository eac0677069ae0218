"""AWS's own account of each queue against what the hosts said (with `--cross-check`).

Pure, as crosshost is: host results and the queues' accounts in, findings out. AWS counts every
message, per minute; the hosts' logs count what they logged. Reconciled over the minutes both cover
(AWS publishes a minute once it has ended; the controller reads only the window's whole minutes;
a producer's logs that begin later start the comparison later), they say what the logs alone
cannot: sends no audited producer logged, jobs received again and again or never deleted, jobs
that expire unseen, a backlog growing since a given minute, and the job flow of queues whose
producers log nothing (Celery's `.delay()`). A rule whose evidence is missing (no data points, a
producer's logs unread or not audited) stays silent.
"""
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from .codes import Finding, emit
from .crosshost import QueueUsers, SettingsOf, _logs_sends, _place, _role_containers, _usable_probe
from .facts import MarkerKind
from .queue_account import QueueAccount

if TYPE_CHECKING:
    from .audit import HostResult
    from .controller import QueueLocations
    from .crosshost import QueueFlow

EXPIRY_SHARE = 0.8      # the oldest message's age, as a share of the retention, from which jobs are expiring
SEND_SLACK = 2          # a send logged at :59.9 and counted at :00.0, at each end of the compared minutes
ENOUGH = 3              # fewer messages than this in the compared minutes: too few to judge
REPEATED = 1.5          # received this many times per message sent, or more: jobs run again and again (a message
                        # received twice may straddle a minute the comparison leaves out)
CLIMBING_MINUTES = 3    # the oldest message's age rising this many minutes in a row: a growing backlog
OUTSIDE = "outside the inventory"


@dataclass(frozen=True)
class Ledger:
    """One queue's account: every minute AWS published in the window, and of those the minutes the
    producers' logs cover too (what AWS alone says is judged over the first, sends against the
    logs over the second)."""
    key: str
    account: QueueAccount
    published: Tuple[str, ...]
    minutes: Tuple[str, ...]
    changed: Optional[str] = None       # the minute the flow changed (flow_change)

    def total(self, metric: str, minutes: Sequence[str]) -> int:
        points = dict(self.account.series.get(metric, ()))
        return int(sum(points.get(minute, 0) for minute in minutes))


def shown(minutes: Sequence[str]) -> str:
    first, last = minutes[0][11:16], minutes[-1][11:16]
    return "in the minute %s" % first if first == last else "from %s to %s" % (first, last)


def queue_account_findings(hosts: Sequence["HostResult"], check: "QueueLocations", settings_of: SettingsOf,
                           users: QueueUsers, ledgers: Mapping[str, Ledger], faulty: Collection[str] = ()
                           ) -> List[Finding]:
    """`ledgers`: ledgers_of(...); `faulty`: the hosts with an error finding already (a growing
    backlog is theirs to explain)."""
    findings = _unread(check.accounts)
    findings += _survival(hosts, check, settings_of, faulty)
    for ledger in ledgers.values():
        findings += _reconciled(ledger, users, settings_of)
    return findings


def ledgers_of(users: QueueUsers, accounts: Sequence[QueueAccount], settings_of: SettingsOf) -> Dict[str, Ledger]:
    """queue key -> its ledger, for every queue whose account AWS gave (decided once per audit)."""
    found = {key: ledger_of(key, users, accounts, settings_of) for key in users.keys}
    return {key: ledger for key, ledger in found.items() if ledger is not None}


def ledger_of(key: str, users: QueueUsers, accounts: Sequence[QueueAccount],
              settings_of: SettingsOf) -> Optional[Ledger]:
    """The account of the queue `key` where its producers send (else where its consumers poll), over
    the minutes the logs cover too; None when AWS's account of it could not be read."""
    place = next((p for p in (_account_place(h, key) for h in users.of("produces", key) + users.of("consumes", key))
                  if p), None)
    account = next((a for a in accounts if place and (a.name, a.region, a.account) == place and not a.unjudged), None)
    if account is None:
        return None
    published = sorted(dict(account.series.get("NumberOfMessagesSent", ())))
    began = max((c.logs.oldest[:16] for h in users.of("produces", key)       # the logged sends are compared
                 for c in _role_containers(h, settings_of, "produces")
                 if c.logs.read and c.logs.oldest and _logs_sends(settings_of(h), c.role, key)), default="")
    return Ledger(key, account, tuple(published), tuple(m for m in published if m.rstrip("Z") > began),
                  flow_change(account))


def _account_place(host, key):
    probe = _usable_probe(host)
    queue = probe.queue(key) if probe else None
    return (queue.name, queue.region, probe.account) if queue is not None and queue.ok else None


def logged_sends(producers, settings_of: SettingsOf, key: str, minutes: Sequence[str]) -> Optional[Dict[str, int]]:
    """producer -> the sends to `key` it logged in `minutes`; None when one of them cannot say (its
    logs unread, or a role that logs nothing when it sends)."""
    counted = {}
    wanted = {minute.rstrip("Z") for minute in minutes}
    for host in producers:
        for container in _role_containers(host, settings_of, "produces"):
            if not container.logs.read or not _logs_sends(settings_of(host), container.role, key):
                return None
            counted[host.report.name] = counted.get(host.report.name, 0) + sum(
                n for marker in container.logs.markers if marker.kind == MarkerKind.ENQUEUED and
                marker.queue in (None, key) for minute, n in marker.minutes.items() if minute in wanted)
    return counted


def _reconciled(ledger: Ledger, users: QueueUsers, settings_of: SettingsOf) -> List[Finding]:
    if not ledger.published:
        return []
    key, name, place = ledger.key, ledger.account.name, _place(ledger.account.region, ledger.account.account)
    producers, consumers = users.of("produces", key), users.of("consumes", key)
    consumer_names = sorted(h.report.name for h in consumers) or ["controller"]
    sent, received, deleted = (ledger.total(m, ledger.published) for m in (
        "NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted"))
    evidence = {"queue": key, "name": name, "minutes": list(ledger.published), "sent": sent, "received": received,
                "deleted": deleted}
    since = "; by AWS's account, no job taken since %s" % ledger.changed[11:16] if ledger.changed else ""
    evidence["since"] = ledger.changed
    findings = []
    sends = logged_sends(producers, settings_of, key, ledger.minutes)
    counted = ledger.total("NumberOfMessagesSent", ledger.minutes)     # over the minutes the logs cover
    if sends is not None and ledger.minutes and producers and not users.left_out_producers.get(key) and \
            counted - sum(sends.values()) > SEND_SLACK + 0.1 * sum(sends.values()):
        findings.append(emit(
            "sent-outside-inventory", [OUTSIDE], "queue %s (%s): AWS counted %d message(s) sent %s; the audited "
            "producers logged %d (%s): %d came from a producer outside the inventory, or one whose sends are not "
            "logged" % (name, place, counted, shown(ledger.minutes),
                        sum(sends.values()), ", ".join("%s %d" % item for item in sorted(sends.items())),
                        counted - sum(sends.values())),
            dict(evidence, minutes=list(ledger.minutes), sent=counted, logged=sends), name=name))
    elif sends is None and sent >= ENOUGH and received == 0 and producers and \
            any(not _logs_sends(settings_of(h), c.role, key) for h in producers
                for c in _role_containers(h, settings_of, "produces")):
        findings.append(emit(            # the producers log nothing: AWS's count is the only witness
            "sent-not-received", consumer_names, "queue %s (%s): AWS counted %d message(s) sent and none received "
            "%s: no consumer takes them from where the producers (%s) send%s" % (
                name, place, sent, shown(ledger.published),
                ", ".join(sorted(h.report.name for h in producers)), since),
            evidence, name=name, hosts=", ".join(consumer_names)))
    if received >= ENOUGH and deleted == 0:
        findings.append(emit(
            "received-not-deleted", consumer_names, "queue %s: AWS counted %d receive(s) and no delete %s: "
            "the workers take jobs and never delete them (each comes back after the visibility timeout)%s" % (
                name, received, shown(ledger.published), since), evidence, name=name,
            hosts=", ".join(consumer_names)))
    elif sent and received >= REPEATED * sent and received - sent >= ENOUGH:
        cause, why = _why_repeated(ledger, consumers, settings_of)
        findings.append(emit(
            "jobs-received-repeatedly", consumer_names, "queue %s: AWS counted %d receive(s) of %d message(s) sent "
            "%s (%.1f per message): %s" % (name, received, sent, shown(ledger.published), received / sent, why),
            dict(evidence, cause=cause), cause=cause, name=name, hosts=", ".join(consumer_names),
            timeout=ledger.account.attributes.get("VisibilityTimeout", "?")))
    return findings


def _why_repeated(ledger: Ledger, consumers, settings_of) -> Tuple[str, str]:
    """(cause, what the other evidence says) for messages received many times over."""
    containers = [c for h in consumers for c in _role_containers(h, settings_of, "consumes")]
    timeout = _seconds(ledger.account.attributes.get("VisibilityTimeout"))
    longest = max((c.logs.longest_processing for c in containers if c.logs.read and c.logs.longest_processing),
                  default=None)
    if any(c.logs.read and c.logs.count(MarkerKind.DELETE_FAILED) for c in containers):
        return "delete-failed", "the workers logged failed deletes"
    if timeout is not None and longest is not None and longest > timeout:
        return "visibility-timeout", "jobs took up to %.0f s, longer than the queue's VisibilityTimeout of %d s, so " \
            "each came back to another receive while it still ran" % (longest, timeout)
    if any(c.restarting or c.exited_in_window for c in containers):
        return "crashing-workers", "workers exited while holding jobs, which came back after the visibility timeout"
    return "unknown", "no other evidence names why (no failed delete, no job longer than the %s s visibility " \
        "timeout, no worker exit)" % (timeout if timeout is not None else "?")


def _unread(accounts: Sequence[QueueAccount]) -> List[Finding]:
    """One finding per reason AWS's account could not be read (denied, failed); a queue with no data
    points yet (a new queue, a metric not published) only says so in the report."""
    reasons: Dict[str, List[str]] = {}
    for account in accounts:
        if account.unjudged and not account.unjudged.startswith("no data points"):
            reasons.setdefault("%s in %s: %s" % (account.profile or "default", account.region, account.unjudged),
                               []).append(account.name)
    return [emit("queue-account-unread", ["controller"], "AWS's account of %s could not be read (profile %s): job flow "
                 "is judged from the hosts' logs alone" % (", ".join(sorted(names)), reason),
                 {"queues": sorted(names), "reason": reason}, reason=reason)
            for reason, names in sorted(reasons.items())]


def _survival(hosts: Sequence["HostResult"], check: "QueueLocations", settings_of: SettingsOf,
              faulty: Collection[str]) -> List[Finding]:
    """Jobs that will be lost or ignored: the oldest message near its retention (since the minute its
    age began to climb), a backlog growing minute by minute, and a dead-letter queue that keeps
    messages no longer than its source."""
    findings = []
    accounts = {(a.name, a.region, a.account): a for a in check.accounts}
    urls = {(s.name, s.region, s.account): s.url for s in check.sightings}
    for account in check.accounts:
        where = (account.name, account.region, account.account)
        readings = [(h, q) for h in hosts for probe in [_usable_probe(h)] if probe for q in probe.queues
                    if q.name == account.name]
        users = sorted({h.report.name for h, q in readings if q.region == account.region})
        # who should take its jobs, wherever they look for it (a worker polling another region included)
        consumers = sorted({h.report.name for h, q in readings for role in h.report.roles
                            if q.key in settings_of(h).queue_keys(role, "consumes", [q.key])})
        retention = _seconds(account.attributes.get("MessageRetentionPeriod"))
        oldest = account.largest("ApproximateAgeOfOldestMessage")
        ages = account.series.get("ApproximateAgeOfOldestMessage", ())
        since = _climbing_since(ages)
        if retention and oldest is not None and oldest >= EXPIRY_SHARE * retention:
            findings.append(emit(
                "jobs-expiring", consumers or ["controller"],
                "queue %s (%s): its oldest message is %d s old, %d%% of its %d s retention: SQS deletes a message "
                "older than that unseen%s" % (account.name, _place(account.region, account.account), oldest,
                                              100 * oldest / retention, retention,
                                              "; its age has climbed since %s" % since if since else ""),
                {"name": account.name, "region": account.region, "oldest_seconds": oldest,
                 "retention_seconds": retention, "since": since},
                name=account.name, url=urls.get(where, account.name), hosts=", ".join(consumers) or "its consumers"))
        elif since and [m for m, _ in ages].index(since) <= len(ages) - 1 - CLIMBING_MINUTES and \
                not set(consumers) & set(faulty):
            findings.append(emit(
                "backlog-growing", consumers or ["controller"],
                "queue %s (%s): the oldest message's age has risen every minute since %s, to %d s: jobs wait longer "
                "and longer, and no consumer's evidence says why" % (
                    account.name, _place(account.region, account.account), since, ages[-1][1]),
                {"name": account.name, "region": account.region, "since": since, "oldest_seconds": ages[-1][1]},
                name=account.name, hosts=", ".join(consumers) or "its consumers"))
        dead = accounts.get((account.dead_letter, account.region, account.account)) if account.dead_letter else None
        if dead is None:
            continue
        dead_retention = _seconds(dead.attributes.get("MessageRetentionPeriod"))
        if retention and dead_retention and dead_retention <= retention:
            findings.append(emit(
                "dead-letter-retention-short", users or ["controller"],
                "queue %s's dead-letter queue %s keeps messages %d s, no longer than %s itself (%d s)" % (
                    account.name, dead.name, dead_retention, account.name, retention),
                {"name": account.name, "dead_letter": dead.name, "retention_seconds": retention,
                 "dead_letter_retention_seconds": dead_retention},
                name=account.name, dead_letter=dead.name,
                dead_letter_url=urls.get((dead.name, dead.region, dead.account), dead.name)))
    return findings


def judged_keys(ledgers: Mapping[str, Ledger]) -> frozenset:
    """The queues whose job flow AWS's account judges where the hosts' logs cannot."""
    return frozenset(key for key, ledger in ledgers.items() if ledger.published)


def _seconds(text: Optional[str]) -> Optional[int]:
    return int(text) if text is not None and str(text).isdigit() else None


def _climbing_since(points: Sequence[Tuple[str, float]]) -> Optional[str]:
    """The minute from which the age only grew (a backlog nobody takes), if it grew at all."""
    start = None
    for (earlier, before), (_, value) in zip(points, points[1:]):
        if value > before:
            start = start or earlier
        elif value < before:
            start = None
    return start


def flow_change(account: QueueAccount) -> Optional[str]:
    """The minute the queue's flow changed: the first of the trailing minutes in which messages
    were sent and none received or deleted, or the age began to climb."""
    sent = dict(account.series.get("NumberOfMessagesSent", ()))
    deleted = dict(account.series.get("NumberOfMessagesDeleted", ()))
    taken = {m: v + deleted.get(m, 0) for m, v in account.series.get("NumberOfMessagesReceived", ())}
    stalled = None
    for minute in sorted(sent):
        if sent[minute] and not taken.get(minute):
            stalled = stalled or minute
        elif taken.get(minute):
            stalled = None
    candidates = [m for m in (stalled, _climbing_since(account.series.get("ApproximateAgeOfOldestMessage", ()))) if m]
    return min(candidates) if candidates else None


CHARTED = (("AWS sent", "NumberOfMessagesSent"), ("AWS received", "NumberOfMessagesReceived"),
           ("AWS deleted", "NumberOfMessagesDeleted"))


def with_aws_counts(flows: Sequence["QueueFlow"], ledgers: Mapping[str, Ledger]) -> Tuple["QueueFlow", ...]:
    """The job-flow chart's queues with AWS's per-minute counts beside the hosts' own, and the
    minute each queue's flow changed."""
    charted = []
    for flow in flows:
        ledger = ledgers.get(flow.key)
        if ledger is None:
            charted.append(flow)
            continue
        aws = {label: {minute.rstrip("Z"): value for minute, value in ledger.account.series.get(metric, ())}
               for label, metric in CHARTED}
        charted.append(replace(flow, aws=aws, changed=ledger.changed.rstrip("Z") if ledger.changed else None))
    return tuple(charted)
