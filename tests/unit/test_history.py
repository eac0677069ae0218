"""The history file: what it keeps, what it says changed, and that it stays sound when two audits
write at once, when it comes from another version, or when others could read it."""
import multiprocessing
import os
import sqlite3

import pytest

from auditor import history
from auditor.errors import UsageError


def document(verdict="ok", region="ap-northeast-2", image="academy-video:v41", codes=(), started="2026-12-01T09:14:00Z"):
    return {"schema": "fleet-audit/2", "started": started, "inventory": "inventory.yaml", "exit_code": 1 if codes else 0,
            "hosts": [{"name": "video-1", "verdict": verdict,
                       "findings": [{"code": code, "hosts": ["video-1"]} for code in codes],
                       "containers": [{"name": "academy-video-worker", "present": True, "image": image,
                                       "started_at": "2026-12-01T08:00:00Z"}]},
                      {"name": "api-1", "verdict": "ok", "findings": [], "containers": []}],
            "findings": [{"code": code, "hosts": ["video-1"]} for code in codes],
            "matrix": [{"attribute": "app region", "cells": {"video-1": region, "api-1": "ap-northeast-2"}},
                       {"attribute": "key id", "cells": {"video-1": "AKIA****0001", "api-1": "AKIA****0001"}}]}


@pytest.fixture
def kept(tmp_path):
    opened = history.History(tmp_path / "state" / "history.sqlite")
    yield opened
    opened.close()


def test_a_host_not_ok_names_its_last_ok_audit_and_exactly_what_changed(kept):
    first = kept.record(document(), "audit")
    kept.record(document(started="2026-12-01T10:00:00Z"), "audit")
    later = document("config", region="us-east-1", image="academy-video:v42", codes=("region-mismatch",),
                     started="2026-12-02T08:00:00Z")
    since = kept.since_ok(later)
    assert set(since) == {"video-1"}            # api-1 is ok: nothing to say
    assert since["video-1"].audit_id == first + 1 and since["video-1"].started == "2026-12-01T10:00:00Z"
    assert since["video-1"].changes == ("app region ap-northeast-2 -> us-east-1",
                                        "academy-video-worker image academy-video:v41 -> academy-video:v42",
                                        "new finding region-mismatch")
    assert since["video-1"].line().startswith("since 2026-12-01 10:00 (ok, audit 2): app region")


def test_the_timeline_shows_each_change_once_and_references_find_audits(kept):
    for hour in (9, 10):
        kept.record(document(started="2026-12-01T%02d:00:00Z" % hour), "audit")
    for hour in (11, 12):
        kept.record(document("config", region="us-east-1", codes=("region-mismatch",),
                             started="2026-12-01T%02d:00:00Z" % hour), "audit")
    video = [(state.audit_id, changes) for _, state, changes in kept.timeline("video-1")]
    assert video == [(1, ["first audit: ok"]),
                     (3, ["verdict ok -> config", "app region ap-northeast-2 -> us-east-1",
                          "new finding region-mismatch"])]
    assert [changes for _, _, changes in kept.timeline("video-1", "key id")][1:] == [["verdict ok -> config"]]
    assert kept.document("last")["started"] == "2026-12-01T12:00:00Z"
    assert kept.document("last-ok")["started"] == "2026-12-01T10:00:00Z"
    assert kept.document("1")["started"] == "2026-12-01T09:00:00Z"
    assert kept.document("2026-12-01T11:30")["started"] == "2026-12-01T11:00:00Z"
    with pytest.raises(UsageError, match="no recorded audit matches '99'"):
        kept.document("99")
    with pytest.raises(UsageError, match="neither a file nor a history reference"):
        kept.document("yesterday-ish")


