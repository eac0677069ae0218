"""Cross-host rules and the matrix, on hand-made host results (pure functions)."""
import dataclasses

from auditor.audit import HostResult
from auditor.crosshost import build_matrix, cross_host_findings
from auditor.facts import Credentials, HostReport, ProbeReading, QueueReading, RegionReading
from auditor.inventory import host_settings

DEFAULT_SETTINGS = host_settings({})     # the reference profile, resolved


def host(name, role, region="ap-northeast-2", account="111111111111", key_fp="k1", secret_fp="s1",
         key_id="AKIA************AAAA", url="https://sqs/111111111111/q"):
    queue_key = "video"
    probe = ProbeReading(env_source="container:x", regions={"app": RegionReading(region, "env:AWS_REGION")},
                         credentials=Credentials("env:AWS_ACCESS_KEY_ID", key_id, key_fp, secret_fp, True),
                         account=account, queues=(QueueReading(queue_key, "academy-video-jobs", region, url=url),))
    report = HostReport(name=name, roles=(role,), address="127.0.0.1", transport_kind="ok", reachable=True, probe=probe)
    return HostResult(report, ())


def codes(hosts):
    return {f.code: set(f.hosts) for f in cross_host_findings(hosts, lambda h: DEFAULT_SETTINGS)}


def test_same_key_id_with_another_secret_is_a_secret_mismatch():
    fleet = [host("api-1", "api"), host("video-1", "video-worker"), host("video-2", "video-worker", secret_fp="s2")]
    found = codes(fleet)
    assert found["secret-mismatch"] == {"video-2"}
    assert "key-mismatch" not in found


def test_the_secret_aws_accepted_wins_a_tie():
    # video-1's stale secret fails to authenticate (no account), video-2's works
    fleet = [host("video-1", "video-worker", secret_fp="s-stale", account=None),
             host("video-2", "video-worker", secret_fp="s-good")]
    assert codes(fleet)["secret-mismatch"] == {"video-1"}


def test_account_region_and_url_mismatches_name_the_odd_host():
    fleet = [host("api-1", "api"), host("video-1", "video-worker"),
             host("video-2", "video-worker", region="us-east-1", account="222222222222", key_fp="k2",
                  key_id="AKIA************BBBB", url="https://sqs/222222222222/q")]
    found = codes(fleet)
    assert found["region-mismatch"] == {"video-2"}
    assert found["account-mismatch"] == {"video-2"}
    assert found["queue-url-mismatch"] == {"video-2"}
    assert found["no-producer-region"] == {"video-2"}
    assert found["key-mismatch"] == {"video-1", "video-2"}


def test_matrix_highlights_exactly_the_deviating_cells():
    fleet = [host("api-1", "api"), host("video-1", "video-worker"), host("ai-1", "ai-worker", region="us-east-1")]
    rows = {row.attribute: row for row in build_matrix(fleet)}
    assert rows["app region"].deviating == ("ai-1",)
    assert rows["app region"].expected == {"ai-1": "ap-northeast-2"}
    assert all(not row.deviating for name, row in rows.items() if name != "app region")
    # with a baseline, the baseline decides, not the majority
    rows = {row.attribute: row for row in build_matrix(fleet, baseline={"app region": "us-east-1"})}
    assert set(rows["app region"].deviating) == {"api-1", "video-1"}


def test_healthy_fleet_has_no_cross_host_finding():
    assert codes([host("api-1", "api"), host("video-1", "video-worker")]) == {}


def test_controller_sighting_names_where_the_missing_queue_is():
    from auditor.controller import QueueLocations, Sighting
    from auditor.crosshost import cross_check_findings
    lost = host("video-1", "video-worker", region="us-east-1", url=None)
    lost = HostResult(dataclasses.replace(lost.report, probe=dataclasses.replace(
        lost.report.probe, queues=(QueueReading("video", "academy-video-jobs", "us-east-1",
                                                error_code="AWS.SimpleQueueService.NonExistentQueue"),))), ())
    check = QueueLocations(("academy-video-jobs",), ("ap-northeast-2", "us-east-1"),
                       {"prod": {"account": "111111111111"}, "staging": {"error": "InvalidClientTokenId"}},
                       (Sighting("academy-video-jobs", "ap-northeast-2", "111111111111", "prod", "https://q"),))
    found = {f.code: f for f in cross_check_findings([host("api-1", "api"), lost], check, lambda h: DEFAULT_SETTINGS)}
    assert found["queue-elsewhere"].hosts == ("video-1",)
    assert "is in ap-northeast-2 (account 111111111111); video-1 looks in us-east-1" in found["queue-elsewhere"].message
    assert "AWS_REGION" in found["queue-elsewhere"].remedy
    assert found["cross-check-failed"].hosts == ("controller",)


def test_producers_break_a_tie_in_the_matrix():
    fleet = [host("api-1", "api"), host("video-1", "video-worker", url="https://sqs/222222222222/q")]
    rows = {row.attribute: row for row in build_matrix(fleet, producers=["api-1"])}
    assert rows["queue video url"].deviating == ("video-1",)
    assert rows["queue video url"].expected == {"video-1": "https://sqs/111111111111/q"}
    assert not {row.attribute: row for row in build_matrix(fleet)}["queue video url"].deviating


def test_a_baseline_with_an_unknown_attribute_is_refused(tmp_path):
    import pytest

    from auditor.drift import load_baseline
    from auditor.errors import UsageError
    good = tmp_path / "good.yaml"
    good.write_text("app region: ap-northeast-2\nqueue video name: academy-video-jobs\nimage: {api: academy-api:v42}\n")
    assert load_baseline(good)["image"] == {"api": "academy-api:v42"}
    typo = tmp_path / "typo.yaml"
    typo.write_text("app regoin: ap-northeast-2\n")
    with pytest.raises(UsageError, match="did you mean 'app region'"):
        load_baseline(typo)


def test_remedies_name_the_apps_own_region_variable():
    from auditor.inventory import deep_merge
    settings = host_settings({"region": {"env": ["APP_AWS_REGION"]}})
    fleet = [host("api-1", "api"), host("video-1", "video-worker", region="us-east-1")]
    found = {f.code: f for f in cross_host_findings(fleet, lambda h: settings)}
    assert found["region-mismatch"].remedy.startswith("set APP_AWS_REGION on video-1 to ap-northeast-2")


def test_one_rule_decides_every_odd_one_out():
    from auditor.crosshost import shared_value
    two_to_one = {"a": "x", "b": "x", "c": "y"}
    assert shared_value(two_to_one) == ("x", ("c",))
    assert shared_value(two_to_one, proven=["c"]) == ("y", ("a", "b"))          # what AWS accepted wins
    tie = {"a": "x", "b": "y"}
    assert shared_value(tie) == (None, ())                                       # nobody is blamed
    assert shared_value(tie, evidence=["b"]) == ("y", ("a",))
    assert shared_value(tie, producers=["a"]) == ("x", ("b",))
    assert shared_value(tie, evidence=["b"], producers=["a"]) == ("y", ("a",))  # evidence before producers
    assert shared_value({}) == (None, ())
