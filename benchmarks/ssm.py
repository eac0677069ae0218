"""SSM benchmark: `fab audit` of N instances through the Run Command stand-in, throttling on.

The stand-in (sandbox/ssm_standin.py) really runs the auditor's command for each instance id as
the SSM agent would (root, the agent's environment, a script in an orchestration directory), with
AWS's behaviours at scale: token-bucket throttling per action (the sandbox's rates, or --rates),
InvocationDoesNotExist for a moment after SendCommand, and paged ListCommandInvocations. The
instances are cheap processes, not containers: each one's `ansible_python_interpreter` is a stub
that prints a recorded agent output (tests/golden/healthy.json), so only the controller and the
API traffic are measured. Reported: wall, the controller's CPU per host (the fab process, wait4),
API calls per instance by action, calls throttled (and retried), hosts not ok because of SSM.

    python benchmarks/ssm.py [--instances 1000] [--rates SendCommand=10/20,...]   (as root)
"""
import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import system  # noqa: E402
from sandbox.ssm_standin import INVOCATION_DELAY, RATES  # noqa: E402

FAB = str(Path(sys.executable).parent / "fab")
# the controller's key for the stand-in, made for this run (the stand-in checks the key id only)
KEY_ID, SECRET = "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)


def start_stand_in(work, count, rates):
    directory = work / "ssm"
    directory.mkdir()
    ids = ["i-%017x" % (0x10000 + n) for n in range(count)]
    (directory / "instances.json").write_text(json.dumps({i: {"host": i, "mode": "ok", "docker_socket": None}
                                                          for i in ids}))
    (directory / "policy.json").write_text(json.dumps({"allowed_keys": [KEY_ID], "denied": {}, "inline_limit": 24000,
                                                       "rates": rates, "invocation_delay": INVOCATION_DELAY,
                                                       "page_size": 50}))
    port = system.free_port()
    process = subprocess.Popen([sys.executable, "-m", "sandbox.ssm_standin", str(directory), str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=(directory / "standin.log").open("w"))
    system.wait_until(lambda: system.port_open("127.0.0.1", port), 20, "the stand-in on port %d" % port)
    return process, directory, ids, "http://127.0.0.1:%d" % port


def write_inventory(work, ids, endpoint):
    facts = json.loads((ROOT / "tests" / "golden" / "healthy.json").read_text())["hosts"][0]["facts"]
    (work / "facts.json").write_text(json.dumps(facts) + "\n")
    stub = work / "stub-python"
    stub.write_text("#!/bin/sh\nexec cat %s\n" % (work / "facts.json"))
    stub.chmod(0o755)
    os.chmod(work, 0o755)
    inventory = work / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "community.aws.aws_ssm", "ansible_python_interpreter": str(stub),
                 "auditor": {"roles": ["video-worker"], "parallel": len(ids),
                             "ssm": {"region": "ap-northeast-2", "endpoint_url": endpoint}}},
        "hosts": {"s%04d" % n: {"instance_id": i} for n, i in enumerate(ids)}}}))
    return inventory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--rates", default="", help="ACTION=PER_SECOND/BURST,... (default: the sandbox's)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the stand-in runs each command as the SSM agent does (as root)")
    rates = dict(RATES)
    for item in filter(None, args.rates.split(",")):
        action, _, rate = item.partition("=")
        rates[action] = [float(part) for part in rate.split("/")]
    work = Path(tempfile.mkdtemp(prefix="fleet-ssm-bench-"))
    process, directory, ids, endpoint = start_stand_in(work, args.instances, rates)
    try:
        inventory = write_inventory(work, ids, endpoint)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, NO_COLOR="1")
        started = time.monotonic()
        audit = subprocess.Popen([FAB, "audit", "-i", str(inventory), "-f", "json"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = audit.stdout.read()
        _, status, usage = os.wait4(audit.pid, 0)
        wall = time.monotonic() - started
        report = json.loads(out)
        requests = [json.loads(line) for line in (directory / "requests.jsonl").read_text().splitlines()]
    finally:
        process.terminate()
        process.wait(10)
    calls = Counter(r["action"] for r in requests)
    throttled = Counter(r["action"] for r in requests if r.get("error") == "ThrottlingException")
    not_yet = sum(1 for r in requests if r.get("error") == "InvocationDoesNotExist")
    transport_failures = Counter(f["code"] for f in report["findings"] if f["code"].startswith("ssm-"))
    count = args.instances
    print("%d instances through the SSM stand-in, rates %s (per second/burst), exit %d" % (
        count, ", ".join("%s %g/%g" % (a, *r) for a, r in sorted(rates.items())), os.waitstatus_to_exitcode(status)))
    print("| wall | controller CPU per host | API calls per instance | by action (throttled) | not yet known | "
          "hosts failed by SSM |")
    print("|---|---|---|---|---|---|")
    print("| %.1f s | %.1f ms | %.2f | %s | %d | %s |" % (
        wall, (usage.ru_utime + usage.ru_stime) / count * 1000, len(requests) / count,
        ", ".join("%s %.2f (%d)" % (action, calls[action] / count, throttled[action]) for action in sorted(calls)),
        not_yet, dict(transport_failures) or "none"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
