"""The watch loop and its metrics on hand-made results (pure): a failed round is counted and the
next one runs; Prometheus's own parser reads what is published; the since-line shows in every
format, escaped for each."""
import dataclasses
import json
import os
import signal
import threading

import pytest

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auditor import taskkit, watch
from auditor.codes import Verdict
from auditor.errors import InventoryError
from auditor.history import SinceOk
from auditor.render import render

from test_crosshost import host
from test_render import result_of


def samples(metrics):
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_failed_round_is_counted_and_the_next_one_runs(tmp_path):
    audited = result_of([host("api-1", "api"), host("video-1", "video-worker", region="us-east-1")])
    audited = dataclasses.replace(audited, hosts=[audited.hosts[0], dataclasses.replace(audited.hosts[1],
                                                                                         verdict=Verdict.CONFIG)])
    results = iter([InventoryError("inventory.yaml:3: broken"), RuntimeError("a bug"), audited])
    stop, said = threading.Event(), []

    def run_round():
        outcome = next(results)
        if isinstance(outcome, Exception):
            raise outcome
        stop.set()              # the third round is the last
        return outcome

    metrics = watch.Metrics()
    textfile = tmp_path / "fleet.prom"
    rounds = watch.watch(run_round, watch.Schedule(every=0.01, jitter=0), metrics, str(textfile), stop, said.append)
    assert rounds == 3
    assert said[0] == "watch: round 1 failed: inventory.yaml:3: broken"
    assert said[1].startswith("watch: round 2 failed: unexpected RuntimeError")
    found = samples(metrics)
    assert found[("fleet_audit_rounds_total", ())] == 3 and found[("fleet_audit_round_failures_total", ())] == 2
    assert found[("fleet_audit_host_verdict", (("host", "video-1"), ("verdict", "config")))] == 1
    assert found[("fleet_audit_host_verdict", (("host", "video-1"), ("verdict", "ok")))] == 0
    assert found[("fleet_audit_findings", (("code", "region-mismatch"), ("severity", "error")))] == 1
    assert {name for name, _ in found} >= {"fleet_audit_host_reachable", "fleet_audit_round_duration_seconds",
                                           "fleet_audit_last_success_timestamp_seconds"}
    assert list(text_string_to_metric_families(textfile.read_text()))       # the textfile parses too


class SignalledWhileFinalised:
    """Python loses an exception raised in a finaliser: SIGTERM landing while a paramiko channel's
    __del__ runs on the main thread is such a case."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10000):      # the handler runs in here, and the Terminated it raises is lost
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_signal_ends_the_watch_even_when_its_exception_is_lost_or_comes_after_the_last_host():
    audited = result_of([host("api-1", "api")])
    rounds_run = []

    def run_round():
        rounds_run.append(1)
        SignalledWhileFinalised()
        return audited

    with taskkit._stop_signals():
        rounds = watch.watch(run_round, watch.Schedule(every=0.01, jitter=0), watch.Metrics(), stop=taskkit.STOP_ASKED,
                             say=lambda text: None)
    assert rounds == len(rounds_run) == 1

    # every host had finished when the signal came: the round is whole, published, and the last
    late = dataclasses.replace(audited, interrupted_by="SIGTERM")
    metrics = watch.Metrics()
    assert watch.watch(lambda: late, watch.Schedule(every=0.01, jitter=0), metrics, say=lambda text: None) == 1
    assert samples(metrics)[("fleet_audit_rounds_total", ())] == 1


def test_listen_addresses_default_to_loopback():
    assert watch.listen_address("9464") == ("127.0.0.1", 9464)
    assert watch.listen_address("0.0.0.0:9") == ("0.0.0.0", 9)
    assert watch.listen_address("[::1]:9464") == ("::1", 9464)


def test_what_changed_since_a_host_last_worked_shows_in_every_format_escaped_for_each():
    result = result_of([host("api-1", "api"), host("video-1", "video-worker", region="us-east-1")])
    since = SinceOk("video-1", 7, "2026-12-01T09:14:00Z", ("app region ap-northeast-2 -> us-east-1",
                                                           "image <v41> -> v42\x1b[31m"))
    result = dataclasses.replace(result, since_ok={"video-1": since})
    line = "since 2026-12-01 09:14 (ok, audit 7): app region ap-northeast-2 -> us-east-1"
    assert line in render(result, "table") and "\x1b[31m" not in render(result, "table")
    assert line.replace(">", "&gt;") in render(result, "markdown")     # the Markdown sanitiser's escape
    assert line.replace(">", "&gt;") in render(result, "html") and "&lt;v41&gt;" in render(result, "html")
    from xml.etree import ElementTree
    assert line in ElementTree.fromstring(render(result, "junit")).find("testsuite[@name='video-1']/system-out").text
    hosts = {h["name"]: h for h in json.loads(render(result, "json"))["hosts"]}
    assert hosts["video-1"]["since_last_ok"] == {"audit": 7, "started": "2026-12-01T09:14:00Z",
                                                 "changes": list(since.changes)}
    assert hosts["api-1"]["since_last_ok"] is None
