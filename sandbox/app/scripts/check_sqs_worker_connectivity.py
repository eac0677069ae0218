"""Stand-in for the app's own SQS check script, with the real output shape.

Like the original it calls ReceiveMessage (here with VisibilityTimeout=0 so
that the sandbox loses no job); the auditor's own probe never does.
Exit 0 when every queue answers, 1 otherwise.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # noqa: E402

import academy_sqs  # noqa: E402

CREDENTIAL_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                    "ExpiredToken", "RequestExpired"}
MISSING_CODES = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue"}


def error_code(error):
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code.isdigit() and "<Code>" in message:
        code = message.split("<Code>", 1)[1].split("</Code>", 1)[0]
    return code


def check(client, number, label, queue):
    print("[%d] %s: %s" % (number, label, queue))
    try:
        url = client.get_queue_url(QueueName=queue)["QueueUrl"]
        print("  get_queue_url: OK (%s)" % url)
        client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=0)
        print("  receive_message: OK")
        return True
    except NoCredentialsError as error:
        print("  FAIL: 큐 접근 불가 (자격 증명/권한 문제)")
        print("  상세: %s" % error)
    except ClientError as error:
        code = error_code(error)
        if code in MISSING_CODES:
            print("  FAIL: 큐가 존재하지 않습니다 (리전 %s)" % academy_sqs.app_region())
        elif code in CREDENTIAL_CODES:
            print("  FAIL: 큐 접근 불가 (자격 증명/권한 문제)")
        else:
            print("  FAIL: AWS 자격 증명 오류 또는 SQS 권한 없음")
        print("  상세: %s: %s" % (code, error))
    except BotoCoreError as error:
        print("  FAIL: SQS 엔드포인트에 연결할 수 없습니다")
        print("  상세: %s" % error)
    return False


def main():
    print("[환경] AWS_REGION=%s" % (os.environ.get("AWS_REGION") or "(미설정, 기본 %s)" % academy_sqs.DEFAULT_REGION))
    print("[환경] DJANGO_SETTINGS_MODULE=%s" % os.environ.get("DJANGO_SETTINGS_MODULE", "(미설정)"))
    client = academy_sqs.sqs_client()
    ok = check(client, 1, "Video 큐", academy_sqs.VIDEO_QUEUE)
    ok = check(client, 2, "AI(Basic) 큐 (엑셀 수강등록)", academy_sqs.AI_QUEUE) and ok
    if ok:
        print("결과: SQS 연결 정상. 워커 실행 여부와 로그를 확인하세요.")
        return 0
    print("결과: SQS 연결 실패. 위 FAIL 항목의 조치 후 API/워커를 재기동하세요.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
