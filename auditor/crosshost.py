"""Cross-host comparison: the attribute matrix and the fleet-wide findings.

Pure: host results in, matrix and findings out. A matrix cell deviates when it
differs from the baseline (if one is given for that attribute) or from the
strict majority of the hosts it is compared with: the whole fleet for regions,
accounts, queue URLs and endpoints; hosts of the same role for keys, secrets,
settings modules and images, which legitimately differ between roles. With no
strict majority, the producers (the API hosts) break the tie where they agree:
jobs go where they are enqueued.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from .diagnosis import ERROR, WARNING, Finding, app_variables, classify_aws_error

IN_FLIGHT_GRACE = 3     # the newest job ids per queue may simply not be received yet
# fleet-wide errors that blame the configuration of exactly the hosts they name
NOT_USED = "-"          # a matrix cell for a queue this host does not use (None is unknown)
CONFIGURATION_CODES = ("region-mismatch", "account-mismatch", "queue-url-mismatch", "secret-mismatch",
                       "queue-elsewhere")


@dataclass(frozen=True)
class Row:
    attribute: str
    scope: str                       # "fleet" or "role"
    cells: Dict[str, Optional[str]]  # host -> value (None: unknown)
    deviating: Tuple[str, ...] = ()
    expected: Dict[str, Optional[str]] = field(default_factory=dict)   # host -> the value it should have


def _probe_ok(host):
    probe = host.report.probe
    return probe if probe is not None and not probe.error_kind else None


def _role_of(host):
    return ",".join(host.report.roles) or "-"


def attribute_values(host, queue_keys):
    """The comparable attributes of one host, as display strings (masked already)."""
    probe = _probe_ok(host)
    values = {}
    if probe is not None:
        for who, label in (("app", "app region"), ("boto3", "boto3 region"), ("cli", "aws-cli region")):
            values[label] = probe.region(who) or "unset"
        values["account"] = probe.account
        values["access key id"] = probe.credentials.get("key_id")
        values["secret fingerprint"] = probe.credentials.get("secret_fp")
        values["credential source"] = probe.credentials.get("source")
        values["endpoint overrides"] = ", ".join("%s=%s" % i for i in sorted(probe.endpoints.items())) or "none"
        values["settings module"] = probe.settings_module
        values["botocore"] = probe.botocore
        readings = {q.key: q for q in probe.queues}
        for key in queue_keys:
            values["queue %s name" % key] = readings[key].name if key in readings else NOT_USED
            values["queue %s url" % key] = readings[key].url if key in readings else NOT_USED
    images = [c.image for c in host.report.containers if c.present]
    values["image"] = ", ".join(images) if images else None
    return values


FLEET_SCOPE = ("app region", "boto3 region", "aws-cli region", "account", "endpoint overrides", "botocore")
ATTRIBUTES = FLEET_SCOPE + ("access key id", "secret fingerprint", "credential source", "settings module", "image")
QUEUE_ATTRIBUTE = re.compile(r"^queue \S+ (name|url)$")


def is_attribute(name):
    """Whether `name` can be a matrix row (for checking a baseline's keys)."""
    return name in ATTRIBUTES or bool(QUEUE_ATTRIBUTE.match(name))


def build_matrix(hosts, baseline=None, producers=()):
    """Rows of attributes by hosts; `producers`: names of the hosts that enqueue."""
    baseline = baseline or {}
    queue_keys = sorted({q.key for h in hosts if _probe_ok(h) for q in h.report.probe.queues})
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
        groups = {}
        for host in hosts:
            key = "fleet" if scope == "fleet" else _role_of(host)
            groups.setdefault(key, []).append(host.report.name)
        deviating, expected = [], {}
        for group, members in groups.items():
            wanted = baseline.get(attribute)
            if isinstance(wanted, dict):            # per-role baseline values
                wanted = wanted.get(group)
            if wanted is None:
                known = [m for m in members if cells[m] not in (None, NOT_USED)]
                wanted = _majority([cells[m] for m in known], {cells[m] for m in known if m in producers})
                if wanted is None:
                    continue
            for member in members:
                if cells[member] not in (None, NOT_USED) and cells[member] != wanted:
                    deviating.append(member)
                    expected[member] = wanted
        rows.append(Row(attribute, scope, cells, tuple(deviating), expected))
    return rows


def _majority(values, producer_values):
    """The strict majority value; on a tie, the producers' value if they agree on a tied one."""
    counts = Counter(values).most_common()
    if not counts:
        return None
    tied = [value for value, count in counts if count == counts[0][1]]
    if len(tied) == 1:
        return tied[0]
    if len(producer_values) == 1 and next(iter(producer_values)) in tied:
        return next(iter(producer_values))
    return None


# -- fleet-wide findings ---------------------------------------------------------------

def users_of(hosts, settings_of, kind):
    """queue key -> hosts that produce (kind='produces') or consume it."""
    users = {}
    for host in hosts:
        role_defs = settings_of(host)["role_defs"]
        for role in host.report.roles:
            for key in role_defs.get(role, {}).get(kind, []):
                users.setdefault(key, []).append(host)
    return users


def _app_region(host):
    probe = _probe_ok(host)
    return probe.region("app") if probe else None


def _readings(hosts, key):
    """(host, queue reading) for every host whose probe read queue `key`."""
    for host in hosts:
        probe = _probe_ok(host)
        for queue in probe.queues if probe else ():
            if queue.key == key:
                yield host, queue


def _odd_ones(values, trusted=None):
    """(the value most hosts have, or most `trusted` values are; the hosts that differ from it, sorted)."""
    right = Counter(trusted or values.values()).most_common(1)[0][0]
    return right, sorted(name for name, value in values.items() if value != right)


def cross_host_findings(hosts, settings_of):
    producers = users_of(hosts, settings_of, "produces")
    consumers = users_of(hosts, settings_of, "consumes")
    findings = []
    for key in sorted(set(producers) | set(consumers)):
        findings += _queue_findings(key, producers.get(key, []), consumers.get(key, []), settings_of)
    findings += _credential_findings(hosts)
    return findings


def _queue_findings(key, producers, consumers, settings_of):
    findings = []
    producer_regions = {h.report.name: region for h in producers for region in [_app_region(h)] if region}
    for consumer in consumers:
        region = _app_region(consumer)
        if not region or not producer_regions:
            continue
        others = {n: r for n, r in producer_regions.items() if r != region}
        if others:
            names = sorted(others)
            findings.append(Finding(
                "region-mismatch", ERROR, (consumer.report.name,),
                "queue %s: %s polls %s but %s enqueue(s) in %s" % (
                    key, consumer.report.name, region, ", ".join(names), ", ".join(sorted(set(others.values())))),
                "set %s on %s to %s (the region the API uses), then restart its worker"
                % (app_variables(settings_of(consumer))["region_var"], consumer.report.name,
                   sorted(set(others.values()))[0]), 4,
                {"queue": key, "consumer_region": region, "producer_regions": producer_regions}))
            if region not in producer_regions.values():
                findings.append(Finding(
                    "no-producer-region", WARNING, (consumer.report.name,),
                    "queue %s: %s polls region %s, where no API host enqueues" % (key, consumer.report.name, region),
                    "point the worker at the producers' region", 4, {"queue": key, "region": region}))
    accounts = {h.report.name: _probe_ok(h).account for h in producers + consumers
                if _probe_ok(h) and _probe_ok(h).account}
    if len(set(accounts.values())) > 1:
        majority, odd = _odd_ones(accounts)
        findings.append(Finding(
            "account-mismatch", ERROR, tuple(odd),
            "queue %s: %s use(s) AWS account %s, the others %s" % (
                key, ", ".join(odd), ", ".join(sorted({accounts[n] for n in odd})), majority),
            "use credentials of account %s on %s (a queue name resolves per account)" % (majority, ", ".join(odd)),
            4, {"queue": key, "accounts": accounts}))
    urls = {host.report.name: queue.url for host, queue in _readings(producers + consumers, key) if queue.url}
    if len(set(urls.values())) > 1:
        _, odd = _odd_ones(urls)
        findings.append(Finding(
            "queue-url-mismatch", ERROR, tuple(odd),
            "queue %s resolves to different URLs: %s" % (key, "; ".join("%s -> %s" % i for i in sorted(urls.items()))),
            "make every host use the same queue name, region and account (check %s's queue-name variable)"
            % ", ".join(odd), 4, {"queue": key, "urls": urls}))
    findings += _job_flow(key, producers, consumers)
    return findings


def _job_flow(key, producers, consumers):
    sent = []
    for host in producers:
        for container in host.report.containers:
            for marker in container.markers.values():
                if marker["kind"] == "enqueued" and (marker.get("queue") or key) == key:
                    sent += marker["jobs"]
    findings = []
    reachable_consumers = [c for c in consumers if c.report.reachable]
    if sent and consumers and len(reachable_consumers) == len(consumers):
        received = {job for c in consumers for cont in c.report.containers for job in cont.jobs("received")}
        settled = sent[:-IN_FLIGHT_GRACE] if len(sent) > IN_FLIGHT_GRACE else []
        lost = [job for job in settled if job not in received]
        if lost:
            findings.append(Finding(
                "jobs-not-consumed", ERROR, tuple(h.report.name for h in producers + consumers),
                "queue %s: %d job(s) enqueued by %s were received by no worker in the window: %s" % (
                    key, len(lost), ", ".join(h.report.name for h in producers), ", ".join(lost[-10:])),
                "follow step 1 and 2 on %s: the workers are not reading the queue the API writes to"
                % ", ".join(h.report.name for h in consumers), 4, {"queue": key, "jobs": lost[-50:]}))
    backlog = max((int(queue.attributes.get("ApproximateNumberOfMessages", 0) or 0)
                   for _, queue in _readings(producers + consumers, key) if queue.ok), default=0)
    healthy = [c for c in consumers if c.verdict in ("ok", "code-suspect")]
    if backlog and not healthy:
        findings.append(Finding(
            "backlog-no-consumer", ERROR, tuple(h.report.name for h in consumers) or ("fleet",),
            "queue %s has %d message(s) waiting and no reachable, healthy worker polls it" % (key, backlog),
            "fix the consumers of %s (see their findings); the backlog drains once one polls the queue's region"
            % key, 4, {"queue": key, "visible": backlog}))
    return findings


def _credential_findings(hosts):
    findings = []
    by_key = {}
    for host in hosts:
        probe = _probe_ok(host)
        if probe and probe.credentials.get("key_id_fp"):
            by_key.setdefault(probe.credentials["key_id_fp"], []).append(host)
    for members in by_key.values():
        secrets = {h.report.name: h.report.probe.credentials.get("secret_fp") for h in members}
        if len(set(secrets.values())) > 1:
            # the secret AWS accepted is the right one; the majority only breaks a tie
            accepted = [h.report.probe.credentials.get("secret_fp") for h in members if h.report.probe.account]
            _, odd = _odd_ones(secrets, trusted=accepted)
            findings.append(Finding(
                "secret-mismatch", ERROR, tuple(odd),
                "key id %s is used with %d different secrets; %s differ(s) from the rest" % (
                    members[0].report.probe.credentials.get("key_id"), len(set(secrets.values())), ", ".join(odd)),
                "copy the right AWS secret for that key id to %s, then restart" % ", ".join(odd), 4,
                {"secret_fingerprints": secrets}))
    by_role = {}
    for host in hosts:
        probe = _probe_ok(host)
        if probe and probe.credentials.get("key_id_fp"):
            by_role.setdefault(_role_of(host), {})[host.report.name] = probe.credentials.get("key_id")
    for role, keys in sorted(by_role.items()):
        if len(set(keys.values())) > 1:
            findings.append(Finding(
                "key-mismatch", WARNING, tuple(sorted(keys)),
                "hosts of role %s use different access keys: %s" % (
                    role, "; ".join("%s %s" % i for i in sorted(keys.items()))),
                "use one key (or one instance role) per role, so a rotation reaches every host", 4, {"keys": keys}))
    return findings


# -- with the controller's cross-check -------------------------------------------------

def _place(region, account):
    return "%s (account %s)" % (region, account or "?")


def cross_check_findings(hosts, check, settings_of):
    """Hosts that cannot find a queue the controller sees elsewhere; the check's own failures."""
    findings = []
    for label, identity in sorted(check.identities.items()):
        if identity.get("error"):
            findings.append(Finding(
                "cross-check-failed", WARNING, ("controller",),
                "the controller's AWS profile %s could not be used: %s" % (label, identity["error"]),
                "give the controller read access (sts:GetCallerIdentity, sqs:GetQueueUrl) or fix "
                "auditor.cross_check.profiles", 4, {"profile": label}))
    for host in hosts:
        probe = _probe_ok(host)
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
            findings.append(Finding(
                "queue-elsewhere", ERROR, (host.report.name,),
                "queue %s is in %s; %s looks in %s" % (
                    queue.name, ", ".join(_place(s.region, s.account) for s in places), host.report.name,
                    _place(queue.region, probe.account)),
                fix, 4, {"queue": queue.key, "name": queue.name,
                         "found": [{"region": s.region, "account": s.account} for s in places]}))
    return findings
