"""Benchmark: `fab audit`'s fan-out against the OpenSSH floor, side by side.

Both sides run the identical remote command (the packed host agent with its
config) on the same hosts, in the same run, alternating, so the machine's noise
hits both alike. The reference is plain OpenSSH fanned out with `xargs -P`:
this machine's practical floor for "run one thing on N hosts". The auditor's
time includes everything it does (inventory, SSH with host keys verified,
parsing, findings, matrix); the floor only runs the command.

The benchmark fleet: the sandbox's three hosts (scenario `healthy`) plus one
extra sshd per role listening on up to 16 more loopback addresses, whose
sessions use that role's Docker daemon, so every host really runs the agent
with its `docker` calls and its SQS probe inside the app container.

    python benchmarks/fanout.py [--per-role 16] [--rounds 3] [--sequential]
"""
import argparse
import getpass
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor import agent, audit, collect, inventory  # noqa: E402
from auditor.agent import wire  # noqa: E402
from auditor.transports import quote  # noqa: E402
from sandbox import scenarios, system  # noqa: E402
from sandbox.fleet import Sandbox  # noqa: E402

MAX_LISTEN = 16             # OpenSSH's ListenAddress limit per sshd


def start_bench_hosts(sandbox, per_role, work):
    """One extra sshd per role on `per_role` addresses; returns (inventory path, pid files)."""
    hosts, known, pid_files = {}, [], []
    for index, host in enumerate(sandbox.hosts[name] for name in scenarios.BASE_HOSTS):
        addresses = ["127.0.%d.%d" % (100 + index, n) for n in range(1, per_role + 1)]
        config = work / ("sshd-%s.conf" % host.spec.role)
        pid_file = work / ("sshd-%s.pid" % host.spec.role)
        text = (host.dir / "sshd_config").read_text()
        lines = [line for line in text.splitlines() if not line.startswith(("ListenAddress", "PidFile"))]
        lines += ["ListenAddress %s:%d" % (a, scenarios.SSH_PORT) for a in addresses] + ["PidFile %s" % pid_file]
        config.write_text("\n".join(lines) + "\n")
        system.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(work / ("sshd-%s.log" % host.spec.role))])
        pid_files.append(pid_file)
        key_type, key = Path(str(host.host_key) + ".pub").read_text().split()[:2]
        for n, address in enumerate(addresses, 1):
            system.wait_until(lambda: system.port_open(address, scenarios.SSH_PORT), 15, "bench sshd " + address)
            known.append("[%s]:%d %s %s" % (address, scenarios.SSH_PORT, key_type, key))
            hosts["%s-b%02d" % (host.spec.role, n)] = {
                "ansible_host": address,
                "auditor": {"app_dir": str(host.app_dir), "roles": [host.spec.role]}}
    (work / "known_hosts").write_text("\n".join(known) + "\n")
    generated = yaml.safe_load(sandbox.inventory.read_text())
    document = {"all": {"vars": generated["all"]["vars"], "hosts": hosts}}
    document["all"]["vars"]["auditor"]["known_hosts"] = str(work / "known_hosts")
    path = work / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, pid_files


def openssh_floor(specs, sandbox, work):
    """`xargs -P N ssh HOST COMMAND`, the same agent command line as the auditor's."""
    lines = []
    for spec in specs:
        command = agent.command_line(spec.python, collect.agent_config(spec),
                                     spec.settings.timeouts.command, quote)
        command_file = work / ("cmd-%s" % spec.name)
        command_file.write_text(command)
        lines.append("%s %s" % (spec.address, command_file))
    ssh = ("ssh -p %d -i %s -l %s -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s "
           "-o ConnectTimeout=10" % (scenarios.SSH_PORT, sandbox.client_key, getpass.getuser(), work / "known_hosts"))
    script = 'exec %s "$0" "$(cat "$1")" > "$1.out"' % ssh
    started = time.monotonic()
    subprocess.run(["xargs", "-P", str(len(specs)), "-L", "1", "sh", "-c", script],
                   input="\n".join(lines) + "\n", text=True, check=True, timeout=600)
    seconds = time.monotonic() - started
    answered = sum(wire.SCHEMA in (work / ("cmd-%s.out" % s.name)).read_text() for s in specs)
    return seconds, answered


def auditor_run(path, parallel):
    started = time.monotonic()
    result = audit.run_audit(path, parallel=parallel)
    seconds = time.monotonic() - started
    return seconds, sum(h.report.reachable and h.report.probe is not None for h in result.hosts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-role", type=int, default=MAX_LISTEN, help="hosts per role (max 16; 3 roles)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", action="store_true", help="also time one host after another")
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args()
    per_role = max(1, min(args.per_role, MAX_LISTEN))
    sandbox = Sandbox()
    print("bringing up the sandbox (scenario healthy)...", file=sys.stderr)
    sandbox.up("healthy")
    with tempfile.TemporaryDirectory(prefix="fanout-", dir=sandbox.root) as tmp:
        work = Path(tmp)
        path, pid_files = start_bench_hosts(sandbox, per_role, work)
        try:
            specs = inventory.load_inventory(path)
            n = len(specs)
            sides = {"OpenSSH floor: xargs -P %d ssh" % n: lambda: openssh_floor(specs, sandbox, work),
                     "fab audit, --parallel %d" % n: lambda: auditor_run(path, n),
                     "fab audit, default --parallel 20": lambda: auditor_run(path, 20)}
            if args.sequential:
                sides["fab audit, one host after another"] = lambda: auditor_run(path, 1)
            auditor_run(path, n)                               # warm caches on both sides once
            times = {name: [] for name in sides}
            for round_number in range(args.rounds):
                for name, measure in sides.items():
                    seconds, answered = measure()
                    if answered != n:
                        raise SystemExit("%s: only %d of %d hosts answered" % (name, answered, n))
                    times[name].append(seconds)
                    print("round %d: %-40s %6.2fs" % (round_number + 1, name, seconds), file=sys.stderr)
        finally:
            for pid_file in pid_files:
                system.stop_pid(system.read_pid(pid_file))
    floor = statistics.median(next(iter(times.values())))
    print("| %d hosts, %d rounds | median | min | vs floor |" % (n, args.rounds))
    print("|---|---|---|---|")
    for name, values in times.items():
        print("| %s | %.2f s | %.2f s | %.2fx |" % (name, statistics.median(values), min(values),
                                                    statistics.median(values) / floor))
    if args.json:
        Path(args.json).write_text(json.dumps({"hosts": n, "rounds": args.rounds, "seconds": times}, indent=2))


if __name__ == "__main__":
    main()
