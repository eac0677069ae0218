"""Stand-in for the Django API's enqueue paths, logging the real API lines.

Every SIM_INTERVAL_SECONDS it enqueues one video job and dispatches one Excel
enrollment job. SIM_POISON_EVERY=N makes every Nth Excel job a poison job.
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
POISON_EVERY = int(os.environ.get("SIM_POISON_EVERY", "0"))
log = logging.getLogger("apps.api.jobs")


def send(client, queue, body):
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def enqueue_video(client, video_id):
    # as in the app: the message names the job row (its own id space) and the video
    body = {"job_id": str(50000 + video_id * 7 % 1000 + video_id), "video_id": video_id, "tenant_id": 1,
            "request_id": uuid.uuid4().hex[:12]}
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
            "poison": bool(POISON_EVERY and number % POISON_EVERY == 0)}
    try:
        send(client, academy_sqs.AI_QUEUE, body)
    except (BotoCoreError, ClientError) as error:
        log.error("Failed to enqueue AI job: job_id=%s, tier=basic error=%s", job_id, error)


def main():
    academy_sqs.setup_logging()
    log.info("API simulator started region=%s", academy_sqs.app_region())
    client = academy_sqs.sqs_client()
    for number in itertools.count(1):
        enqueue_video(client, 1000 + number)
        dispatch_excel(client, number)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
