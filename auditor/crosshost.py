"""Cross-host comparison: the attribute matrix and the fleet-wide findings.

Pure: host results in, matrix and findings out. A matrix cell deviates when it
differs from the baseline (if one is given for that attribute) or from the
strict majority of the hosts it is compared with: the whole fleet for regions,
accounts, queue URLs and endpoints; hosts of the same role for keys, secrets,
settings modules and images, which legitimately differ between roles. With no
strict majority, the producers break the tie where they agree:
jobs go where they are enqueued.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, \
    TypeVar

from .codes import Finding, emit
from .settings import Settings
from .diagnosis import app_variables, classify_aws_error, stuck_jobs
from .facts import MarkerKind

if TYPE_CHECKING:
    from .audit import HostResult     # audit imports this module
    from .controller import QueueLocations
    from .inventory import Bystander

V = TypeVar("V")
SettingsOf = Callable[["HostResult"], Settings]      # a host's settings, from its name's spec

IN_FLIGHT_GRACE = 3     # the newest job ids per queue may simply not be received yet
NOT_USED = "-"          # a matrix cell for a queue this host does not use (None is unknown)


@dataclass(frozen=True)
class Row:
    attribute: str
    scope: str                       # "fleet" or "role"
    cells: Dict[str, Optional[str]]  # host -> value (None: unknown)
    deviating: Tuple[str, ...] = ()
    expected: Dict[str, Optional[str]] = field(default_factory=dict)   # host -> the value it should have


def _usable_probe(host):
    """The host's probe when it has values (it ran, or read the .env statically), else None."""
    probe = host.report.probe
    return probe if probe is not None and probe.has_values else None


def _role_of(host):
    return ",".join(host.report.roles) or "-"


def attribute_values(host: "HostResult", queue_keys: Sequence[str]) -> Dict[str, str]:
    """The comparable attributes of one host, as display strings (masked already)."""
    probe = _usable_probe(host)
    values = {}
    if probe is not None:
        for who, label in (("app", "app region"), ("boto3", "boto3 region"), ("cli", "aws-cli region")):
            values[label] = probe.region(who) or "unset"
        values["account"] = probe.account
        values["access key id"] = probe.credentials.key_id
        values["secret fingerprint"] = probe.credentials.secret_fp
        values["credential source"] = probe.credentials.source
        values["endpoint overrides"] = ", ".join("%s=%s" % i for i in sorted(probe.endpoints.items())) or "none"
        values["sqs proxy"] = None if probe.static else probe.proxy.proxy or "none" if probe.proxy else "none"
        values["settings module"] = probe.settings_module
        values["botocore"] = probe.botocore
        readings = {q.key: q for q in probe.queues}
        for key in queue_keys:
            values["queue %s name" % key] = readings[key].name if key in readings else NOT_USED
            values["queue %s url" % key] = readings[key].url if key in readings else NOT_USED
            values["queue %s redrive" % key] = readings[key].redrive if key in readings else NOT_USED
            values["queue %s encryption" % key] = readings[key].encryption if key in readings else NOT_USED
    images = [c.image for c in host.report.containers if c.present and c.image]
    values["image"] = ", ".join(images) if images else None
    return values


FLEET_SCOPE = ("app region", "boto3 region", "aws-cli region", "account", "endpoint overrides", "sqs proxy",
               "botocore")
ATTRIBUTES = FLEET_SCOPE + ("access key id", "secret fingerprint", "credential source", "settings module", "image")
QUEUE_ATTRIBUTE = re.compile(r"^queue \S+ (name|url|redrive|encryption)$")


def is_attribute(name: str) -> bool:
    """Whether `name` can be a matrix row (for checking a baseline's keys)."""
    return name in ATTRIBUTES or bool(QUEUE_ATTRIBUTE.match(name))


