"""The Celery app: SQS broker (keys in the URL), options from the environment. The region and
the queue name prefix are read from variables a host may lack: those are the outages the
scenarios stage (kombu then falls back to its own default region, or to unprefixed names)."""
import os

from celery import Celery

app = Celery("shop", broker=os.environ.get("CELERY_BROKER_URL", "sqs://"), include=["shop.tasks"])
options = {"wait_time_seconds": 2, "polling_interval": 1, "visibility_timeout": 60}
if os.environ.get("CELERY_SQS_REGION"):
    options["region"] = os.environ["CELERY_SQS_REGION"]
if os.environ.get("CELERY_QUEUE_PREFIX"):
    options["queue_name_prefix"] = os.environ["CELERY_QUEUE_PREFIX"]
app.conf.update(broker_transport_options=options, task_default_queue="encode", worker_prefetch_multiplier=1,
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=True)
