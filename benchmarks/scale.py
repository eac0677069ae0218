"""Scale benchmark: what the controller costs per host, side by side with the OpenSSH client
and Ansible, at 50, 200 and 1,000 hosts on this machine's loopback.

Only the controller is measured: every "host" is an address on a loopback sshd (16 addresses
per sshd) whose user has /bin/sh as login shell (no rc files), and whose
`ansible_python_interpreter` is a stub that prints one recorded agent output
(tests/golden/healthy.json), so each side pays only for SSH and its own work. All sides run the
same remote command (the auditor's, packed agent and settings included) in the same run,
alternating, rounds' medians reported:

- OpenSSH, `xargs -P N ssh ...`, default key exchange (post-quantum on Debian 12);
- OpenSSH with `-o KexAlgorithms=curve25519-sha256`, what paramiko negotiates;
- `fab audit` at `-p 20`, at the default parallelism, and at `-p N` (one per host, up to 1,000),
  over the paramiko transport;
- `fab audit` over the OpenSSH transport (`ansible_connection: ssh`), with the default key exchange
  and with curve25519-sha256, each next to the plain OpenSSH client with the same key exchange;
- `ansible all -m raw -f N` (when ansible is installed).

Wall time, CPU per host (user + system of the side's processes: the ssh clients, the fab
process, the Ansible forks) and the largest resident set among them.

    python benchmarks/scale.py [--hosts 50,200,1000] [--rounds 2] [--host-work S] [--only fab]   (as root)
"""
import argparse
import functools
import getpass
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor import agent, collect  # noqa: E402
from auditor.transports import quote  # noqa: E402
from auditor.inventory import load_inventory  # noqa: E402
from auditor.settings import Settings  # noqa: E402

DEFAULT_PARALLEL = Settings().parallel
USER = "fleetbench"
PORT = 2299
PER_SSHD = 16
FAB = str(Path(sys.executable).parent / "fab")
ANSIBLE = shutil.which("ansible") or str(Path(sys.executable).parent / "ansible")