def build_matrix(hosts: Sequence["HostResult"], baseline: Optional[dict] = None,
                 producers: Collection[str] = ()) -> List[Row]:
    """Rows of attributes by hosts; `producers`: names of the hosts that enqueue."""
    baseline = baseline or {}
    queue_keys = sorted({q.key for h in hosts for probe in [_usable_probe(h)] if probe for q in probe.queues})
    per_host = {h.report.name: attribute_values(h, queue_keys) for h in hosts}
    attributes = []
    for values in per_host.values():
        attributes += [a for a in values if a not in attributes]
    rows = []
    for attribute in attributes:
        scope = "fleet" if attribute in FLEET_SCOPE or attribute.startswith("queue ") else "role"
        cells = {name: per_host[name].get(attribute) for name in per_host}
        if all(value is None for value in cells.values()):
            continue                                 # nobody could read it: nothing to compare
        groups: Dict[str, List[str]] = {}
        for host in hosts:
            key = "fleet" if scope == "fleet" else _role_of(host)
            groups.setdefault(key, []).append(host.report.name)
        deviating, expected = [], {}
        for group, members in groups.items():
            wanted = baseline.get(attribute)
            if isinstance(wanted, dict):            # per-role baseline values
                wanted = wanted.get(group)
            if wanted is None:
                known = {m: cells[m] for m in members if cells[m] not in (None, NOT_USED)}
                wanted, _ = shared_value(known, producers=producers)
                if wanted is None:
                    continue
            for member in members:
                if cells[member] not in (None, NOT_USED) and cells[member] != wanted:
                    deviating.append(member)
                    expected[member] = wanted
        rows.append(Row(attribute, scope, cells, tuple(deviating), expected))
    return rows


def shared_value(values: Mapping[str, V], proven: Iterable[str] = (), evidence: Iterable[str] = (),
                 producers: Iterable[str] = ()) -> Tuple[Optional[V], Tuple[str, ...]]:
    """(the value these hosts should share, the hosts that differ from it, sorted), or (None, ())
    when nothing decides it. `values`: host name -> value. The one rule for every "odd one out":
    1. what AWS proved (`proven`: hosts whose value AWS accepted, such as a secret) decides;
    2. else the strict majority;
    3. a tie goes to the tied value of the hosts with evidence (`evidence`: they found the queue),
    4. then to the producers' (`producers`: jobs go where they are enqueued);
    a tie left after that is undecided: no host is blamed."""
    if not values:
        return None, ()
    candidates = Counter(values[name] for name in proven if name in values) or Counter(values.values())
    counts = candidates.most_common()
    tied = [value for value, count in counts if count == counts[0][1]]
    for preferred in (evidence, producers):
        if len(tied) > 1:
            chosen = {values[name] for name in preferred if name in values}
            tied = [value for value in tied if value in chosen] or tied
    if len(tied) > 1:
        return None, ()
    return tied[0], tuple(sorted(name for name, value in values.items() if value != tied[0]))


# -- fleet-wide findings ---------------------------------------------------------------

@dataclass(frozen=True)
class QueueUsers:
    """Who uses each queue key, decided once per audit for its rules, matrix and job-flow chart:
    kind ('produces' or 'consumes') -> queue key -> the hosts; and the inventory's hosts left out
    of this audit that consume or produce it (queue key -> their names)."""
    by_kind: Dict[str, Dict[str, List["HostResult"]]]
    left_out_consumers: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    left_out_producers: Dict[str, Tuple[str, ...]] = field(default_factory=dict)

    def of(self, kind: str, key: str) -> List["HostResult"]:
        return self.by_kind[kind].get(key, [])

    @property
    def keys(self) -> List[str]:
        return sorted(set(self.by_kind["produces"]) | set(self.by_kind["consumes"]))

    @property
    def producer_names(self) -> Set[str]:
        return {host.report.name for hosts in self.by_kind["produces"].values() for host in hosts}


def queue_users(hosts: Sequence["HostResult"], settings_of: SettingsOf,
                left_out: Sequence["Bystander"] = ()) -> QueueUsers:
    """`left_out`: the hosts of the inventory this audit did not visit. A role consuming every
    queue of its app (`*`, Celery's) may consume any queue the audited hosts use."""
    by_kind = {kind: _users_of(hosts, settings_of, kind) for kind in ("produces", "consumes")}
    used = sorted(set(by_kind["produces"]) | set(by_kind["consumes"]))
    outside: Dict[str, Dict[str, List[str]]] = {"consumes": {}, "produces": {}}
    for spec in left_out:
        for kind, keys in outside.items():
            for key in {key for role in spec.roles for key in spec.settings.queue_keys(role, kind, used)}:
                keys.setdefault(key, []).append(spec.name)
    return QueueUsers(by_kind, *({key: tuple(sorted(names)) for key, names in outside[kind].items()}
                                 for kind in ("consumes", "produces")))


