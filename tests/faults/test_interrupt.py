"""Fault matrix, Ctrl-C and SIGTERM: on a large inventory of hosts that never answer, the signal
stops the audit at once, the report lists the hosts not audited, and the exit code says which
signal it was (130, 143). The signal is sent once the audit is really connecting (its connections
are counted), not after a fixed sleep: on a loaded machine, start-up alone can take seconds, and a
signal during imports tests nothing. The duration asserted here has a wide margin; how fast it
really is belongs in a benchmark, not in a test."""
import json
import os
import signal
import subprocess
import time

import pytest

from faultkit import FAB, ROOT, peer


@pytest.mark.parametrize("signum, code, words", [
    (signal.SIGINT, 130, "interrupted: 1000 host(s) not audited"),
    (signal.SIGTERM, 143, "terminated (SIGTERM): 1000 host(s) not audited"),
])
def test_a_signal_returns_promptly_with_the_report_and_its_exit_code(inventory, tmp_path, signum, code, words):
    listener, accepted = peer()
    port = listener.getsockname()[1]
    hosts = {"h%04d" % n: {"ansible_host": "127.0.0.1", "ansible_port": port} for n in range(1000)}
    path = inventory(hosts=hosts, auditor={"parallel": 100, "timeouts": {"connect": 60}})
    report = tmp_path / "report.json"
    process = subprocess.Popen([FAB, "audit", "-i", str(path), "--format", "json", "--output", str(report)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, NO_COLOR="1"))
    deadline = time.monotonic() + 90
    while accepted() < 100 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert accepted() >= 100, "the audit never connected"
    sent = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    took = time.monotonic() - sent
    listener.close()
    assert process.returncode == code, err[-2000:]
    assert took < 20, took
    assert "Traceback" not in err and "Exception ignored" not in err
    assert words in err
    document = json.loads(report.read_text())
    assert len(document["hosts"]) == 1000
    assert {f["code"] for f in document["findings"]} == {"host-not-audited"}
    assert document["exit_code"] == code                # the report says how the run ended
