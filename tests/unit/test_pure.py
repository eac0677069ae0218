"""Pure functions: error normalisation and classification, .env parsing, masking."""
import pytest

from auditor.agent.environment import describe_env, parse_dotenv
from auditor.agent.redact import mask_key_id
from auditor.diagnosis import classify_aws_error
from auditor.facts import normalise_error_code


@pytest.mark.parametrize("error, code", [
    ({"code": "403", "message": "<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error>"},
     "InvalidClientTokenId"),
    ({"code": "AWS.SimpleQueueService.NonExistentQueue", "query_code": "QueueDoesNotExist", "message": ""},
     "QueueDoesNotExist"),
    ({"code": "SignatureDoesNotMatch", "message": "..."}, "SignatureDoesNotMatch"),
    (None, None),
])
def test_normalise_error_code(error, code):
    assert normalise_error_code(error) == code


@pytest.mark.parametrize("code, finding", [
    ("InvalidClientTokenId", "sqs-credentials-invalid"), ("UnrecognizedClientException", "sqs-credentials-invalid"),
    ("SignatureDoesNotMatch", "sqs-signature-mismatch"), ("ExpiredToken", "sqs-credentials-expired"),
    ("RequestExpired", "sqs-credentials-expired"), ("AccessDenied", "sqs-access-denied"),
    ("KMS.AccessDeniedException", "sqs-access-denied"), ("QueueDoesNotExist", "sqs-queue-missing"),
    ("AWS.SimpleQueueService.NonExistentQueue", "sqs-queue-missing"),
    ("EndpointConnectionError", "sqs-endpoint-unreachable"), ("ReadTimeoutError", "sqs-endpoint-unreachable"),
    ("SomethingNew", "sqs-error"),
])
def test_classify_aws_error(code, finding):
    assert classify_aws_error(code) == finding


DOTENV = (
    "# comment\r\n"
    "export AWS_REGION=ap-northeast-2\r\n"
    "QUOTED=\"a b # not a comment\"\n"
    "SINGLE='x'\n"
    "INLINE=value # comment\n"
    "EMPTY=\n"
    "  SPACED = v \n"
    "not a line\n"
)


def test_dotenv_compose_semantics():
    assert parse_dotenv(DOTENV, "compose") == {
        "AWS_REGION": "ap-northeast-2", "QUOTED": "a b # not a comment", "SINGLE": "x", "INLINE": "value",
        "EMPTY": "", "SPACED": "v"}


def test_dotenv_docker_env_file_keeps_values_verbatim():
    parsed = parse_dotenv(DOTENV, "docker")
    assert parsed["QUOTED"] == "\"a b # not a comment\""
    assert parsed["INLINE"] == "value # comment"
    assert "AWS_REGION" not in parsed          # `export X=...` is not a variable for docker


def test_env_description_never_contains_secret_values():
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    described = describe_env({"AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": "AKIA" + "Z" * 16,
                              "AWS_REGION": "us-east-1"},
                             "s", ["AWS_REGION"], ["AWS_ACCESS_KEY_ID"])
    assert secret not in repr(described)
    assert described["AWS_ACCESS_KEY_ID"]["masked"] == "AKIA************ZZZZ"
    assert described["AWS_REGION"]["value"] == "us-east-1"
    assert mask_key_id("short") == "*****"