def _users_of(hosts, settings_of, kind):
    """queue key -> hosts that produce (kind='produces') or consume it."""
    users = {}
    for host in hosts:
        probe = _usable_probe(host)
        found = [q.key for q in probe.queues] if probe is not None else []
        for role in host.report.roles:
            for key in settings_of(host).queue_keys(role, kind, _polled(host, role, kind, found)):
                users.setdefault(key, []).append(host)
    return users


def _app_region(host):
    probe = _usable_probe(host)
    return probe.region("app") if probe else None


def _readings(hosts, key):
    """(host, queue reading) for every host whose probe read queue `key`."""
    for host in hosts:
        probe = _usable_probe(host)
        queue = probe.queue(key) if probe else None
        if queue is not None:
            yield host, queue


def cross_host_findings(hosts: Sequence["HostResult"], settings_of: SettingsOf,
                        users: Optional[QueueUsers] = None, judged_by_aws: Collection[str] = ()) -> List[Finding]:
    """`judged_by_aws`: the queues whose job flow AWS's own account judges (accounting) where the
    hosts' logs cannot: their silent producers are not said to be unjudged."""
    users = users or queue_users(hosts, settings_of)
    findings = []
    for key in users.keys:
        findings += _queue_findings(key, users.of("produces", key), users.of("consumes", key), settings_of,
                                    users.left_out_consumers.get(key, ()), key in judged_by_aws)
    findings += _credential_findings(hosts)
    return findings


def _decide(values, key, users, producers):
    """The value the users of a queue should share (shared_value): evidence is finding the queue."""
    return shared_value(values, evidence=[h.report.name for h, q in _readings(users, key) if q.ok],
                        producers=[h.report.name for h in producers])[0]


def _queue_findings(key, producers, consumers, settings_of, left_out=(), judged_by_aws=False):
    users = producers + [c for c in consumers if c not in producers]
    findings = _region_findings(key, users, producers, consumers, settings_of)
    accounts = {h.report.name: _usable_probe(h).account for h in users if _usable_probe(h) and _usable_probe(h).account}
    right = _decide(accounts, key, users, producers) if len(set(accounts.values())) > 1 else None
    if right is not None:
        odd = sorted(name for name, account in accounts.items() if account != right)
        findings.append(emit(
            "account-mismatch", odd, "queue %s: %s use(s) AWS account %s, the others %s" % (
                key, ", ".join(odd), ", ".join(sorted({accounts[n] for n in odd})), right),
            {"queue": key, "accounts": accounts}, account=right, hosts=", ".join(odd)))
    urls = {host.report.name: queue.url for host, queue in _readings(users, key) if queue.url}
    right = _decide(urls, key, users, producers) if len(set(urls.values())) > 1 else None
    if right is not None:
        odd = sorted(name for name, url in urls.items() if url != right)
        findings.append(emit(
            "queue-url-mismatch", odd, "queue %s resolves to different URLs: %s" % (
                key, "; ".join("%s -> %s" % i for i in sorted(urls.items()))),
            {"queue": key, "urls": urls}, hosts=", ".join(odd)))
    places = {host.report.name: place for host in users for place in [_queue_at(host, key)] if place}
    right_place = _decide(places, key, users, producers) if len(set(places.values())) > 1 else None
    findings += _job_flow(key, producers, consumers, settings_of, right_place, judged_by_aws) if not left_out else \
        _job_flow_left_out(key, producers, consumers, settings_of, left_out)
    return findings


def _job_flow_left_out(key, producers, consumers, settings_of, left_out):
    """An audit of part of the fleet: consumers it did not visit may have taken the jobs sent and may
    poll the backlog, so neither is judged; said when there was something to judge."""
    sent = any(c.logs.read and c.logs.jobs(MarkerKind.ENQUEUED, key)
               for h in producers for c in _role_containers(h, settings_of, "produces"))
    waiting = any(queue.waiting for _, queue in _readings(producers + consumers, key))
    if not (sent or waiting):
        return []
    shown = ", ".join(left_out[:10]) + (" and %d more" % (len(left_out) - 10) if len(left_out) > 10 else "")
    users = sorted({h.report.name for h in producers + consumers})
    return [emit("job-flow-unjudged", users, "queue %s: job flow and backlog not judged, since this audit left out "
                 "its consumer(s) %s" % (key, shown), {"queue": key, "reason": "not-audited", "left_out": list(left_out)},
                 cause="not-audited", hosts=", ".join(users), outside=shown)]


