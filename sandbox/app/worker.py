"""Stand-in SQS worker: long-polls its queue with its own environment.

WORKER_KIND=video|ai picks the queue and the log lines of the real workers
(the video worker's job_id is its job row id, apart from the video_id the API
logs; the AI worker's job_id is the API's). WORKER_CRASH=1 makes it die at
start; WORKER_START_FAILURE=missing-env|import-error makes it die at start as a
Django app does, with the traceback on stderr (its settings raise
ImproperlyConfigured for an unset variable; a module it imports is missing); WORKER_PAUSED=1 makes it start and then never receive (concurrency 0).
WORKER_JOB_SECONDS makes every job take that long (big uploads); WORKER_RECEIVE_VISIBILITY is the
VisibilityTimeout each receive asks for (default 2, so redeliveries show quickly; empty: the
queue's own setting applies, as the real workers leave it).
A message whose body names a failure (`"fail"`, set by the API simulator) fails
as the real workers fail, with their lines (../shared/seed/README.md):
- video: `JOB_PROCESSING_FAILED` with a traceback (then `JOB_DEAD` once the
  receive count reaches WORKER_MAX_ATTEMPTS); the message's visibility is set to
  a back-off and the process exits 1, so Docker restarts it;
- ai, "raise": the exception escapes the job path: `Unexpected error:` with a
  traceback, the message is not deleted and comes back (a redrive policy moves it
  to the dead-letter queue after maxReceiveCount receives);
- ai, "clean": the handler's error is the job's result: `SQS_JOB_FAILED`, and the
  message is deleted on purpose;
- ai, "hang": the handler never returns.
A failed DeleteMessage is logged as the real workers log it, and the job is
still reported done.
"""
import json
import logging
import os
import sys
import time

from botocore.exceptions import BotoCoreError, ClientError

import academy_sqs
import handlers

KIND = os.environ.get("WORKER_KIND", "video")
BACKOFF = int(os.environ.get("WORKER_BACKOFF_SECONDS", "60"))
POLL_SECONDS = int(os.environ.get("WORKER_POLL_SECONDS", "2"))
RETRY_BACKOFF = int(os.environ.get("WORKER_RETRY_BACKOFF_SECONDS", "12"))
MAX_ATTEMPTS = int(os.environ.get("WORKER_MAX_ATTEMPTS", "3"))
JOB_SECONDS = float(os.environ.get("WORKER_JOB_SECONDS", "0"))
RECEIVE_VISIBILITY = os.environ.get("WORKER_RECEIVE_VISIBILITY", "2")
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
    attributes = message.get("Attributes", {})
    received(body, float(attributes.get("SentTimestamp", started * 1000)) / 1000)
    time.sleep(JOB_SECONDS)
    if KIND == "video":
        try:
            handlers.transcode(body)
        except Exception as error:
            fail_video_job(client, queue_url, message, body, error, int(attributes.get("ApproximateReceiveCount", 1)))
        delete(client, queue_url, message, body)
        log.info("SQS_JOB_COMPLETED | job_id=%s | video_id=%s | tenant_id=%s | processing_duration=%.2f | "
                 "queue_wait_sec=%.1f", body.get("job_id"), body.get("video_id"), body.get("tenant_id", 1),
                 time.time() - started, 0.0)
        return
    if body.get("fail") == "raise":         # outside the job path: the main loop's handler logs it
        handlers.parse_roster(body)
    try:
        enrolled, error = handlers.parse_roster(body), None
    except Exception as failure:            # the job's result is "failed", as the real dispatcher returns it
        enrolled, error = None, str(failure)
    delete(client, queue_url, message, body)
    if error is not None:
        log.warning("SQS_JOB_FAILED | request_id=%s | job_id=%s | error=%s", body.get("request_id"),
                    body.get("job_id"), error)
        return
    log.info("EXCEL_PARSING processed_by=worker job_id=%s enrolled=%d", body.get("job_id"), enrolled)
    log.info("SQS_JOB_COMPLETED | request_id=%s | job_id=%s", body.get("request_id"), body.get("job_id"))


def fail_video_job(client, queue_url, message, body, error, attempts):
    """The video worker's failure path: log it with its traceback, back the message off, exit 1."""
    log.exception("JOB_PROCESSING_FAILED | job_id=%s | video_id=%s | error=%s", body.get("job_id"),
                  body.get("video_id"), error)
    if attempts >= MAX_ATTEMPTS:
        log.error("JOB_DEAD | job_id=%s | video_id=%s | attempt_count=%d", body.get("job_id"), body.get("video_id"),
                  attempts)
    try:
        client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                         VisibilityTimeout=RETRY_BACKOFF)
    except (BotoCoreError, ClientError) as failure:
        log.error("change_message_visibility failed: %s", failure)
    sys.exit(1)


def main():
    academy_sqs.setup_logging()
    start_failure = os.environ.get("WORKER_START_FAILURE")
    if start_failure == "missing-env":      # the settings module raises ImproperlyConfigured, uncaught
        import worker_settings  # noqa: F401
    elif start_failure == "import-error":   # a module the deploy left out: ModuleNotFoundError, uncaught
        import academy_transcode_pipeline  # noqa: F401
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
                visibility = {"VisibilityTimeout": int(RECEIVE_VISIBILITY)} if RECEIVE_VISIBILITY else {}
                response = client.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["SentTimestamp",
                                                                                "ApproximateReceiveCount"],
                    WaitTimeSeconds=POLL_SECONDS, **visibility)
                for message in response.get("Messages", []):
                    handle(client, queue_url, message)
        except (BotoCoreError, ClientError) as error:
            log.error("SQS receive failed: %s", error)
            log.warning("SQS unavailable, waiting %ds", BACKOFF)
            time.sleep(BACKOFF)
        except Exception as error:          # the AI worker's main loop: log, count, go on
            log.exception("Unexpected error: %s", error)
            time.sleep(1)


if __name__ == "__main__":
    main()
