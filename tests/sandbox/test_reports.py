"""Reports, baseline drift and snapshot diff on real audits of two scenarios."""
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

from auditor import audit, drift
from auditor.render import render
from auditor.render.table import matrix_table
from sandbox import golden
from sandbox.scenarios import SCENARIOS

FAB = str(Path(sys.executable).parent / "fab")


def test_matrix_highlights_the_wrong_region_and_reports_render(fleet, tmp_path):
    fleet.use("worker-wrong-region")
    # the scenario's whole story, not its first finding: on a slow machine the AI worker may not have
    # taken the API's latest job yet when the region mismatch already shows
    result = fleet.audit_until(lambda r: golden.matches(SCENARIOS["worker-wrong-region"], r))
    rows = {row.attribute: row for row in result.matrix}
    assert rows["app region"].deviating == ("video-1",)
    assert [a for a, row in rows.items() if row.deviating] == ["app region", "aws-cli region"]
    plain = matrix_table(result, colour=False)
    region_line = next(line for line in plain.splitlines() if line.startswith("app region"))
    assert region_line.count("!") == 1 and "! us-east-1" in region_line
    document = json.loads(render(result, "json"))
    assert [r["deviating"] for r in document["matrix"] if r["attribute"] == "app region"] == [["video-1"]]
    markdown = render(result, "markdown")
    assert "**us-east-1** (deviates)" in markdown and "region-mismatch" in markdown
    junit = ElementTree.fromstring(render(result, "junit"))
    failing = {(case.get("classname"), case.get("name")) for case in junit.iter("testcase")
               if case.find("failure") is not None}
    assert ("fleet-audit.video-1", "Step 4 - fleet comparison") in failing
    assert ("fleet-audit.video-1", "Step 1 - SQS from the app's own environment") in failing
    assert not {case for case in failing if case[0] != "fleet-audit.video-1"}
    assert len(list(junit.iter("testcase"))) == 4 * len(result.hosts)
    # the matrix alone, from the command line: the same marks, and nothing else on stdout
    alone = subprocess.run([FAB, "audit", "-i", str(fleet.sandbox.inventory), "--matrix-only"], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, NO_COLOR="1"))
    assert alone.returncode == 1, alone.stderr
    assert alone.stdout.splitlines()[0].split() == ["attribute"] + [h.report.name for h in result.hosts]
    assert "! us-east-1" in alone.stdout and "severity" not in alone.stdout and "\033[" not in alone.stdout


def test_baseline_drift_and_snapshot_diff(fleet, tmp_path):
    fleet.use("healthy")
    healthy = fleet.audit_until(lambda r: r.exit_code == 0)
    baseline = {"app region": "ap-northeast-2", "account": "123456789012", "queue video name": "academy-video-jobs"}
    assert drift.drift(healthy, baseline) == []
    old = tmp_path / "healthy.json"
    old.write_text(render(healthy, "json"))
    # an unchanged fleet audited again: fingerprints compare across audits, so no value changed
    # (job activity may: findings such as worker-no-activity follow the jobs of the moment)
    again = tmp_path / "healthy-again.json"
    again.write_text(render(audit.run_audit(fleet.sandbox.inventory), "json"))
    changes = drift.diff_snapshots(drift.load_snapshot(old), drift.load_snapshot(again))
    assert not [line for line in changes if " -> " in line and ": verdict " not in line], changes
    unchanged = subprocess.run([FAB, "diff", str(old), str(old)], capture_output=True, text=True, timeout=60)
    assert (unchanged.returncode, unchanged.stdout.strip()) == (0, "no change"), unchanged.stdout
    fleet.use("worker-wrong-region")
    wrong = audit.run_audit(fleet.sandbox.inventory, baseline=baseline)
    assert ("video-1", "app region", "us-east-1", "ap-northeast-2") in drift.drift(wrong, baseline)
    new = tmp_path / "wrong.json"
    new.write_text(render(wrong, "json"))
    lines = drift.diff_snapshots(drift.load_snapshot(old), drift.load_snapshot(new))
    assert "video-1: verdict ok -> config" in lines
    assert "video-1: app region ap-northeast-2 -> us-east-1" in lines
    assert any(line.startswith("new finding: error region-mismatch") for line in lines)
    changed = subprocess.run([FAB, "diff", str(old), str(new)], capture_output=True, text=True, timeout=60)
    assert changed.returncode == 1 and "video-1: verdict ok -> config" in changed.stdout