def _region_findings(key, users, producers, consumers, settings_of):
    """Every user of a queue, producers and consumers alike, in the region most of them use:
    the odd hosts are named, whichever side they are on."""
    regions = {h.report.name: region for h in users for region in [_app_region(h)] if region}
    if len(set(regions.values())) < 2:
        return []
    right = _decide(regions, key, users, producers)
    variables = app_variables(settings_of(users[0]))
    if right is None:
        sides = {}
        for name, region in sorted(regions.items()):
            sides.setdefault(region, []).append(name)
        return [emit("region-no-majority", sorted(regions), "queue %s: its users are split with no majority: %s" % (
            key, "; ".join("%s in %s" % (", ".join(names), region) for region, names in sorted(sides.items()))),
            {"queue": key, "regions": regions}, queue=key, hosts=", ".join(sorted(regions)), **variables)]
    odd = sorted(name for name, region in regions.items() if region != right)
    sources = {h.report.name: _usable_probe(h).regions["app"].source for h in users
               if h.report.name in odd and "app" in _usable_probe(h).regions}
    findings = [emit("region-mismatch", odd, "queue %s: %s use(s) %s (from %s); the other users of the queue use %s" % (
        key, ", ".join(odd), ", ".join(sorted({regions[n] for n in odd})),
        "; ".join("%s: %s" % item for item in sorted(sources.items())) or "?", right),
        {"queue": key, "regions": regions, "expected": right}, hosts=", ".join(odd), region=right, **variables)]
    producer_regions = {regions[h.report.name] for h in producers if h.report.name in regions}
    for consumer in consumers:
        region = regions.get(consumer.report.name)
        if _usable_probe(consumer) and _usable_probe(consumer).app_region_refused:
            continue            # its region value is refused (env-value-invalid): it polls nothing at all
        if region and producer_regions and region not in producer_regions:
            findings.append(emit(
                "no-producer-region", [consumer.report.name],
                "queue %s: %s polls region %s, where no producer enqueues" % (key, consumer.report.name, region),
                {"queue": key, "region": region}))
    return findings


def _polled(host, role, kind, found):
    """The app's queues a role's workload uses: all it `found`, or a Celery worker's -Q ones."""
    container = host.report.container(role)
    if kind != "consumes" or container is None or container.polled_queues is None:
        return found
    return [key for key in found if key in container.polled_queues]


def _role_containers(host, settings_of, kind):
    """The host's containers of roles that produce (or consume) queues."""
    test = settings_of(host).produces if kind == "produces" else settings_of(host).consumes
    return [c for c in host.report.containers if test(c.role)]


def _queue_at(host, key):
    """Where a host's probe found queue `key`: (region, URL), or None. The region belongs to the
    identity: a URL need not name it (moto's, a VPC endpoint's)."""
    probe = _usable_probe(host)
    queue = probe.queue(key) if probe else None
    return (queue.region, queue.url) if queue is not None and queue.url else None


def _shown_at(place):
    return "%s in %s" % (place[1], place[0] or "?")


