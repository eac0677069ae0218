"""The whole assessment on recorded agent facts (tests/golden/), without SSH,
Docker or root: for every sandbox scenario and every hand-made case, exactly
the expected (host, code, severity) set and every host's verdict.

Record again after changing the agent or a scenario: `fab sandbox.record-golden`.
"""
import json
from pathlib import Path

import pytest

from auditor import audit
from auditor.codes import CODES
from auditor.render import render
from sandbox import golden
from sandbox.scenarios import SCENARIOS

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
HANDMADE = sorted((GOLDEN / "handmade").glob("*.json"))


def load(path):
    return json.loads(Path(path).read_text())


def verdicts(result):
    return {h.report.name: str(h.verdict) for h in result.hosts}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_scenario_gives_exactly_its_findings_and_verdicts(name):
    path = GOLDEN / ("%s.json" % name)
    assert path.exists(), "no golden facts for %s: run `fab sandbox.record-golden --scenario %s`" % (name, name)
    scenario = SCENARIOS[name]
    document = load(path)
    result = audit.assess(golden.runs_of(document), check=golden.cross_check_of(document.get("cross_check")))
    assert audit.finding_set(result) == golden.expected_set(scenario)
    assert verdicts(result) == {host: scenario.verdict(host) for host in verdicts(result)}


@pytest.mark.parametrize("path", HANDMADE, ids=[p.stem for p in HANDMADE])
def test_handmade_case_gives_exactly_its_findings_and_verdicts(path):
    case = load(path)
    document = golden.apply_patches(load(GOLDEN / ("%s.json" % case["base"])), case["patches"])
    result = audit.assess(golden.runs_of(document), check=golden.cross_check_of(case.get("cross_check")))
    assert audit.finding_set(result) == {tuple(item) for item in case["expect"]}
    assert verdicts(result) == {host: case.get("verdicts", {}).get(host, "ok") for host in verdicts(result)}


def test_every_registered_code_has_a_golden_case():
    covered = {code for scenario in SCENARIOS.values() for _, code in scenario.expect}
    covered |= {item[1] for path in HANDMADE for item in load(path)["expect"]}
    assert sorted(set(CODES) - covered) == []


def test_golden_facts_hold_no_secret_shapes():
    """Recorded facts are already redacted by the agent: no full AWS key id, no secret value."""
    import re
    for path in GOLDEN.glob("*.json"):
        text = path.read_text()
        assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text), path
        assert "SECRET_ACCESS_KEY=" not in text, path


def test_the_docs_scenario_tables_are_the_scenarios():
    from sandbox.scenarios import markdown_table
    page = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text()
    assert markdown_table() in page, "regenerate it: python -m sandbox.scenarios"
    assert golden.handmade_table(GOLDEN / "handmade") in page, "regenerate it: python -m sandbox.golden"


def test_a_stopped_file_logging_process_is_named_by_the_pattern_that_was_checked():
    case = load(GOLDEN / "handmade" / "process-and-ids.json")
    document = golden.apply_patches(load(GOLDEN / ("%s.json" % case["base"])), case["patches"])
    (finding,) = [f for f in audit.assess(golden.runs_of(document)).findings if f.code == "process-not-running"]
    assert "'academy/worker.py'" in finding.message and "'academy/worker.py'" in finding.remedy
    assert "systemctl start /" not in finding.remedy


def _steps(document, name):
    from auditor.render.steps import render_steps
    result = audit.assess(golden.runs_of(document))
    host = next(h for h in result.hosts if h.report.name == name)
    return render_steps(host, api_roles={"api"})


def test_check_host_never_says_ok_for_a_step_whose_evidence_is_missing():
    steps = _steps(load(GOLDEN / "docker-down.json"), "video-1")          # the probe could not run
    assert "Step 1 - SQS from the app's own environment: NOT JUDGED (the SQS probe did not run" in steps
    unreadable = {"read": False, "reason": "permission-denied", "error": "permission denied"}
    api_logs = golden.apply_patches(load(GOLDEN / "healthy.json"),
                                    [{"host": "api-1", "path": "facts.inspected.0.logs", "value": unreadable}])
    steps = _steps(api_logs, "api-1")
    step3 = steps.split("Step 3 - API logs: ")[1]
    assert step3.startswith("NOT JUDGED (the logs of academy-api were not read (permission-denied"), step3
    assert "academy-api" not in steps.split("Step 3")[0].split("Step 2")[1]    # the API is not shown as a worker


def test_check_host_says_a_step_with_nothing_to_examine_is_not_applicable_not_ok():
    steps = _steps(load(GOLDEN / "healthy.json"), "video-1")              # a worker-only host
    assert "Step 3 - API logs: NOT APPLICABLE (no API (producer) workload on this host (roles: video-worker))" in steps
    assert "Step 2 - worker containers and their logs: OK" in steps
    steps = _steps(load(GOLDEN / "healthy.json"), "api-1")
    assert "Step 3 - API logs: OK" in steps


