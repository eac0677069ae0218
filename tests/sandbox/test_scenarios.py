"""Each scenario yields its expected findings on the expected hosts, and the
other hosts stay `ok`, against real SSH, Docker and the SQS API."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor import audit
from auditor.render import render
from auditor.sandbox.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")
READ_ONLY_ACTIONS = {"GetQueueUrl", "GetQueueAttributes", "GetCallerIdentity"}


def codes_by_host(result):
    """Every finding code that names each host, its own and the fleet-wide ones."""
    return {h.report.name: {f.code for f in result.findings if h.report.name in f.hosts} for h in result.hosts}


def has_expected(scenario):
    def check(result):
        found = codes_by_host(result)
        return all(code in found[host] for host, code in scenario.expect)
    return check


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "healthy"])
def test_scenario_yields_expected_codes_on_expected_hosts(fleet, name):
    scenario = SCENARIOS[name]
    fleet.use(name)
    result = fleet.audit_until(has_expected(scenario))
    found = codes_by_host(result)
    for host, code in scenario.expect:
        assert code in found[host], "%s: expected %s on %s, got %s" % (name, code, host, found)
    affected = {host for host, _ in scenario.expect}
    for host in result.hosts:
        if host.report.name not in affected:
            assert host.verdict == "ok", "%s: %s should stay ok: %s" % (name, host.report.name, found)
    assert result.exit_code == 1 or all(f.severity != "error" for f in result.findings)


EXPECTED_VERDICTS = {
    "worker-wrong-region": ("video-1", "config"), "worker-down": ("video-1", "worker-down"),
    "crash-loop": ("ai-1", "worker-down"), "host-unreachable": ("ai-1", "unreachable"),
    "poison-job": ("ai-1", "code-suspect"), "invalid-key": ("api-1", "config"),
    # a fleet-wide mismatch marks the odd host, though its own checks pass
    "other-account": ("video-1", "config"),
}


def test_healthy_fleet_has_no_error_and_exits_zero(fleet):
    inventory = fleet.use("healthy")
    result = fleet.audit_until(lambda r: not r.findings, timeout=20)
    assert [h.verdict for h in result.hosts] == ["ok", "ok", "ok"]
    assert [(f.code, f.hosts) for f in result.findings] == []
    assert not [row.attribute for row in result.matrix if row.deviating]
    # the same through the real command line, JSON on stdout only
    done = subprocess.run([FAB, "audit", "-i", str(inventory), "--format", "json"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["schema"] == "fleet-audit/1"
    assert {h["name"]: h["verdict"] for h in document["hosts"]} == {"api-1": "ok", "video-1": "ok", "ai-1": "ok"}
    assert "hosts done" in done.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED_VERDICTS))
def test_verdicts_follow_the_runbook(fleet, name):
    fleet.use(name)
    host, verdict = EXPECTED_VERDICTS[name]
    result = fleet.audit_until(lambda r: {h.report.name: h.verdict for h in r.hosts}[host] == verdict)
    assert {h.report.name: h.verdict for h in result.hosts}[host] == verdict


@pytest.mark.parametrize("name", ["healthy", "r2-keys", "wrong-secret"])
def test_no_secret_in_any_output_and_probe_is_read_only(fleet, name):
    fleet.use(name)
    result = audit.run_audit(fleet.sandbox.inventory, cross_check=True)
    outputs = [render(result, fmt) for fmt in ("table", "json", "markdown", "html", "junit")]
    env_files = [(fleet.host(h.report.name).app_dir / ".env").read_text() for h in result.hosts]
    secrets = {value for text in env_files for line in text.splitlines() if "=" in line
               for key, value in [line.split("=", 1)] if "SECRET" in key or key.endswith("ACCESS_KEY_ID")}
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