def _job_flow(key, producers, consumers, settings_of, right_place=None, judged_by_aws=False):
    """Lost jobs and unattended backlogs, judged only from hosts whose evidence was read. When the
    queue's users disagree on where it is (region and URL) and one place is decided right
    (`right_place`, polled by the consumers), a producer that sends elsewhere is the one to blame:
    its jobs reach no consumer, and the consumers are not named for them."""
    unjudged, silent = set(), set()
    sent = []
    polled = {_queue_at(h, key) for h in consumers}
    astray = {}                 # a wrong place -> (the producers sending there, the jobs they sent)
    for host in producers:
        place = _queue_at(host, key)
        stray = bool(right_place and place and place != right_place and right_place in polled and
                     place not in polled)
        for container in _role_containers(host, settings_of, "produces"):
            if not _logs_sends(settings_of(host), container.role, key):
                silent.add(host.report.name)        # Celery's .delay() logs nothing: not judged, never lost
            elif container.logs.read:
                failed = {s.job for s in container.logs.jobs(MarkerKind.ENQUEUE_FAILED, key)}
                jobs = [s for s in container.logs.jobs(MarkerKind.ENQUEUED, key) if s.job not in failed]
                if stray:
                    astray.setdefault(place, ([], []))[1].extend(jobs)
                else:
                    sent += jobs
            else:
                unjudged.add(host.report.name)
        if stray:
            astray.setdefault(place, ([], []))[0].append(host)
    consuming = [(host, container) for host in consumers for container in _role_containers(host, settings_of, "consumes")]
    consumers_unread = {h.report.name for h in consumers if not h.report.reachable} | {
        h.report.name for h, c in consuming if not c.logs.read and c.present is not False}
    findings = [_enqueued_unpolled(key, place, senders, jobs, consumers) for place, (senders, jobs) in sorted(
        astray.items(), key=lambda item: item[0])]
    if sent and consumers and not consumers_unread:
        findings += _lost_jobs(key, sent, [h for h in producers if all(h not in a[0] for a in astray.values())],
                               app_variables(settings_of(consumers[0]))["job_id_hint"],
                               consuming)
    elif sent:
        unjudged |= consumers_unread
    backlog, undecided = _backlog(key, producers, consumers, settings_of, skip=set(astray))
    findings += backlog
    unjudged |= undecided
    if silent and not judged_by_aws:
        findings.append(emit(
            "job-flow-unjudged", sorted(silent), "queue %s: job flow not judged: %s log(s) nothing about the jobs "
            "they send (no enqueued marker)" % (key, ", ".join(sorted(silent))), {"queue": key, "reason": "no-send-log"},
            cause="no-send-log", hosts=", ".join(sorted(silent))))
    if unjudged:
        findings.append(emit(
            "job-flow-unjudged", sorted(unjudged), "queue %s: job flow and backlog not judged for %s: their logs or "
            "container state could not be read" % (key, ", ".join(sorted(unjudged))), {"queue": key},
            hosts=", ".join(sorted(unjudged))))
    return findings


def _logs_sends(settings, role, key):
    return any(m.kind == MarkerKind.ENQUEUED and m.queue in (None, key) for m in settings.role(role).markers)


def _lost_jobs(key, sent, producers, job_id_hint, consuming):
    received = {s.job for _, c in consuming for s in c.logs.jobs(MarkerKind.RECEIVED)}
    # a consumer whose logs were cut short cannot vouch for jobs sent before what it read
    horizon = max((c.logs.oldest for _, c in consuming if c.logs.truncated_at and c.logs.oldest), default="")
    sent = sorted((s for s in sent if (s.at or "") >= horizon), key=lambda s: s.at or "")
    settled = sent[:-IN_FLIGHT_GRACE] if len(sent) > IN_FLIGHT_GRACE else []
    # workers that still take jobs but fall behind (a poison job retried in a loop) leave the newest
    # waiting, not lost: a job is lost when the workers received jobs sent after it, or none at all
    newest_taken = max((s.at or "" for s in sent if s.job in received), default=None)
    lost = [s.job for s in settled if s.job not in received and (newest_taken is None or (s.at or "") < newest_taken)]
    # a worker hung in a job takes no other: job-stuck is its finding, the lost jobs its consequence
    running = sorted({h.report.name for h, c in consuming
                      if c.running and not stuck_jobs(c, [q for _, q in _readings([h], key)])[0]})
    if not lost or not running:
        return []           # no consumer runs: container-not-running, job-stuck and the backlog say it
    if received and not received & {s.job for s in sent}:
        return [emit("job-ids-unmatched", running, "queue %s: the workers received %d job(s) but none is one the "
                     "API logged (e.g. received %s, enqueued %s): the markers do not share an id" % (
                         key, len(received), sorted(received)[0], sent[-1].job),
                     {"queue": key, "received": sorted(received)[:10], "sent": [s.job for s in sent[-10:]]},
                     job_id_hint=job_id_hint)]
    return [emit("jobs-not-consumed", running, "queue %s: %d job(s) enqueued by %s were received by no worker in "
                 "the window: %s" % (key, len(lost), ", ".join(h.report.name for h in producers), ", ".join(lost[-10:])),
                 {"queue": key, "jobs": lost[-50:]}, hosts=", ".join(running))]


