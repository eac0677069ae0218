"""Seams that run without root or a sandbox: the EC2 inventory and the controller's cross-check
against moto's in-process AWS (`mock_aws`: the same API, no server), a saved audit diffed with
another, and the preflight's drift rule on a recorded fleet."""
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from auditor import audit, controller, crosshost, drift
from auditor.inventory import load_inventory
from auditor.render import render
from auditor.settings import CrossCheckSettings
from sandbox import golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with mock_aws():
        yield


def test_ec2_instances_become_hosts_grouped_by_tag(aws, tmp_path):
    ec2 = boto3.client("ec2", region_name="ap-northeast-2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for name, role in (("api-1", "api"), ("video-1", "video-worker"), ("elsewhere", "api")):
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": name}, {"Key": "Role", "Value": role},
            {"Key": "Project", "Value": "other" if name == "elsewhere" else "academy"}]}])
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "role_video_worker.yml").write_text("auditor: {roles: [video-worker]}\n")
    (tmp_path / "group_vars" / "role_api.yml").write_text("auditor: {roles: [api]}\n")
    path = tmp_path / "fleet.aws_ec2.yml"
    path.write_text("plugin: amazon.aws.aws_ec2\nregions: [ap-northeast-2]\nfilters: {tag:Project: academy}\n"
                    "hostnames: [tag:Name]\nkeyed_groups: [{key: tags.Role, prefix: role}]\n")
    specs = {spec.name: spec for spec in load_inventory(path)}
    assert sorted(specs) == ["api-1", "video-1"]                  # the filter left the other project out
    assert specs["video-1"].roles == ("video-worker",) and "role_video_worker" in specs["video-1"].groups
    assert specs["api-1"].address.startswith("10.")               # the private address, by default


def test_the_cross_check_finds_each_queue_where_it_is_and_says_where_it_is_not(aws):
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="academy-video-jobs")
    check = controller.cross_check(["academy-video-jobs", "academy-ai-jobs-basic"],
                                   CrossCheckSettings(regions=("ap-northeast-2", "us-east-1")), timeout=5)
    assert [(s.name, s.region) for s in check.sightings] == [("academy-video-jobs", "us-east-1")]
    assert check.where("academy-ai-jobs-basic") == [] and set(check.regions) == {"ap-northeast-2", "us-east-1"}
    assert list(check.identities.values())[0]["account"]


def _snapshot(name, tmp_path):
    result = audit.assess(golden.runs_of(json.loads((GOLDEN / ("%s.json" % name)).read_text())))
    path = tmp_path / ("%s.json" % name)
    path.write_text(render(result, "json"))
    return result, drift.load_snapshot(path)


def test_diff_of_two_saved_audits_says_what_changed(tmp_path):
    _, healthy = _snapshot("healthy", tmp_path)
    _, broken = _snapshot("worker-wrong-region", tmp_path)
    lines = drift.diff_snapshots(healthy, broken)
    assert "video-1: verdict ok -> config" in lines
    assert any(line.startswith("video-1: app region ap-northeast-2 -> us-east-1") for line in lines)
    assert any(line.startswith("new finding: error region-mismatch on video-1") for line in lines)
    assert drift.diff_snapshots(healthy, healthy) == []


def test_preflight_drift_names_the_hosts_off_the_baseline_and_passes_a_matching_one(tmp_path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("app region: ap-northeast-2\n")
    expected = drift.load_baseline(baseline)
    healthy = audit.assess(golden.runs_of(json.loads((GOLDEN / "healthy.json").read_text())), baseline=expected)
    assert drift.drift(healthy, expected) == []
    broken = audit.assess(golden.runs_of(json.loads((GOLDEN / "worker-wrong-region.json").read_text())),
                          baseline=expected)
    assert drift.drift(broken, expected) == [("video-1", "app region", "us-east-1", "ap-northeast-2")]


@pytest.mark.parametrize("scenario, strict, failure", [
    ("healthy", False, None),
    ("healthy", True, None),
    ("default-region-only", False, None),       # one warning: passes unless --strict
    ("default-region-only", True, "preflight failed: 0 drifted value(s), 0 error finding(s), 1 warning(s) (--strict)"),
    ("docker-down", False, "preflight failed: 0 drifted value(s), 1 error finding(s)"),
])
def test_preflight_fails_on_errors_and_with_strict_on_warnings(scenario, strict, failure):
    result = audit.assess(golden.runs_of(json.loads((GOLDEN / ("%s.json" % scenario)).read_text())))
    assert drift.preflight_failure(result, [], strict) == failure


def test_preflight_fails_on_drift_alone():
    result = audit.assess(golden.runs_of(json.loads((GOLDEN / "healthy.json").read_text())))
    drifted = [("video-1", "app region", "us-east-1", "ap-northeast-2")]
    assert drift.preflight_failure(result, drifted, False) == "preflight failed: 1 drifted value(s), 0 error finding(s)"


@pytest.mark.parametrize("scenario", ["worker-down", "idle-worker", "wrong-secret"])
def test_an_audit_of_part_of_the_fleet_leaves_what_the_others_did_unjudged(scenario):
    """check-host api-1, or --hosts/--roles: consumers left out of the audit may have taken the jobs
    and may poll the backlog; "no running worker polls it" would be a guess, and a false error."""
    runs = golden.runs_of(json.loads((GOLDEN / ("%s.json" % scenario)).read_text()))
    whole = {f.code for f in audit.assess(runs).findings}
    assert whole & {"backlog-no-consumer", "jobs-not-consumed"}
    api = [run for run in runs if "api" in run.spec.roles]
    part = audit.assess(api, left_out=[run.spec for run in runs if run not in api])
    assert not {f.code for f in part.findings} & {"backlog-no-consumer", "jobs-not-consumed"}
    notes = {f.evidence["queue"]: f for f in part.findings if f.evidence.get("reason") == "not-audited"}
    assert notes["video"].severity == "info" and notes["video"].message.endswith("left out its consumer(s) video-1")
    assert "add video-1 to --hosts/--roles" in notes["video"].remedy
    # the whole fleet, or every consumer of the queue audited: judged as before
    assert {f.code for f in audit.assess(runs, left_out=()).findings} == whole


def test_left_out_workers_that_consume_every_queue_of_their_app_count_for_each_queue_used():
    runs = golden.runs_of(json.loads((GOLDEN / "celery-healthy.json").read_text()))
    web = [run for run in runs if run.spec.name == "web-1"]
    hosts = audit.assess(web).hosts
    users = crosshost.queue_users(hosts, lambda host: web[0].spec.settings, [run.spec for run in runs if run not in web])
    assert users.keys == ["encode"] and users.left_out_consumers == {"encode": ("worker-1", "worker-2")}