def test_code_suspect_is_reached_from_five_independent_kinds_of_evidence():
    """Repeated receipts, a dead-letter queue's depth, failure lines, runs ending on one job and a
    job held past its visibility timeout: each alone makes a host code-suspect in its own scenario."""
    alone = {scenario.expect[0][1] for scenario in SCENARIOS.values()
             if len(scenario.expect) == 1 and scenario.verdict(scenario.expect[0][0]) == "code-suspect"}
    assert {"job-repeated-failure", "dead-letter-messages", "worker-exceptions", "job-crash-loop",
            "job-stuck"} <= alone


def test_a_missing_log_file_names_the_file_reader_and_quotes_the_path():
    from auditor import diagnosis
    from auditor.facts import ContainerReading, LogReading, Missing, Unread, WorkloadKind
    path = "/srv/$(touch pwned)/worker.log"
    unread = LogReading(Missing(Unread.NOT_FOUND, "no file matches %s" % path))
    (finding,) = diagnosis._log_evidence("ai-1", ContainerReading(path, "ai-worker", True, logs=unread,
                                                                  kind=WorkloadKind.FILE))
    assert "docker" not in finding.remedy and "'/srv/$(touch pwned)/worker.log'" in finding.remedy
    journal = LogReading(Missing(Unread.PERMISSION_DENIED, "insufficient permissions"))
    (finding,) = diagnosis._log_evidence("ai-1", ContainerReading("academy-ai-worker", "ai-worker", None,
                                                                  logs=journal, kind=WorkloadKind.JOURNALD))
    assert "systemd-journal" in finding.remedy and "docker" not in finding.remedy


@pytest.mark.parametrize("name, words", [("startup-missing-env", "DJANGO_SECRET_KEY"),
                                         ("startup-import-error", "academy_transcode_pipeline")])
def test_a_start_up_failure_is_said_with_its_cause_in_every_format(name, words):
    from auditor.render import render
    scenario = SCENARIOS[name]
    result = audit.assess(golden.runs_of(load(GOLDEN / ("%s.json" % name))))
    document = json.loads(render(result, "json"))
    assert {(h, f["code"], f["severity"]) for f in document["findings"] for h in f["hosts"]} == \
        golden.expected_set(scenario)
    assert {h["name"]: h["verdict"] for h in document["hosts"]}["ai-1"] == scenario.verdict("ai-1")
    for fmt in ("table", "markdown", "html", "junit"):
        text = render(result, fmt).replace("\\", "")        # Markdown escapes the underscores
        assert all(code in text for _, code in scenario.expect) and words in text, fmt


def test_aws_account_says_since_when_the_oldest_job_waits_and_how_to_keep_jobs_meanwhile():
    case = load(GOLDEN / "handmade" / "queue-account-expiring.json")
    document = golden.apply_patches(load(GOLDEN / ("%s.json" % case["base"])), case["patches"])
    result = audit.assess(golden.runs_of(document), check=golden.cross_check_of(case["cross_check"]))
    (expiring,) = [f for f in result.findings if f.code == "jobs-expiring"]
    assert "oldest message is 3000 s old, 83% of its 3600 s retention" in expiring.message
    assert "its age has climbed since 2026-12-01T10:02Z" in expiring.message
    assert "--queue-url http://127.0.0.1:4566/123456789012/academy-video-jobs" in expiring.remedy
    (short,) = {f.message for f in result.findings if f.code == "dead-letter-retention-short"}
    assert short == "queue academy-video-jobs's dead-letter queue academy-video-jobs-dlq keeps messages 3600 s, no " \
                    "longer than academy-video-jobs itself (3600 s)"
    table = render(result, "table")
    assert "cloudwatch:GetMetricData was denied" in table      # the queue it could not read says so


def test_the_html_chart_draws_aws_counts_beside_the_logs_and_the_minute_the_flow_changed():
    case = load(GOLDEN / "handmade" / "queue-account-celery-unreceived.json")
    document = golden.apply_patches(load(GOLDEN / ("%s.json" % case["base"])), case["patches"])
    result = audit.assess(golden.runs_of(document), check=golden.cross_check_of(case["cross_check"]))
    (flow,) = result.job_flow
    assert flow.changed == "2026-11-28T13:44" and sum(flow.aws["AWS sent"].values()) == 120
    page = render(result, "html")
    assert 'class="flow-AWS-sent"' in page and 'stroke-dasharray="5 3"' in page
    assert 'class="flow-changed"' in page and ">since 13:44</text>" in page


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if s.cross_check))
def test_what_aws_account_says_shows_in_every_format_with_who_is_blamed(name):
    scenario = SCENARIOS[name]
    document = load(GOLDEN / ("%s.json" % name))
    result = audit.assess(golden.runs_of(document), check=golden.cross_check_of(document["cross_check"]))
    report = json.loads(render(result, "json"))
    assert {(h, f["code"], f["severity"]) for f in report["findings"] for h in f["hosts"]} == \
        golden.expected_set(scenario)
    assert report["cross_check"]["accounts"]
    for fmt in ("table", "markdown", "html", "junit"):
        text = render(result, fmt).replace("\\", "")        # Markdown escapes what it must
        for host, code in scenario.expect:
            assert code in text and host in text, (fmt, host, code)
