"""Fault matrix, Ctrl-C: on a large inventory of hosts that never answer, the first SIGINT
stops the audit within about 2 s, prints the report with the hosts not audited, exits 130."""
import json
import os
import signal
import subprocess
import time

from faultkit import FAB, ROOT, silent_listener


def test_ctrl_c_returns_fast_with_the_report_and_exit_130(inventory):
    listener = silent_listener()
    port = listener.getsockname()[1]
    hosts = {"h%04d" % n: {"ansible_host": "127.0.0.1", "ansible_port": port} for n in range(1000)}
    path = inventory(hosts=hosts, auditor={"parallel": 100})
    process = subprocess.Popen([FAB, "audit", "-i", str(path), "--format", "json"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, NO_COLOR="1"))
    time.sleep(4)                       # connections are open and hanging by now
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    took = time.monotonic() - sent
    listener.close()
    assert process.returncode == 130, err[-2000:]
    assert took < 4, took
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "interrupted: 1000 host(s) not audited" in err
    document = json.loads(out)
    assert len(document["hosts"]) == 1000
    assert {f["code"] for f in document["findings"]} == {"host-not-audited"}
