"""Each scenario yields its expected findings on the expected hosts, and the
other hosts stay `ok`, against real SSH, Docker and the SQS API."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from auditor import audit, transports
from auditor.inventory import load_inventory
from auditor.render import render
from sandbox import golden
from sandbox.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")
OTHER_TRANSPORT = "ssh" if transports.DEFAULT == "paramiko" else "paramiko"
READ_ONLY_ACTIONS = {"GetQueueUrl", "GetQueueAttributes", "GetCallerIdentity", "GetMetricData"}


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "healthy"])
def test_scenario_yields_exactly_its_findings_and_verdicts(fleet, name):
    scenario = SCENARIOS[name]
    fleet.use(name)
    result = fleet.audit_until(lambda r: golden.matches(scenario, r), cross_check=scenario.cross_check)
    assert audit.finding_set(result) == golden.expected_set(scenario)
    assert {h.report.name: str(h.verdict) for h in result.hosts} == {
        h.report.name: scenario.verdict(h.report.name) for h in result.hosts}
    has_error = any(severity == "error" for _, _, severity in golden.expected_set(scenario))
    assert result.exit_code == (1 if has_error else 0)
    if scenario.cross_check:        # AWS's account is the controller's own reading: no transport to compare
        return
    # the other SSH transport sees exactly the same (hosts reached by Run Command stay so)
    other = [replace(spec, connection=OTHER_TRANSPORT) if spec.connection in ("ssh", "paramiko") else spec
             for spec in load_inventory(fleet.sandbox.inventory)]
    again = fleet.audit_until(lambda r: golden.matches(scenario, r), specs=other)
    assert audit.finding_set(again) == golden.expected_set(scenario), OTHER_TRANSPORT


def test_healthy_fleet_has_no_error_and_exits_zero(fleet):
    inventory = fleet.use("healthy")
    result = fleet.audit_until(lambda r: not r.findings)
    assert [h.verdict for h in result.hosts] == ["ok", "ok", "ok"]
    assert [(f.code, f.hosts) for f in result.findings] == []
    assert not [row.attribute for row in result.matrix if row.deviating]
    # the same through the real command line, JSON on stdout only
    done = subprocess.run([FAB, "audit", "-i", str(inventory), "--format", "json"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["schema"] == "fleet-audit/2"
    assert {h["name"]: h["verdict"] for h in document["hosts"]} == {"api-1": "ok", "video-1": "ok", "ai-1": "ok"}
    assert "hosts done" in done.stderr


@pytest.mark.parametrize("name", ["healthy", "r2-keys", "wrong-secret", "sqs-via-proxy"])
def test_no_secret_in_any_output_and_probe_is_read_only(fleet, name):
    fleet.use(name)
    result = audit.run_audit(fleet.sandbox.inventory, cross_check=True)
    outputs = [render(result, fmt) for fmt in ("table", "json", "markdown", "html", "junit")]
    secrets = fleet.env_secrets(h.report.name for h in result.hosts)
    secrets |= {secret for _, secret in fleet.sandbox.keys().values()}
    assert secrets
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    # every request the auditor made, on the hosts and the controller (tagged by its
    # user agent), was read-only
    ours = [r for r in fleet.sandbox.moto.recorded_requests() if "fleet-auditor/" in r["headers"].get("User-Agent", "")]
    assert ours, "the probe's requests should reach moto"
    actions = {(r["headers"].get("X-Amz-Target") or "").split(".")[-1] or _query_action(r) for r in ours}
    assert actions <= READ_ONLY_ACTIONS, actions


def _query_action(request):
    import base64
    import urllib.parse
    body = request.get("body") or ""
    if request.get("body_encoded"):
        body = base64.b64decode(body).decode()
    return urllib.parse.parse_qs(body).get("Action", [""])[0]


# the reference app's own words: an audit of another app must show none of them
REFERENCE_WORDS = ("academy", "video_id", "scripts/", "create_sqs_resources", "check_sqs_worker", "VIDEO_SQS",
                   "AI_SQS", "EXCEL", "DJANGO", "/home/ec2-user")


def test_a_celery_fleet_is_audited_with_its_profile_alone_and_no_word_of_the_reference_app(fleet):
    inventory = fleet.use("celery-healthy")
    auditor = yaml.safe_load(inventory.read_text())["all"]["vars"]["auditor"]
    assert (auditor["profile"], auditor["celery_app"]) == ("celery", "shop.celery:app")
    assert not {"queues", "role_defs", "roles", "region", "credentials"} & set(auditor)     # the profile says them
    result = fleet.audit_until(lambda r: golden.matches(SCENARIOS["celery-healthy"], r))
    assert golden.matches(SCENARIOS["celery-healthy"], result)
    assert [q.name for q in result.hosts[1].report.probe.queues] == ["shop-encode"]     # kombu's name, resolved
    for fmt in ("table", "json", "markdown", "html", "junit"):
        text = render(result, fmt).lower()
        assert not [word for word in REFERENCE_WORDS if word.lower() in text], fmt


def _compared(flow):
    """AWS's and the hosts' per-minute totals over the minutes both cover: AWS's whole minutes after
    the one the API's logs began in."""
    began = min((m for per in flow.counts.get("sent", {}).values() for m in per), default=None)
    minutes = [m for m in flow.aws.get("AWS sent", {}) if began and m > began]

    def logged(kind):
        return sum(per.get(m, 0) for per in flow.counts.get(kind, {}).values() for m in minutes)

    def counted(label):
        return sum(flow.aws[label].get(m, 0) for m in minutes)
    return {"sent": (counted("AWS sent"), logged("sent")), "received": (counted("AWS received"), logged("received")),
            "deleted": (counted("AWS deleted"), logged("completed"))}


def test_aws_account_reconciles_with_what_the_healthy_fleet_logged(fleet):
    """AWS's sent, received and deleted (the sandbox's publisher, from what moto did) equal the
    lines the API and the workers logged over the same minutes, within one job at each edge."""
    fleet.use("healthy")
    result = fleet.audit_until(lambda r: len(r.job_flow) == 2 and all(
        _compared(flow)["sent"][0] >= 10 for flow in r.job_flow), cross_check=True)
    assert [(f.code, f.hosts) for f in result.findings] == []
    for flow in result.job_flow:
        for kind, (counted, logged) in _compared(flow).items():
            assert counted >= 10 and abs(counted - logged) <= 2, (flow.key, kind, counted, logged)
