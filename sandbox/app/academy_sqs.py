"""The sandbox app's SQS client, with the reference app's own rules.

Region comes from AWS_REGION only (default ap-northeast-2), never from
AWS_DEFAULT_REGION; AWS_ROOT_* keys win over AWS_ACCESS_KEY_ID because the
latter sometimes holds Cloudflare R2 keys. These quirks are what the auditor
has to see through, so the stand-in keeps them.
"""
import logging
import os
import sys

import boto3
from botocore.config import Config

DEFAULT_REGION = "ap-northeast-2"
VIDEO_QUEUE = os.environ.get("VIDEO_SQS_QUEUE_NAME", "academy-video-jobs")
AI_QUEUE = os.environ.get("AI_SQS_QUEUE_NAME_BASIC", "academy-ai-jobs-basic")


def app_region():
    return os.environ.get("AWS_REGION") or DEFAULT_REGION


def sqs_client():
    kwargs = {"region_name": app_region()}
    root_key = os.environ.get("AWS_ROOT_ACCESS_KEY_ID")
    root_secret = os.environ.get("AWS_ROOT_SECRET_ACCESS_KEY")
    if root_key and root_secret:
        kwargs.update(aws_access_key_id=root_key, aws_secret_access_key=root_secret)
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=25)
    return boto3.client("sqs", config=config, **kwargs)


def setup_logging():
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