def _enqueued_unpolled(key, place, senders, jobs, consumers):
    """Producers that enqueue where no consumer polls: theirs is the finding, with both sides'
    places and accounts, the jobs sent there in the window and what waits there."""
    def where(host):
        return "%s, account %s" % (_shown_at(_queue_at(host, key)), _usable_probe(host).account or "?")

    waiting = max((q.waiting or 0 for _, q in _readings(senders, key) if (q.region, q.url) == place), default=0)
    names = sorted(h.report.name for h in senders)
    theirs = sorted({where(h) for h in consumers if _queue_at(h, key)})
    ids = [s.job for s in sorted(jobs, key=lambda s: s.at or "")]
    return emit("jobs-enqueued-unpolled", names, "queue %s: %s enqueue(s) to %s, which no worker polls; the "
                "workers poll %s. %d job(s) sent there in the window%s, %d message(s) waiting there" % (
                    key, ", ".join(names), where(senders[0]), "; ".join(theirs), len(ids),
                    " (%s)" % ", ".join(ids[-10:]) if ids else "", waiting),
                {"queue": key, "region": place[0], "url": place[1], "jobs": ids[-50:], "waiting": waiting,
                 "consumers_poll": theirs},
                hosts=", ".join(names), url=_shown_at(place), consumer_urls="; ".join(theirs))


def _backlog(key, producers, consumers, settings_of, skip=()):
    """(findings, hosts that could not be judged) for messages waiting in the queue; places in
    `skip` are already a producer's finding."""
    waiting = {}                # a place (region, URL: moto's and a VPC endpoint's do not name the region)
    for _, queue in _readings(producers + consumers, key):
        if queue.waiting and (queue.region, queue.url) not in skip:
            waiting[(queue.region, queue.url)] = max(waiting.get((queue.region, queue.url), 0), queue.waiting)
    findings, undecided = [], set()
    for place, count in sorted(waiting.items()):
        url = place[1]
        polling, unknown = [], []
        for host in consumers:
            containers = _role_containers(host, settings_of, "consumes")
            probe = _usable_probe(host)
            if not host.report.reachable or any(c.present is None for c in containers) or (
                    probe is None and any(c.running for c in containers)):
                unknown.append(host.report.name)
            elif containers and all(c.running for c in containers) and _queue_at(host, key) == place:
                polling.append(host.report.name)
        if polling:
            continue
        if unknown:
            undecided |= set(unknown)
            continue
        findings.append(emit(
            "backlog-no-consumer", [h.report.name for h in consumers] or ["fleet"],
            "queue %s has %d message(s) waiting at %s and no running worker polls it" % (key, count, url),
            {"queue": key, "visible": count, "url": url}, queue=key))
    return findings, undecided


def _credential_findings(hosts):
    findings = []
    by_key = {}
    for host in hosts:
        probe = _usable_probe(host)
        if probe and probe.credentials.key_id_fp:
            by_key.setdefault(probe.credentials.key_id_fp, []).append(host)
    for members in by_key.values():
        secrets = {h.report.name: h.report.probe.credentials.secret_fp for h in members}
        if len(set(secrets.values())) > 1:
            # the secret AWS accepted is the right one; the majority only breaks a tie
            _, odd = shared_value(secrets, proven=[h.report.name for h in members if h.report.probe.account])
            odd = odd or tuple(sorted(secrets))         # an even split AWS did not settle: every one of them
            findings.append(emit(
                "secret-mismatch", odd, "key id %s is used with %d different secrets; %s differ(s) from the rest" % (
                    members[0].report.probe.credentials.key_id, len(set(secrets.values())), ", ".join(odd)),
                {"secret_fingerprints": secrets}, hosts=", ".join(odd)))
    by_role = {}
    for host in hosts:
        probe = _usable_probe(host)
        if probe and probe.credentials.key_id_fp:
            by_role.setdefault(_role_of(host), {})[host.report.name] = probe.credentials.key_id
    for role, keys in sorted(by_role.items()):
        if len(set(keys.values())) > 1:
            findings.append(emit(
                "key-mismatch", sorted(keys), "hosts of role %s use different access keys: %s" % (
                    role, "; ".join("%s %s" % i for i in sorted(keys.items()))), {"keys": keys}))
    return findings


