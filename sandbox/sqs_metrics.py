"""CloudWatch's `AWS/SQS` metrics for the sandbox, derived from what moto really does.

moto serves SQS but publishes no metrics. This module runs moto's server with a publisher in the
same process: it counts what the SQS backend does as it does it (messages sent, received and
deleted, receives that found nothing), samples every queue's messages every few seconds (waiting,
in flight, the oldest one's age), and puts each finished minute into moto's CloudWatch as AWS
would: one data point per queue, metric and minute, zeros included, no point for a minute that
has not ended yet. A message older than its queue's retention period counts as gone, as SQS deletes
it (moto keeps it). The publisher writes to the backend directly, so the recorded requests stay the
clients' own.

    python -m sandbox.sqs_metrics -H 127.0.0.1 -p PORT      (moto.server's own arguments)
"""
import datetime
import logging
import sys
import threading
import time
from typing import Dict, Tuple

from moto.cloudwatch.models import cloudwatch_backends
from moto.sqs.models import SQSBackend, sqs_backends

SAMPLE_SECONDS = 5
COUNTS = ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted", "NumberOfEmptyReceives")
GAUGES = ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
          "ApproximateAgeOfOldestMessage")
UNITS = dict({metric: "Count" for metric in COUNTS + GAUGES[:2]}, ApproximateAgeOfOldestMessage="Seconds")

# a queue as created: (account, region, name, created) - a queue made again after a reset is another
QueueKey = Tuple[str, str, str, str]
log = logging.getLogger("sandbox.sqs_metrics")


class Ledger:
    """Per queue and minute: the counts so far and the largest gauge sampled, until published."""

    def __init__(self):
        self.lock = threading.Lock()
        self.minutes: Dict[QueueKey, Dict[int, Dict[str, float]]] = {}

    def count(self, key: QueueKey, metric: str, number: int = 1, at: float = None) -> None:
        with self.lock:
            per = self._minute(key, at)
            per[metric] = per.get(metric, 0) + number

    def gauge(self, key: QueueKey, metric: str, value: float, at: float) -> None:
        with self.lock:
            per = self._minute(key, at)
            per[metric] = max(per.get(metric, value), value)

    def _minute(self, key, at):
        return self.minutes.setdefault(key, {}).setdefault(int((at or time.time()) // 60) * 60, {})

    def finished(self, live, now: float):
        """[(key, minute, values)] of every minute that has ended, forgotten once taken; queues no
        longer `live` (a reset) are dropped unpublished."""
        current = int(now // 60) * 60
        taken = []
        with self.lock:
            for key in list(self.minutes):
                if key not in live:
                    del self.minutes[key]
                    continue
                for minute in sorted(m for m in self.minutes[key] if m < current):
                    taken.append((key, minute, self.minutes[key].pop(minute)))
        return taken


LEDGER = Ledger()


def _key(backend: SQSBackend, queue_name: str) -> QueueKey:
    queue = backend.get_queue(queue_name)
    return backend.account_id, backend.region_name, queue.name, str(queue.created_timestamp)


def install(ledger: Ledger = LEDGER) -> None:
    """Count every send, receive and delete the SQS backend completes (a refused call never gets
    here: IAM and validation come first). A batch is counted per message, as AWS counts it."""
    send, receive, delete = SQSBackend.send_message, SQSBackend.receive_message, SQSBackend.delete_message

    def send_message(self, queue_name, *args, **kwargs):
        message = send(self, queue_name, *args, **kwargs)
        ledger.count(_key(self, queue_name), "NumberOfMessagesSent")
        return message

    def receive_message(self, queue_name, *args, **kwargs):
        messages = receive(self, queue_name, *args, **kwargs)
        if messages:
            ledger.count(_key(self, queue_name), "NumberOfMessagesReceived", len(messages))
        else:
            ledger.count(_key(self, queue_name), "NumberOfEmptyReceives")
        return messages

    def delete_message(self, queue_name, receipt_handle):
        delete(self, queue_name, receipt_handle)
        ledger.count(_key(self, queue_name), "NumberOfMessagesDeleted")

    SQSBackend.send_message, SQSBackend.receive_message = send_message, receive_message
    SQSBackend.delete_message = delete_message


def _queues():
    for account, regions in list(dict.items(sqs_backends)):
        for region, backend in list(dict.items(regions)):
            for queue in list(backend.queues.values()):
                yield (account, region, queue.name, str(queue.created_timestamp)), queue


def sample(ledger: Ledger = LEDGER, now: float = None) -> set:
    """Every queue's waiting, in-flight and oldest message, as SQS would count them; the live keys."""
    now = now or time.time()
    live = set()
    for key, queue in _queues():
        live.add(key)
        retention = int(queue.message_retention_period)
        kept = [m for m in list(queue._messages) if now - m.sent_timestamp / 1000 < retention]
        ledger.gauge(key, "ApproximateNumberOfMessagesVisible", sum(m.visible and not m.delayed for m in kept), now)
        ledger.gauge(key, "ApproximateNumberOfMessagesNotVisible", sum(not m.visible for m in kept), now)
        ledger.gauge(key, "ApproximateAgeOfOldestMessage",
                     int(now - min(m.sent_timestamp for m in kept) / 1000) if kept else 0, now)
    return live


def publish(ledger: Ledger = LEDGER, now: float = None) -> int:
    """Put every finished minute into CloudWatch; the data points put."""
    now = now or time.time()
    put = 0
    for (account, region, name, _), minute, values in ledger.finished(sample(ledger, now), now):
        at = datetime.datetime.fromtimestamp(minute, datetime.timezone.utc).replace(tzinfo=None)  # moto's naive UTC
        data = [{"MetricName": metric, "Dimensions": [{"Name": "QueueName", "Value": name}], "Timestamp": at,
                 "Value": values.get(metric, 0), "Unit": UNITS[metric]}
                for metric in COUNTS + GAUGES if metric in COUNTS or metric in values]
        cloudwatch_backends[account][region].put_metric_data("AWS/SQS", data)
        put += len(data)
    return put


def _publishing():
    while True:
        time.sleep(SAMPLE_SECONDS)
        try:
            publish()
        except Exception:       # a queue deleted mid-sample, a reset: the next sample starts again
            log.exception("publishing SQS metrics")


def main(argv=None):
    from moto import server
    install()
    threading.Thread(target=_publishing, daemon=True, name="sqs-metrics").start()
    server.main(argv or sys.argv[1:])


if __name__ == "__main__":
    main()
