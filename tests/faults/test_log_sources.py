"""Log sources for hosts without Docker, through the agent's own readers: a rotated file
(newest lines kept, older lines outside the window dropped) and journald. journald and
systemd do not run here: `journalctl` and `systemctl` are stand-in scripts on PATH that
print what the real ones print."""
import gzip
import os
import time

from auditor.agent import containers, logs
from auditor.agent.wire import WorkloadConfig, from_wire

MARKERS = [{"name": "received", "kind": "received", "pattern": r"SQS_MESSAGE_RECEIVED .*?job_id=(?P<job>\w+)",
            "queue": None}]


def stamp(seconds_ago):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - seconds_ago)) + ",000"


def scan(source, name):
    """The agent's scan of one workload's logs, an hour back, at most 1 MiB."""
    return logs.scan_logs(workload(source, name), 3600, 1 << 20, 10)


def workload(source, name="w"):
    return from_wire(WorkloadConfig, {"name": name, "role": "ai-worker", "source": source, "markers": MARKERS})


def test_a_rotated_file_is_read_newest_last_within_the_window(tmp_path):
    log = tmp_path / "worker.log"
    with gzip.open(str(log) + ".2.gz", "wt") as old:
        old.write("%s INFO SQS_MESSAGE_RECEIVED | job_id=ancient\n" % stamp(7200))
    (tmp_path / "worker.log.1").write_text("%s INFO SQS_MESSAGE_RECEIVED | job_id=j1\n" % stamp(1800))
    log.write_text("%s INFO SQS_MESSAGE_RECEIVED | job_id=j2\n" % stamp(60))
    os.utime(str(log) + ".2.gz", (time.time() - 7200, time.time() - 7200))
    result = scan({"kind": "file", "path": str(log)}, str(log))
    assert result["read"]
    assert [job for job, _ in result["markers"]["received"]["jobs"]] == ["j1", "j2"]


def test_a_missing_log_file_is_a_reading_not_taken(tmp_path):
    result = scan({"kind": "file", "path": str(tmp_path / "none.log")}, "x")
    assert result["read"] is False and result["reason"] == "not-found"


def test_journald_and_systemd_state(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "journalctl").write_text("#!/bin/sh\necho \"$@\" > %s/args\necho '%s host worker[7]: "
                                        "SQS_MESSAGE_RECEIVED | job_id=j9'\n" % (tmp_path, stamp(30).replace(" ", "T")[:19] + "+0000"))
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho inactive\nexit 3\n")
    for name in ("journalctl", "systemctl"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    source = {"kind": "journald", "unit": "academy-ai-worker"}
    result = scan(source, "academy-ai-worker")
    assert [job for job, _ in result["markers"]["received"]["jobs"]] == ["j9"]
    assert (tmp_path / "args").read_text().split() == ["-u", "academy-ai-worker", "--since", "-3600s", "-o",
                                                       "short-iso", "--no-pager", "-q"]
    assert containers.process_state(workload(source)) == {"present": True, "status": "inactive"}


def stand_ins(tmp_path, monkeypatch, journalctl, systemctl):
    """journalctl and systemctl as shell scripts on PATH (their bodies), as on a host without them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("journalctl", journalctl), ("systemctl", systemctl)):
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))


JOURNAL = {"kind": "journald", "unit": "academy-ai-worker"}


def test_a_journal_the_user_may_not_read_is_unread_not_a_quiet_worker(tmp_path, monkeypatch):
    # as systemd 252 does: -q hides the notice and exits 0 with no line; without -q it says why
    stand_ins(tmp_path, monkeypatch, 'case "$*" in *-q*) exit 0;; esac\n'
              'echo "No journal files were opened due to insufficient permissions." >&2', "echo active")
    result = scan(JOURNAL, "academy-ai-worker")
    assert result["read"] is False and result["reason"] == "permission-denied"
    assert "insufficient permissions" in result["error"]


def test_a_host_without_systemd_is_unknown_state_and_unread_logs(tmp_path, monkeypatch):
    stand_ins(tmp_path, monkeypatch, 'case "$*" in *-q*) exit 0;; esac\necho "No journal files were found." >&2',
              'echo "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2\n'
              'echo "Failed to connect to bus: Host is down" >&2\nexit 1')
    result = scan(JOURNAL, "academy-ai-worker")
    assert result["read"] is False and result["reason"] == "not-found"
    state = containers.process_state(workload(JOURNAL))
    assert state["present"] is None and "not been booted with systemd" in state["error"]


def test_a_quiet_journal_that_can_be_read_is_read_and_empty(tmp_path, monkeypatch):
    stand_ins(tmp_path, monkeypatch, 'case "$*" in *-q*) exit 0;; esac\necho "-- No entries --"', "echo active")
    result = scan(JOURNAL, "academy-ai-worker")
    assert result["read"] is True
