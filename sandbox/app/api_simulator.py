"""Stand-in for the Django API's enqueue paths, logging the real API lines.

Every SIM_INTERVAL_SECONDS it enqueues one video job and dispatches one Excel
enrollment job. A job can be made to fail in its worker: SIM_FAIL_QUEUE=video|ai
picks the jobs, SIM_FAIL_EVERY=N every Nth of them, SIM_FAIL_LIMIT=K at most K
in all (0: no limit), SIM_FAIL_MODE how the AI worker fails (raise, clean, hang;
see worker.py). SIM_FIRST_NUMBER is the first job's number: a second deployment
has job rows (and ids) of its own.
"""
import itertools
import json
import logging
import os
import time
import uuid

from botocore.exceptions import BotoCoreError, ClientError

import academy_sqs

INTERVAL = float(os.environ.get("SIM_INTERVAL_SECONDS", "3"))
FIRST_NUMBER = int(os.environ.get("SIM_FIRST_NUMBER", "1"))
FAIL_QUEUE = os.environ.get("SIM_FAIL_QUEUE", "")
FAIL_EVERY = int(os.environ.get("SIM_FAIL_EVERY", "0"))
FAIL_LIMIT = int(os.environ.get("SIM_FAIL_LIMIT", "0"))
FAIL_MODE = os.environ.get("SIM_FAIL_MODE", "raise")
failed_so_far = [0]
log = logging.getLogger("apps.api.jobs")


def failure(queue, number):
    """How this job is to fail in its worker, or None."""
    if queue != FAIL_QUEUE or not FAIL_EVERY or number % FAIL_EVERY or (FAIL_LIMIT and failed_so_far[0] >= FAIL_LIMIT):
        return None
    failed_so_far[0] += 1
    return FAIL_MODE


def send(client, queue, body):
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def enqueue_video(client, number):
    # as in the app: the message names the job row (its own id space) and the video
    video_id = 1000 + number
    body = {"job_id": str(50000 + video_id * 7 % 1000 + video_id), "video_id": video_id, "tenant_id": 1,
            "request_id": uuid.uuid4().hex[:12], "fail": failure("video", number)}
    try:
        send(client, academy_sqs.VIDEO_QUEUE, body)
    except (BotoCoreError, ClientError) as error:
        log.error("Failed to enqueue video job: video_id=%s error=%s", video_id, error)
        log.warning('"POST /api/v1/videos/%s/upload-complete/ HTTP/1.1" 503', video_id)
        return
    log.info("Video job enqueued: video_id=%s", video_id)


def dispatch_excel(client, number):
    job_id = "xl-%d-%s" % (number, uuid.uuid4().hex[:6])
    request_id = uuid.uuid4().hex[:12]
    log.info("EXCEL_PARSING dispatch request_id=%s job_id=%s tenant_id=1 lecture_id=%d",
             request_id, job_id, 100 + number % 5)
    body = {"job_id": job_id, "request_id": request_id, "tier": "basic", "rows": 3,
            "fail": failure("ai", number)}
    try:
        send(client, academy_sqs.AI_QUEUE, body)
    except (BotoCoreError, ClientError) as error:
        log.error("Failed to enqueue AI job: job_id=%s, tier=basic error=%s", job_id, error)


def main():
    academy_sqs.setup_logging()
    log.info("API simulator started region=%s", academy_sqs.app_region())
    client = academy_sqs.sqs_client()
    for number in itertools.count(FIRST_NUMBER):
        enqueue_video(client, number)
        dispatch_excel(client, number)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