def test_cross_check_says_where_each_queue_really_is(fleet):
    fleet.use("worker-wrong-region")
    result = fleet.audit_until(lambda r: any(f.code == "queue-elsewhere" for f in r.findings), cross_check=True)
    elsewhere = [f for f in result.findings if f.code == "queue-elsewhere"]
    assert [f.hosts for f in elsewhere] == [("video-1",)]
    assert "is in ap-northeast-2 (account 123456789012); video-1 looks in us-east-1" in elsewhere[0].message
    check = result.cross_check
    assert check.identities == {"sandbox-production": {"account": "123456789012"},
                                "sandbox-staging": {"account": "210987654321"}}
    assert "us-east-1" in check.regions and len(check.regions) > 10    # every SQS region, by default
    assert {(s.name, s.region, s.account) for s in check.sightings} == {
        ("academy-video-jobs", "ap-northeast-2", "123456789012"),
        ("academy-ai-jobs-basic", "ap-northeast-2", "123456789012")}
    assert json.loads(render(result, "json"))["cross_check"]["found"][0]["name"] == "academy-ai-jobs-basic"
    # the same for one host, from the command line, after the runbook's steps
    steps = subprocess.run([FAB, "check-host", "video-1", "-i", str(fleet.sandbox.inventory), "--cross-check"],
                           capture_output=True, text=True, timeout=120)
    assert steps.returncode == 1, steps.stderr
    where = steps.stdout.split("Where the queues are (the controller's own AWS view): FAIL")[1]
    assert "academy-video-jobs: ap-northeast-2 (account 123456789012" in where and "queue-elsewhere" in where
    done, total = map(int, re.findall(r"cross-check: (\d+)/(\d+) lookups done", steps.stderr)[-1])
    assert done == total == len(check.regions) * 2 * 2                 # regions x queues x profiles

    fleet.use("other-account")
    result = audit.run_audit(fleet.sandbox.inventory, cross_check=True)
    copies = {s.account for s in result.cross_check.sightings if s.name == "academy-video-jobs"}
    assert copies == {"123456789012", "210987654321"}
    assert "queue-elsewhere" not in {f.code for f in result.findings}
    # the matrix points at video-1 twice: its account, and its queue URL (a 1:1 tie the API breaks)
    assert {row.attribute: row.deviating for row in result.matrix if row.deviating} == {
        "account": ("video-1",), "queue video url": ("video-1",)}


def test_aws_account_of_each_queue_is_read_where_it_can_be_and_said_where_it_cannot(fleet, tmp_path):
    """AWS's own per-minute account (CloudWatch AWS/SQS) and the queue's survival attributes, read
    with the controller's profiles: values where AWS has them, `not read` with its reason where it
    has none or may not be asked, never zeros."""
    import datetime
    from auditor import controller, queue_account
    from auditor.inventory import load_inventory
    from sandbox.moto_server import ADMIN_USER
    fleet.use("healthy")
    keys = fleet.sandbox.keys()
    cloudwatch = fleet.sandbox.moto.admin_client("cloudwatch", keys)
    minute = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    dimensions = [{"Name": "QueueName", "Value": "academy-video-jobs"}]
    cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=[
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": minute - datetime.timedelta(minutes=back),
         "Value": value, "Unit": "Count"}
        for name, values in (("NumberOfMessagesSent", (7, 6, 5)), ("ApproximateAgeOfOldestMessage", (45, 30, 15)))
        for back, value in enumerate(values)])
    result = audit.run_audit(fleet.sandbox.inventory, cross_check=True)
    accounts = {(a.name, a.profile): a for a in result.cross_check.accounts}
    video = accounts[("academy-video-jobs", "sandbox-production")]
    assert video.total("NumberOfMessagesSent") == 18 and video.largest("ApproximateAgeOfOldestMessage") == 45
    assert video.unjudged is None and int(video.attributes["MessageRetentionPeriod"]) > 0
    assert video.total("NumberOfMessagesDeleted") is None       # no data points: unknown, not zero
    ai = accounts[("academy-ai-jobs-basic", "sandbox-production")]
    assert ai.unjudged.startswith("no data points") and ai.total("NumberOfMessagesSent") is None
    table = render(result, "table")
    assert "AWS's account of each queue" in table
    row = next(line for line in table.splitlines() if line.startswith("academy-ai-jobs-basic") and "no data" in line)
    assert " 0 " not in row and "?" in row
    document = json.loads(render(result, "json"))["cross_check"]["accounts"]
    assert {a["name"] for a in document} == {"academy-video-jobs", "academy-ai-jobs-basic"}
    # a principal that may read SQS but not CloudWatch: said per queue, not a failed audit
    worker = next(user for user in keys if user != ADMIN_USER)
    credentials = tmp_path / "credentials"
    credentials.write_text("[sqs-only]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % keys[worker])
    config = tmp_path / "config"
    config.write_text("[profile sqs-only]\nregion = ap-northeast-2\nendpoint_url = %s\n" % fleet.sandbox.moto.endpoint)
    spec = load_inventory(fleet.sandbox.inventory)[0]
    settings = replace(spec.settings.cross_check, profiles=("sqs-only",), regions=("ap-northeast-2",),
                       config_file=str(config), credentials_file=str(credentials))
    check = controller.cross_check({"academy-video-jobs"}, settings, 5)
    assert [s.name for s in check.sightings] == ["academy-video-jobs"]
    denied = queue_account.read_accounts(check, 3600, 5, settings)
    assert [a.unjudged.split(" (")[0] for a in denied] == ["cloudwatch:GetMetricData was denied"], denied
    assert denied[0].attributes["VisibilityTimeout"] and denied[0].total("NumberOfMessagesSent") is None
