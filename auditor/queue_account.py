"""AWS's own account of each queue (with `--cross-check`): the attributes that decide whether
jobs survive, and CloudWatch's `AWS/SQS` metrics over the audit's window, read with the
controller's AWS profiles where the cross-check found the queues.

AWS counts every message at no cost, per minute: sent, received, deleted, empty receives, and
the waiting, in-flight and oldest message's age. One `GetMetricData` call per account and region
carries every queue's metrics (batched, paged); one `GetQueueAttributes` per queue (and its
dead-letter queue). Read-only. A queue whose account could not be read (no credentials, no
permission, no data points) says why, and is never shown as zeros.
"""
import datetime
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .aws import CLIENTS_LOCK, client_config, session_for
from .errors import aws_error_code

COUNTS = ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted", "NumberOfEmptyReceives")
GAUGES = ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
          "ApproximateAgeOfOldestMessage")
METRICS = COUNTS + GAUGES
SURVIVAL_ATTRIBUTES = ("MessageRetentionPeriod", "VisibilityTimeout", "ReceiveMessageWaitTimeSeconds",
                       "DelaySeconds", "RedrivePolicy", "FifoQueue")
QUERIES_PER_CALL = 500          # GetMetricData's limit
IAM_ACTIONS = ("cloudwatch:GetMetricData", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")


@dataclass(frozen=True)
class QueueAccount:
    """One queue as AWS accounts for it over the window."""
    name: str
    region: str
    account: Optional[str]
    profile: Optional[str]
    attributes: Mapping[str, str] = field(default_factory=dict)      # the survival attributes AWS gave
    series: Mapping[str, Tuple[Tuple[str, float], ...]] = field(default_factory=dict)  # metric -> ((minute, value),)
    unjudged: Optional[str] = None      # why AWS's account of it could not be read
    dead_letter: Optional[str] = None   # the dead-letter queue's name (its RedrivePolicy)

    def total(self, metric: str) -> Optional[float]:
        """A count's sum over the window (None: no data points: unknown, not zero)."""
        points = self.series.get(metric)
        return sum(value for _, value in points) if points else None

    def largest(self, metric: str) -> Optional[float]:
        points = self.series.get(metric)
        return max(value for _, value in points) if points else None


def read_accounts(check, window_seconds: int, timeout: float, settings, now: Optional[datetime.datetime] = None
                  ) -> Tuple[QueueAccount, ...]:
    """Every queue the cross-check found (and its dead-letter queue), as AWS accounts for it."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    groups: Dict[Tuple[Optional[str], str], List] = {}
    for sighting in check.sightings:
        groups.setdefault((sighting.profile, sighting.region), []).append(sighting)
    config = client_config(timeout)
    with ThreadPoolExecutor(max_workers=max(1, min(settings.parallel, len(groups) or 1))) as pool:
        found = pool.map(lambda item: _read_group(item[0], item[1], settings, config, window_seconds, now),
                         groups.items())
        return tuple(account for group in found for account in group)


def _read_group(key, sightings, settings, config, window_seconds, now):
    profile, region = key
    try:
        session = session_for(profile, settings.config_file, settings.credentials_file)
        with CLIENTS_LOCK:
            sqs = session.client("sqs", region_name=region, config=config)
            cloudwatch = session.client("cloudwatch", region_name=region, config=config)
    except Exception as error:  # a profile that cannot make clients: every queue of it says so
        return [QueueAccount(s.name, region, s.account, profile, unjudged="no client (%s)" % aws_error_code(error))
                for s in sightings]
    queues = []         # (name, account, attributes, why they could not be read, dead-letter queue)
    for sighting in sightings:
        attributes, problem = _attributes(sqs, sighting.url)
        queues.append((sighting.name, sighting.account, attributes, problem,
                       _dead_letter(attributes.get("RedrivePolicy"))))
    known = {name for name, *_ in queues}
    for _, account, _, _, dead_letter in list(queues):         # dead-letter queues are accounted for too
        if dead_letter and dead_letter not in known:
            known.add(dead_letter)
            try:
                attributes, problem = _attributes(sqs, sqs.get_queue_url(QueueName=dead_letter)["QueueUrl"])
            except Exception as error:  # its source names it; its absence is the source's problem
                attributes, problem = {}, _why("sqs:GetQueueUrl", error)
            queues.append((dead_letter, account, attributes, problem, None))
    series, metrics_problem = _metrics(cloudwatch, [name for name, *_ in queues], window_seconds, now)
    accounts = []
    for name, account, attributes, problem, dead_letter in queues:
        mine = series.get(name, {})
        unjudged = metrics_problem or problem or (None if mine else "no data points in the window "
                                                  "(CloudWatch has published none for this queue)")
        accounts.append(QueueAccount(name, region, account, profile, attributes, mine, unjudged, dead_letter))
    return accounts


def _attributes(sqs, url):
    try:
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except Exception as error:  # said per queue
        return {}, _why("sqs:GetQueueAttributes", error)
    return {key: got[key] for key in SURVIVAL_ATTRIBUTES if key in got}, None


def _dead_letter(redrive):
    try:
        return json.loads(redrive)["deadLetterTargetArn"].rsplit(":", 1)[1] if redrive else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _metrics(cloudwatch, names: Sequence[str], window_seconds: int, now: datetime.datetime):
    """({queue: {metric: ((minute, value),)}}, why none could be read): one query per queue and
    metric, QUERIES_PER_CALL per call, every page."""
    end = now.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    # the first whole minute of the logs' window: every minute read is one the hosts' logs cover too
    start = end - datetime.timedelta(minutes=1) - datetime.timedelta(seconds=window_seconds // 60 * 60)
    queries, owners = [], {}
    for number, (name, metric) in enumerate((n, m) for n in names for m in METRICS):
        query_id = "q%d" % number
        owners[query_id] = (name, metric)
        queries.append({"Id": query_id, "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/SQS", "MetricName": metric,
                       "Dimensions": [{"Name": "QueueName", "Value": name}]},
            "Period": 60, "Stat": "Sum" if metric in COUNTS else "Maximum"}})
    series: Dict[str, Dict[str, Tuple[Tuple[str, float], ...]]] = {}
    try:
        for first in range(0, len(queries), QUERIES_PER_CALL):
            request = {"MetricDataQueries": queries[first:first + QUERIES_PER_CALL], "StartTime": start,
                       "EndTime": end, "ScanBy": "TimestampAscending"}
            while True:
                page = cloudwatch.get_metric_data(**request)
                for result in page["MetricDataResults"]:
                    name, metric = owners[result["Id"]]
                    points = sorted(zip((t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
                                         for t in result["Timestamps"]), result["Values"]))
                    if points:
                        known = dict(series.setdefault(name, {}).get(metric, ()))
                        known.update(points)
                        series[name][metric] = tuple(sorted(known.items()))
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
    except Exception as error:  # denied or failed: every queue of this account and region says so
        return {}, _why("cloudwatch:GetMetricData", error)
    return series, None


DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}   # 403: a body without a code


def _why(action, error):
    """Why AWS's account could not be read, as the operator acts on it."""
    code = aws_error_code(error)
    if code in DENIED:
        return "%s was denied (%s): the controller's principal needs it" % (action, code)
    return "%s failed (%s)" % (action, code)
