"""Controller-side cross-check (opt-in): where each queue name really exists.

The hosts say where they look; this says where the queues are, seen with the
controller's own AWS credentials: one AWS profile per account to search, each
region where SQS is offered (or the configured ones). Read-only: STS
GetCallerIdentity once per profile, then SQS GetQueueUrl and, for queues that
exist, GetQueueAttributes; one attempt each, short timeouts, a bounded pool.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Tuple

from .aws import CLIENTS_LOCK, client_config, session_for
from .diagnosis import classify_aws_error
from .errors import aws_error_code

if TYPE_CHECKING:
    from .queue_account import QueueAccount

QUEUE_MISSING = "sqs-queue-missing"


@dataclass(frozen=True)
class Sighting:
    """One queue name found in one region of one account."""
    name: str
    region: str
    account: Optional[str]
    profile: Optional[str]
    url: str
    visible: Optional[int] = None


@dataclass(frozen=True)
class QueueLocations:
    names: Tuple[str, ...]
    regions: Tuple[str, ...]
    identities: dict = field(default_factory=dict, compare=False)   # profile label -> account or error
    sightings: Tuple[Sighting, ...] = ()
    failures: Tuple[Tuple[str, str, str], ...] = ()                 # (profile label, region, error code)
    accounts: Tuple["QueueAccount", ...] = ()       # AWS's own account of each queue found (queue_account.py)

    def where(self, name):
        return [s for s in self.sightings if s.name == name]


def profile_label(profile):
    return profile or "default"


def _look(session, config, profile, account, region, name):
    """-> ("found", Sighting) | ("missing", None) | ("failed", code)."""
    with CLIENTS_LOCK:
        sqs = session.client("sqs", region_name=region, config=config)
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception as error:  # classified below; one region's failure never stops the others
        code = aws_error_code(error)
        return ("missing", None) if classify_aws_error(code) == QUEUE_MISSING else ("failed", code)
    visible = None
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        visible = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    except Exception:  # the queue exists: its count is a bonus
        pass
    return "found", Sighting(name, region, account, profile, url, visible)


def cross_check(names, settings, timeout=5, seen_regions=(), progress=None):
    """Search every (profile, region, queue name) with `settings` (settings.CrossCheckSettings); never
    raises for AWS errors. `progress(done, total, label)` is called as lookups finish."""
    names = tuple(sorted(set(names)))
    config = client_config(timeout)
    profiles = settings.profiles or (None,)
    identities, tasks, all_regions = {}, [], set()
    for profile in profiles:
        label = profile_label(profile)
        try:
            session = session_for(profile, settings.config_file, settings.credentials_file)
            searched = set(settings.regions or session.get_available_regions("sqs"))
            searched |= {region for region in seen_regions if region}
            sts_region = session.region_name or min(searched, default="us-east-1")
            account = session.client("sts", region_name=sts_region, config=config).get_caller_identity()["Account"]
        except Exception as error:  # no credentials, a broken profile, an unreachable endpoint
            identities[label] = {"error": aws_error_code(error)}
            continue
        identities[label] = {"account": account}
        all_regions |= searched
        tasks += [(session, profile, account, region, name) for region in sorted(searched) for name in names]
    sightings, failures = [], set()
    with ThreadPoolExecutor(max_workers=max(1, min(settings.parallel, len(tasks) or 1))) as pool:
        outcomes = pool.map(lambda t: (t, _look(t[0], config, *t[1:])), tasks)
        for done, ((session, profile, account, region, name), (state, value)) in enumerate(outcomes, 1):
            if progress:
                progress(done, len(tasks), "%s %s" % (region, name))
            if state == "found":
                sightings.append(value)
            elif state == "failed":
                failures.add((profile_label(profile), region, value))
    sightings.sort(key=lambda s: (s.name, s.region, s.account or ""))
    return QueueLocations(names, tuple(sorted(all_regions)), identities, tuple(sightings), tuple(sorted(failures)))
