"""kombu's SQS rules as the probe applies them to a Celery app's configuration (agent/celery_view.py):
keys from the broker URL (URL-encoded), the region's fallbacks, the prefix, predefined queues.
The real Celery stack is the sandbox's (scenarios celery-*); here only the rules."""
import sys
import types

from auditor.agent.celery_view import canonical_name, celery_view


def app_module(monkeypatch, broker, options=None, default_queue="encode", routes=None):
    conf = types.SimpleNamespace(broker_url=broker, broker_read_url=None, broker_transport_options=options or {},
                                 task_default_queue=default_queue, task_queues=None, task_routes=routes or {})
    module = types.ModuleType("fakeproj")
    module.app = types.SimpleNamespace(conf=conf)
    monkeypatch.setitem(sys.modules, "fakeproj", module)
    return "fakeproj:app"


def test_keys_come_url_decoded_from_the_broker_url_and_the_region_from_the_options(monkeypatch):
    view = celery_view(app_module(monkeypatch, "sqs://AKIAEXAMPLE:se%2Fcr%2Bet@", {"region": "eu-west-1",
                                                                                 "queue_name_prefix": "shop-"}), None)
    assert view["keys"] == ("AKIAEXAMPLE", "se/cr+et", "celery broker_url")
    assert view["region"]["value"] == "eu-west-1"
    assert [(q["key"], q["name"]) for q in view["queues"]] == [("encode", "shop-encode")]


def test_without_a_region_kombu_takes_boto3s_then_its_own_default(monkeypatch):
    path = app_module(monkeypatch, "sqs://")
    assert celery_view(path, "ap-northeast-2")["region"]["value"] == "ap-northeast-2"
    fallback = celery_view(path, None)["region"]
    assert fallback["value"] == "us-east-1" and "kombu's default" in fallback["source"]
    assert celery_view(path, None)["keys"] == (None, None, None)        # boto3's chain then


def test_predefined_queues_name_their_urls_and_routes_add_queues(monkeypatch):
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/reports"
    view = celery_view(app_module(monkeypatch, "sqs://", {"region": "eu-west-1", "predefined_queues": {
        "reports": {"url": url, "access_key_id": "AKIAOTHER", "secret_access_key": "s"}}},
        routes={"shop.report": {"queue": "reports"}}), None)
    assert [q["key"] for q in view["queues"]] == ["encode", "reports"]
    reports = view["queues"][1]
    assert reports["predefined_url"] == url and reports["keys"][0] == "AKIAOTHER"


def test_queue_names_are_canonical_as_kombu_makes_them():
    assert canonical_name("shop.encode") == "shop-encode"
    assert canonical_name("a b:c") == "a_b_c"
    assert canonical_name("jobs.fifo") == "jobs.fifo"


def test_a_workers_command_line_says_which_queues_it_polls():
    from auditor.facts import ContainerReading
    worker = ContainerReading("worker", "worker", True, command=("python", "-m", "celery", "-A", "shop.celery:app",
                                                                 "worker", "-Q", "encode,reports", "-c", "1"))
    assert worker.polled_queues == ("encode", "reports")
    assert ContainerReading("w", "worker", True, command=("celery", "worker", "--queues=encode")).polled_queues == \
        ("encode",)
    assert ContainerReading("w", "worker", True, command=("celery", "worker")).polled_queues is None