def test_it_is_pruned_on_write_by_count_and_by_age(tmp_path):
    kept = history.History(tmp_path / "h.sqlite", keep_days=30, keep_audits=10)
    kept.record(document(started="2020-01-01T00:00:00Z"), "audit")      # older than 30 days: gone at the next write
    for n in range(14):
        kept.record(document(started="2099-01-01T00:%02d:00Z" % n), "audit")
    assert kept.count() == 10
    assert kept.db.execute("SELECT min(started) FROM audits").fetchone()[0] == "2099-01-01T00:04:00Z"
    assert kept.db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 20       # their hosts went with them
    kept.close()


def _write_many(path, start):
    kept = history.History(path)
    for n in range(40):
        kept.record(document(started="2026-12-01T%02d:%02d:00Z" % (start, n)), "audit")
    kept.close()


def test_two_audits_writing_at_once_lose_nothing_and_corrupt_nothing(tmp_path):
    path = tmp_path / "h.sqlite"
    history.History(path).close()
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(path, hour)) for hour in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0]
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM audits").fetchone()[0] == 80
    assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 160
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_of_another_version_is_migrated_or_refused_with_what_to_do(tmp_path):
    old = tmp_path / "old.sqlite"
    sqlite3.connect(str(old)).close()           # version 0: an empty file, as a first run leaves it
    old.chmod(0o600)
    history.History(old).close()
    assert sqlite3.connect(str(old)).execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(str(newer))
    db.execute("PRAGMA user_version = 99")
    db.close()
    newer.chmod(0o600)
    with pytest.raises(history.HistoryRefused, match="(?s)newer fleet-audit \\(schema 99, this one knows 1\\).*upgrade"):
        history.History(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all, but 100 bytes long" * 3)
    junk.chmod(0o600)
    with pytest.raises(history.HistoryRefused, match="not a history file"):
        history.History(junk)


def test_a_file_others_may_read_is_refused_and_a_new_one_is_private(tmp_path):
    fresh = tmp_path / "deep" / "history.sqlite"
    history.History(fresh).close()
    assert fresh.stat().st_mode & 0o777 == 0o600 and fresh.parent.stat().st_mode & 0o777 == 0o700
    fresh.chmod(0o644)
    with pytest.raises(history.HistoryRefused, match="(?s)readable by others.*chmod 600"):
        history.History(fresh)
    link = tmp_path / "link.sqlite"
    os.symlink(fresh, link)
    with pytest.raises(history.HistoryRefused, match="not a regular file"):
        history.History(link)


def test_an_incident_timeline_puts_the_evidence_in_time_order_across_hosts(kept):
    kept.record(document(started="2026-12-01T09:00:00Z"), "audit")
    broken = document("config", region="us-east-1", codes=("region-mismatch",), started="2026-12-01T10:00:00Z")
    broken["hosts"][0]["containers"][0].update(
        started_at="2026-12-01T09:30:00.123456789Z", restart_count=2,
        logs={"read": True, "markers": {"completed": {"kind": "completed", "queue": "video", "count": 4,
                                                      "last": "2026-12-01 09:29:58,120"},
                                        "failed": {"kind": "failed", "queue": "video", "count": 0, "last": None}}})
    kept.record(broken, "audit")
    assert kept.incident() == [
        ("2026-12-01 09:00:00", "api-1", "audit 1: first audit: ok"),
        ("2026-12-01 09:00:00", "video-1", "audit 1: first audit: ok"),
        ("2026-12-01 09:29:58", "video-1", "last completed line of academy-video-worker (completed, 4 in the window)"),
        ("2026-12-01 09:30:00", "video-1", "container academy-video-worker started (academy-video:v41), "
                                           "restarted 2 time(s)"),
        ("2026-12-01 10:00:00", "video-1", "audit 2: verdict ok -> config")]


def test_the_history_as_html_escapes_what_hosts_sent():
    from auditor.render.html import render_history_html
    page = render_history_html("Fleet history", ["time", "host", "event"], [("t", "<b>x</b>", "a & b")])
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "a &amp; b" in page and "<b>x" not in page
