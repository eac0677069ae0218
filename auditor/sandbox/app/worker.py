"""Stand-in SQS worker: long-polls its queue with its own environment.

WORKER_KIND=video|ai picks the queue and the log lines of the real workers.
WORKER_CRASH=1 makes it die at start (for the crash-loop scenario).
A message whose body has "poison": true fails every time and is never deleted,
so SQS redelivers it: the shape of a code bug.
"""
import json
import logging
import os
import sys
import time

from botocore.exceptions import BotoCoreError, ClientError

import academy_sqs

KIND = os.environ.get("WORKER_KIND", "video")
BACKOFF = int(os.environ.get("WORKER_BACKOFF_SECONDS", "60"))
POLL_SECONDS = int(os.environ.get("WORKER_POLL_SECONDS", "2"))
log = logging.getLogger("academy.worker." + KIND)


def handle(client, queue_url, message):
    body = json.loads(message["Body"])
    job_id, request_id = body.get("job_id"), body.get("request_id")
    log.info("SQS_MESSAGE_RECEIVED | worker=%s | request_id=%s | job_id=%s | tier=%s",
             KIND, request_id, job_id, body.get("tier", "basic"))
    if body.get("poison"):
        log.error("Job failed: job_id=%s error=ValueError('corrupt input')", job_id)
        return
    time.sleep(0.05)
    client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    if KIND == "ai":
        log.info("EXCEL_PARSING processed_by=worker job_id=%s enrolled=%d", job_id, body.get("rows", 1))
    log.info("SQS_JOB_COMPLETED | request_id=%s | job_id=%s", request_id, job_id)


def main():
    academy_sqs.setup_logging()
    if os.environ.get("WORKER_CRASH") == "1":
        log.error("Worker crashed at start: RuntimeError('settings module failed to import')")
        sys.exit(1)
    queue = academy_sqs.VIDEO_QUEUE if KIND == "video" else academy_sqs.AI_QUEUE
    log.info("%s Worker (SQS) started queue=%s region=%s",
             "Video" if KIND == "video" else "AI", queue, academy_sqs.app_region())
    client = academy_sqs.sqs_client()
    while True:
        try:
            queue_url = client.get_queue_url(QueueName=queue)["QueueUrl"]
        except (BotoCoreError, ClientError) as error:
            log.error("Queue URL unavailable: %s", error)
            log.warning("SQS unavailable, waiting %ds", BACKOFF)
            time.sleep(BACKOFF)
            continue
        try:
            while True:
                response = client.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=5,
                    WaitTimeSeconds=POLL_SECONDS, VisibilityTimeout=2)
                for message in response.get("Messages", []):
                    handle(client, queue_url, message)
        except (BotoCoreError, ClientError) as error:
            log.error("SQS receive failed: %s", error)
            log.warning("SQS unavailable, waiting %ds", BACKOFF)
            time.sleep(BACKOFF)


if __name__ == "__main__":
    main()
