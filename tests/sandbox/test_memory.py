"""The history against the real sandbox: two audits of a healthy fleet, then the video worker's
region broken; the third audit says since when it worked and exactly what changed."""
import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox import golden
from sandbox.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")


def fab(*args):
    return subprocess.run([FAB, *args], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, NO_COLOR="1"))


def matrix_of(document, host):
    return {row["attribute"]: row["cells"].get(host) for row in document["matrix"] if host in row["cells"]}


def test_a_broken_host_names_its_last_ok_audit_and_what_changed_and_history_and_diff_agree(fleet, tmp_path):
    kept = str(tmp_path / "history.sqlite")
    inventory = str(fleet.use("healthy"))
    fleet.audit_until(lambda r: not r.findings)
    saved = []
    for n in range(2):
        saved.append(tmp_path / ("healthy-%d.json" % n))
        done = fab("audit", "-i", inventory, "-f", "json", "-o", str(saved[-1]), "--history", kept)
        assert done.returncode == 0, done.stderr[-2000:]
    fleet.use("worker-wrong-region")
    fleet.audit_until(lambda r: golden.matches(SCENARIOS["worker-wrong-region"], r))   # not recorded: in process
    broken = tmp_path / "broken.json"
    done = fab("audit", "-i", inventory, "-f", "json", "-o", str(broken), "--history", kept)
    assert done.returncode == 1, done.stderr[-2000:]
    before, after = (json.loads(path.read_text()) for path in (saved[1], broken))
    hosts = {h["name"]: h for h in after["hosts"]}
    since = hosts["video-1"]["since_last_ok"]
    assert since["audit"] == 2 and since["started"] == before["started"]
    changed_values = {"%s %s -> %s" % (attribute, matrix_of(before, "video-1").get(attribute, "-"), value)
                      for attribute, value in matrix_of(after, "video-1").items()
                      if matrix_of(before, "video-1").get(attribute) != value}
    assert "app region ap-northeast-2 -> us-east-1" in changed_values
    assert {c for c in since["changes"] if not c.startswith(("new finding", "academy-"))} == changed_values
    new_codes = {f["code"] for f in after["findings"] if "video-1" in f["hosts"]} - \
        {f["code"] for f in before["findings"] if "video-1" in f["hosts"]}
    assert {c[len("new finding "):] for c in since["changes"] if c.startswith("new finding")} == new_codes
    assert [h["since_last_ok"] for name, h in hosts.items() if name != "video-1"] == [None, None]     # still ok
    # `history` shows the change once
    timeline = json.loads(fab("history", "--host", "video-1", "-f", "json", "--history", kept).stdout)
    assert [entry["audit"] for entry in timeline if "verdict ok -> config" in entry["changes"]] == [3]
    # `diff last-ok last` says what diff of the two saved files says
    from_history = fab("diff", "last-ok", "last", "--history", kept)
    from_files = fab("diff", str(saved[1]), str(broken))
    assert from_history.returncode == from_files.returncode == 1
    assert from_history.stdout == from_files.stdout and "video-1: verdict ok -> config" in from_files.stdout
    # the table says it under the host, as every format does
    table = fab("audit", "-i", inventory, "--no-matrix", "--history", kept)
    assert "since %s (ok, audit 2): " % before["started"].replace("T", " ")[:16] in table.stdout


def families(text):
    from prometheus_client.parser import text_string_to_metric_families
    return {family.name: {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}
            for family in text_string_to_metric_families(text)}


def test_watch_publishes_every_round_to_prometheus_sees_a_host_go_and_stops_on_sigterm(fleet, tmp_path):
    import signal
    import time
    import urllib.request
    from auditor.history import History
    from sandbox.system import free_port
    inventory = str(fleet.use("healthy"))
    fleet.audit_until(lambda r: not r.findings)
    kept, textfile, port = tmp_path / "history.sqlite", tmp_path / "fleet.prom", free_port()
    watcher = subprocess.Popen([FAB, "watch", "-i", inventory, "--every", "2s", "--listen", "127.0.0.1:%d" % port,
                                "--textfile", str(textfile), "--history", str(kept)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1"))

    def published(predicate, what):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert watcher.poll() is None, watcher.communicate()[1][-2000:]
            if textfile.exists():
                found = families(textfile.read_text())
                if predicate(found):
                    return found
            time.sleep(0.5)
        raise AssertionError("the watch never published %s" % what)

    try:
        found = published(lambda f: f.get("fleet_audit_host_reachable"), "a round")
        assert found["fleet_audit_host_reachable"] == {(("host", h),): 1.0 for h in ("api-1", "video-1", "ai-1")}
        assert found["fleet_audit_host_verdict"][(("host", "api-1"), ("verdict", "ok"))] == 1.0
        assert found["fleet_audit_host_verdict"][(("host", "api-1"), ("verdict", "config"))] == 0.0
        served = families(urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode())
        assert set(served["fleet_audit_host_reachable"]) == set(found["fleet_audit_host_reachable"])
        assert served["fleet_audit_last_success_timestamp_seconds"][()] > 0
        fleet.use("host-unreachable")           # ai-1's sshd stops while the watch runs
        found = published(lambda f: f.get("fleet_audit_host_reachable", {}).get((("host", "ai-1"),)) == 0.0,
                          "ai-1 unreachable")
        assert found["fleet_audit_findings"][(("code", "ssh-unreachable"), ("severity", "error"))] == 1.0
        assert found["fleet_audit_host_verdict"][(("host", "ai-1"), ("verdict", "unreachable"))] == 1.0
    finally:
        watcher.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err[-2000:]
    assert time.monotonic() - stopped < 5, "SIGTERM should end the watch at once (2 s on this machine)"
    assert "watch: stopped" in err and "Traceback" not in err
    recorded = History(kept)
    assert recorded.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert recorded.count() >= 2 and recorded.document("last")["hosts"]
    recorded.close()