def address(n):
    return "127.77.%d.%d" % (n // 200, n % 200 + 1)


def ensure_user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    # no password, but not locked: without PAM, sshd refuses a locked account even for keys
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    return pwd.getpwnam(USER)


def start_fleet(count, work, host_work=0.0):
    """count addresses on count/16 sshds; returns (inventory path, ssh key, known_hosts, sshd pids).
    host_work: seconds each stub host spends before answering, as a real agent does."""
    user = ensure_user()
    key = work / "id_ed25519"
    host_key = work / "host_ed25519"
    for path, comment in ((key, "bench-client"), (host_key, "bench-host")):
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    authorized = work / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    os.chmod(work, 0o755)
    facts = json.loads((ROOT / "tests" / "golden" / "healthy.json").read_text())["hosts"][0]["facts"]
    stub = work / "stub-python"
    (work / "facts.json").write_text(json.dumps(facts) + "\n")
    stub.write_text("#!/bin/sh\n%sexec cat %s\n" % ("sleep %s\n" % host_work if host_work else "",
                                                    work / "facts.json"))
    stub.chmod(0o755)
    pids = []
    for first in range(0, count, PER_SSHD):
        config = work / ("sshd-%d.conf" % first)
        lines = ["ListenAddress %s:%d" % (address(n), PORT) for n in range(first, min(first + PER_SSHD, count))]
        lines += ["HostKey %s" % host_key, "PidFile %s" % (work / ("sshd-%d.pid" % first)),
                  "AuthorizedKeysFile %s" % authorized, "PasswordAuthentication no", "UsePAM no", "StrictModes no",
                  "MaxStartups 2000:30:4000", "MaxSessions 64", "PrintMotd no", "LogLevel ERROR"]
        config.write_text("\n".join(lines) + "\n")
        subprocess.run(["/usr/sbin/sshd", "-f", str(config)], check=True)
        pids.append(work / ("sshd-%d.pid" % first))
    host_pub = Path(str(host_key) + ".pub").read_text().split()[:2]
    known = work / "known_hosts"
    known.write_text("".join("[%s]:%d %s %s\n" % (address(n), PORT, *host_pub) for n in range(count)))
    common = "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes" % known
    for variant, extra in INVENTORY_VARIANTS.items():
        (work / ("inventory-%d%s.yaml" % (count, variant))).write_text(yaml.safe_dump({"all": {
            "vars": dict({"ansible_user": USER, "ansible_port": PORT, "ansible_ssh_private_key_file": str(key),
                          "ansible_python_interpreter": str(stub), "ansible_ssh_common_args": common,
                          "auditor": {"known_hosts": str(known), "roles": ["video-worker"]}},
                         **{k: v if k != "ansible_ssh_common_args" else common + " " + v for k, v in extra.items()}),
            "hosts": {"h%04d" % n: {"ansible_host": address(n)} for n in range(count)}}}))
    inventory = work / ("inventory-%d.yaml" % count)
    time.sleep(1)
    return inventory, key, known, pids, user


# the same fleet reached by each transport: paramiko (the default), the OpenSSH client as the
# operator's ssh_config leaves it, and the OpenSSH client with paramiko's key exchange
INVENTORY_VARIANTS = {"": {"ansible_connection": "paramiko"}, "-ssh": {"ansible_connection": "ssh"},
                      "-ssh-curve25519": {"ansible_connection": "ssh",
                                          "ansible_ssh_common_args": "-o KexAlgorithms=curve25519-sha256"}}


def stop_fleet(pids):
    for pid_file in pids:
        try:
            os.kill(int(pid_file.read_text()), 15)
        except (OSError, ValueError):
            pass


# runs one side and reports its own children's usage, so each side's numbers are its own
WRAPPER = ("import resource, subprocess, sys, time; started = time.monotonic(); "
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
           "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(time.monotonic() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)")


def measure(argv, **kwargs):
    """(wall seconds, CPU seconds of the side's processes, largest RSS among them in MB, exit status)."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, **kwargs)
    wall, cpu, rss, code = done.stdout.split()
    return float(wall), float(cpu), float(rss), int(code), done.stderr[-300:]


def sides(count, inventory, key, known, command):
    ssh = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=%s" % known,
           "-o", "StrictHostKeyChecking=yes", "-p", str(PORT), "-l", USER]
    addresses = "\n".join(address(n) for n in range(count))
    xargs = ["xargs", "-P", str(count), "-I", "{}"]
    found = {
        "OpenSSH, default kex": lambda: measure(xargs + ssh + ["{}", command], input=addresses),
        "OpenSSH, curve25519-sha256": lambda: measure(
            xargs + ssh + ["-o", "KexAlgorithms=curve25519-sha256", "{}", command], input=addresses),
    }
    fab_sides = {"fab audit -p 20": ["-p", "20", "--no-history"]}
    if DEFAULT_PARALLEL != 20:
        fab_sides["fab audit (default -p %d)" % DEFAULT_PARALLEL] = ["--no-history"]
    fab_sides["fab audit -p N"] = ["-p", str(min(count, 1000)), "--no-history"]
    # the same audit recorded in a history file (what every audit does by default)
    fab_sides["fab audit, recorded in the history"] = ["--history", str(inventory.with_name("history.sqlite"))]
    for label, flags in fab_sides.items():
        found[label] = functools.partial(measure, [FAB, "audit", "-i", str(inventory), "-f", "json", *flags], cwd=ROOT)
    for variant, label in (("-ssh", "fab audit, OpenSSH transport, default kex"),
                           ("-ssh-curve25519", "fab audit, OpenSSH transport, curve25519-sha256")):
        variant_inventory = inventory.with_name(inventory.stem + variant + ".yaml")
        found[label] = functools.partial(measure, [FAB, "audit", "-i", str(variant_inventory), "-f", "json",
                                                   "--no-history"], cwd=ROOT)
    if Path(ANSIBLE).exists():
        found["ansible -m raw -f N"] = lambda: measure(
            [ANSIBLE, "all", "-i", str(inventory), "-m", "raw", "-a", command, "-f", str(count)],
            env=dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_SSH_ARGS="",
                     ANSIBLE_PYTHON_INTERPRETER="auto_silent"), cwd=ROOT)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="50,200,1000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--host-work", type=float, default=0.0,
                        help="seconds each host spends on its own work (real agents: seconds)")
    parser.add_argument("--only", default="", help="run only the sides whose name contains one of these "
                                                   "(comma-separated)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it starts sshd listeners and a benchmark user")
    work = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    rows = []
    for count in [int(n) for n in args.hosts.split(",")]:
        inventory, key, known, pids, _ = start_fleet(count, work, args.host_work)
        try:
            spec = load_inventory(inventory)[0]
            command = agent.command_line(spec.python, collect.agent_config(spec), 60, quote)
            results = {}
            for _ in range(args.rounds):
                for name, run in sides(count, inventory, key, known, command).items():
                    if any(part in name for part in args.only.split(",")):
                        results.setdefault(name, []).append(run())
            for name, runs in results.items():
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs) / count * 1000
                rss = max(r[2] for r in runs)
                codes = sorted({r[3] for r in runs})
                rows.append((count, name, wall, cpu, rss, codes))
                print("%5d hosts  %-30s %7.1f s  %6.1f ms CPU/host  %6.0f MB  exit %s" % (
                    count, name, wall, cpu, rss, codes), flush=True)
        finally:
            stop_fleet(pids)
    print("\n| hosts | side | wall | CPU per host | largest RSS |\n|---|---|---|---|---|")
    for count, name, wall, cpu, rss, _ in rows:
        print("| %d | %s | %.1f s | %.0f ms | %.0f MB |" % (count, name, wall, cpu, rss))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