# -- with the controller's cross-check -------------------------------------------------

def _place(region, account):
    return "%s (account %s)" % (region, account or "?")


def cross_check_findings(hosts: Sequence["HostResult"], check: "QueueLocations",
                         settings_of: SettingsOf) -> List[Finding]:
    """Hosts that cannot find a queue the controller sees elsewhere; the check's own failures."""
    findings = []
    for label, identity in sorted(check.identities.items()):
        if identity.get("error"):
            findings.append(emit(
                "cross-check-failed", ["controller"],
                "the controller's AWS profile %s could not be used: %s" % (label, identity["error"]),
                {"profile": label}))
    for host in hosts:
        probe = _usable_probe(host)
        for queue in probe.queues if probe else ():
            if queue.ok or classify_aws_error(queue.error_code) != "sqs-queue-missing":
                continue
            places = check.where(queue.name)
            if not places:
                continue
            there = places[0]
            fix = ("set %s on %s to %s, then restart" % (
                       app_variables(settings_of(host))["region_var"], host.report.name, there.region)
                   if there.region != queue.region else
                   "use credentials of account %s on %s, then restart" % (there.account, host.report.name))
            findings.append(emit(
                "queue-elsewhere", [host.report.name],
                "queue %s is in %s; %s looks in %s" % (
                    queue.name, ", ".join(_place(s.region, s.account) for s in places), host.report.name,
                    _place(queue.region, probe.account)),
                {"queue": queue.key, "name": queue.name,
                 "found": [{"region": s.region, "account": s.account} for s in places]}, fix=fix))
    return findings


# -- job flow per minute, for the HTML report ----------------------------------------------------

FLOW_KINDS = (("sent", MarkerKind.ENQUEUED, "produces"), ("received", MarkerKind.RECEIVED, "consumes"),
              ("completed", MarkerKind.COMPLETED, "consumes"), ("failed", MarkerKind.FAILED, "consumes"))


@dataclass(frozen=True)
class QueueFlow:
    """One queue's job flow in the window: per kind (sent, received, completed, failed), per host,
    the log lines per minute; its dead-letter queue's depth when a host could read it; and, with
    --cross-check, AWS's own per-minute counts and the minute the flow changed (accounting)."""
    key: str
    counts: Dict[str, Dict[str, Dict[str, int]]]     # kind -> host -> minute -> lines
    dead_letter_depth: Optional[int] = None
    aws: Mapping[str, Mapping[str, float]] = field(default_factory=dict)    # "AWS sent"... -> minute -> count
    changed: Optional[str] = None                    # the minute the flow changed, by AWS's account

    @property
    def minutes(self) -> List[str]:
        return sorted({minute for hosts in self.counts.values() for per in hosts.values() for minute in per} |
                      {minute for per in self.aws.values() for minute in per})


def job_flows(hosts: Sequence["HostResult"], settings_of: SettingsOf,
              users: Optional[QueueUsers] = None) -> Tuple["QueueFlow", ...]:
    """The job flow of every queue some host produces to or consumes from."""
    users = users or queue_users(hosts, settings_of)
    flows = []
    for key in users.keys:
        counts: Dict[str, Dict[str, Dict[str, int]]] = {}
        for label, kind, side in FLOW_KINDS:
            for host in users.of(side, key):
                for container in _role_containers(host, settings_of, side):
                    for marker in container.logs.markers if container.logs.read else ():
                        if marker.kind == kind and marker.queue in (None, key) and marker.minutes:
                            per = counts.setdefault(label, {}).setdefault(host.report.name, {})
                            for minute, lines in marker.minutes.items():
                                per[minute] = per.get(minute, 0) + lines
        depths = [q.dead_letter.depth for _, q in _readings(hosts, key)
                  if q.dead_letter is not None and q.dead_letter.depth is not None]
        flows.append(QueueFlow(key, counts, max(depths) if depths else None))
    return tuple(flows)
