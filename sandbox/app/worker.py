"""Stand-in SQS worker: long-polls its queue with its own environment.

WORKER_KIND=video|ai picks the queue and the log lines of the real workers
(the video worker's job_id is its job row id, apart from the video_id the API
logs; the AI worker's job_id is the API's). WORKER_CRASH=1 makes it die at
start; WORKER_PAUSED=1 makes it start and then never receive (concurrency 0).
A message whose body has "poison": true fails every time and is never deleted,
so SQS redelivers it: the shape of a code bug. A failed DeleteMessage is logged
as the real workers log it, and the job is still reported done.
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


def received(body, sent_at):
    wait = max(0.0, time.time() - sent_at)
    if KIND == "video":
        log.info("SQS_MESSAGE_RECEIVED | job_id=%s | video_id=%s | tenant_id=%s | queue_wait_sec=%.1f",
                 body.get("job_id"), body.get("video_id"), body.get("tenant_id", 1), wait)
    else:
        log.info("SQS_MESSAGE_RECEIVED | worker=%s | request_id=%s | job_id=%s | tier=%s",
                 "ai-worker-cpu", body.get("request_id"), body.get("job_id"), body.get("tier", "basic"))


def delete(client, queue_url, message, body):
    """Delete the message; a failure is logged as the real workers log it, and processing goes on."""
    try:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    except (BotoCoreError, ClientError) as error:
        if KIND == "video":
            log.error("Error deleting message: receipt_handle=%s..., error=%s", message["ReceiptHandle"][:12], error)
        else:
            log.error("AI_JOB_SQS_DELETE_FAILED | job_id=%s | message will redeliver", body.get("job_id"))


def handle(client, queue_url, message):
    body = json.loads(message["Body"])
    started = time.time()
    received(body, float(message.get("Attributes", {}).get("SentTimestamp", started * 1000)) / 1000)
    if body.get("poison"):
        log.error("Job failed: job_id=%s error=ValueError('corrupt input')", body.get("job_id"))
        return
    time.sleep(0.05)
    delete(client, queue_url, message, body)
    if KIND == "ai":
        log.info("EXCEL_PARSING processed_by=worker job_id=%s enrolled=%d", body.get("job_id"), body.get("rows", 1))
        log.info("SQS_JOB_COMPLETED | request_id=%s | job_id=%s", body.get("request_id"), body.get("job_id"))
    else:
        log.info("SQS_JOB_COMPLETED | job_id=%s | video_id=%s | tenant_id=%s | processing_duration=%.2f | "
                 "queue_wait_sec=%.1f", body.get("job_id"), body.get("video_id"), body.get("tenant_id", 1),
                 time.time() - started, 0.0)


def main():
    academy_sqs.setup_logging()
    if os.environ.get("WORKER_CRASH") == "1":
        log.error("Worker crashed at start: RuntimeError('settings module failed to import')")
        sys.exit(1)
    queue = academy_sqs.VIDEO_QUEUE if KIND == "video" else academy_sqs.AI_QUEUE
    log.info("%s Worker (SQS) started queue=%s region=%s",
             "Video" if KIND == "video" else "AI", queue, academy_sqs.app_region())
    if os.environ.get("WORKER_PAUSED") == "1":
        while True:                 # alive, polling nothing: concurrency 0
            time.sleep(3600)
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
                    QueueUrl=queue_url, MaxNumberOfMessages=5, AttributeNames=["SentTimestamp"],
                    WaitTimeSeconds=POLL_SECONDS, VisibilityTimeout=2)
                for message in response.get("Messages", []):
                    handle(client, queue_url, message)
        except (BotoCoreError, ClientError) as error:
            log.error("SQS receive failed: %s", error)
            log.warning("SQS unavailable, waiting %ds", BACKOFF)
            time.sleep(BACKOFF)


if __name__ == "__main__":
    main()
