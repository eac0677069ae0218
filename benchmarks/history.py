"""History benchmark: how long `fleet-audit history` takes to answer over 10,000 recorded audits,
and what recording one audit of 1,000 hosts costs.

The audits recorded are the sandbox's recorded healthy fleet (tests/golden/healthy.json, as an
audit report) with one host's region changed every 50 audits, so the history has changes to
tell. The cost of recording inside a real audit is measured beside the same audit unrecorded by
benchmarks/scale.py (its "recorded in the history" side); this one times `record` alone.

    python benchmarks/history.py [--audits 10000] [--hosts 1000]
"""
import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.history import History  # noqa: E402

FLEET_AUDIT = str(Path(sys.executable).parent / "fleet-audit")


def report(hosts, region="ap-northeast-2", started="2026-12-01T00:00:00Z"):
    """A report document of `hosts` hosts shaped as the JSON report is (what the history keeps)."""
    names = ["h%04d" % n for n in range(hosts)]
    return {"schema": "fleet-audit/2", "started": started, "inventory": "inventory.yaml", "exit_code": 0,
            "hosts": [{"name": name, "verdict": "ok" if region == "ap-northeast-2" or name != "h0001" else "config",
                       "findings": [], "containers": [{"name": "academy-video-worker", "present": True,
                                                       "image": "academy-video:v41",
                                                       "started_at": "2026-11-30T00:00:00Z"}]}
                      for name in names],
            "findings": [],
            "matrix": [{"attribute": "app region", "cells": {n: region if n == "h0001" else "ap-northeast-2"
                                                             for n in names}},
                       {"attribute": "key id", "cells": {n: "AKIA************0001" for n in names}}]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audits", type=int, default=10000)
    parser.add_argument("--hosts", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-history-bench-"))
    path = work / "history.sqlite"
    kept = History(path, keep_audits=10 ** 7, keep_days=36500)
    big = report(args.hosts)
    started = time.monotonic()
    for n in range(5):
        kept.record(copy.deepcopy(big), "audit")
    per_big = (time.monotonic() - started) / 5
    since_started = time.monotonic()
    kept.since_ok(report(args.hosts, region="us-east-1"))
    since = time.monotonic() - since_started
    started = time.monotonic()
    for n in range(args.audits):
        region = "us-east-1" if (n // 50) % 2 else "ap-northeast-2"
        kept.record(report(3, region, "2026-12-%02dT%02d:%02d:00Z" % (1 + n // 1440 % 28, n // 60 % 24, n % 60)),
                    "audit")
    filling = time.monotonic() - started
    kept.close()
    answers = {}
    for label, argv in (("history --host h0001", ["history", "--host", "h0001"]),
                        ("history (every host)", ["history"]),
                        ("history --host h0001 -f json", ["history", "--host", "h0001", "-f", "json"])):
        started = time.monotonic()
        done = subprocess.run([FLEET_AUDIT, *argv, "--history", str(path)], capture_output=True, text=True)
        answers[label] = (time.monotonic() - started, len(done.stdout.splitlines()), done.returncode)
    print("recording one audit of %d hosts: %.3f s; what changed since the last ok audit, for %d hosts: %.3f s" % (
        args.hosts, per_big, args.hosts, since))
    print("%d audits recorded in %.1f s; the file: %.1f MB" % (args.audits + 5, filling, path.stat().st_size / 1e6))
    print("| command over %d audits | answer (wall, process included) | lines |" % (args.audits + 5))
    print("|---|---|---|")
    for label, (seconds, lines, code) in answers.items():
        print("| `fleet-audit %s` | %.2f s | %d |" % (label, seconds, lines))


if __name__ == "__main__":
    main()
