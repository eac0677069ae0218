"""Inventory benchmark: `fleet-audit hosts` beside `ansible-inventory --list` on the same files,
and how soon `check-host` of one host of 100,000 connects.

Two shapes per size: a flat file (one line per host in three role groups, group vars only) and
a grouped one (50 groups, each with its own vars and auditor settings). Each side is a process
of its own, alternated in the same run; wall time and that process's peak RSS (wait4), medians
of the rounds. `check-host`: a listener on loopback stands for the one host and records when the
connection arrives (the key exchange that follows is not measured: the host is not SSH).

    python benchmarks/inventory.py [--hosts 1000,10000,100000] [--rounds 1]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FLEET_AUDIT = str(BIN / "fleet-audit")
ANSIBLE_INVENTORY = shutil.which("ansible-inventory") or str(BIN / "ansible-inventory")
ROLES = ("api", "video-worker", "ai-worker")
HEAD = ["all:", "  vars:", "    ansible_user: ec2-user", "    auditor:", "      known_hosts: /dev/null",
        "      region: {env: [AWS_REGION], default: ap-northeast-2}", "  children:"]


def address(n):
    return "10.%d.%d.%d" % (n // 62500 % 250, n // 250 % 250, n % 250 + 1)


def flat(count, first=None):
    """Three role groups, one line per host; `first` replaces host 0's variables."""
    lines = list(HEAD)
    for index, role in enumerate(ROLES):
        lines += ["    %s:" % role.replace("-", "_"), "      vars:", "        auditor: {roles: [%s]}" % role,
                  "      hosts:"]
        for n in range(index, count, len(ROLES)):
            lines.append("        h%06d: %s" % (n, first if n == 0 and first else "{ansible_host: %s}" % address(n)))
    return "\n".join(lines) + "\n"


def grouped(count):
    """50 groups, each with its own port and auditor settings (log window, role)."""
    lines = list(HEAD)
    for group in range(50):
        lines += ["    g%02d:" % group, "      vars:", "        ansible_port: %d" % (22 + group % 2),
                  "        auditor: {roles: [%s], log_window: %dm}" % (ROLES[group % 3], 30 + group), "      hosts:"]
        lines += ["        h%06d: {ansible_host: %s}" % (n, address(n)) for n in range(group, count, 50)]
    return "\n".join(lines) + "\n"


def measure(argv):
    """(wall seconds, peak RSS in MB, exit code) of one process."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - started, usage.ru_maxrss / 1024, process.returncode


def first_connection(inventory, port):
    """Seconds from starting `check-host h000000` to its first TCP connection, and to its end."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4)
    listener.settimeout(120)
    started = time.monotonic()
    process = subprocess.Popen([FLEET_AUDIT, "check-host", "h000000", "-i", str(inventory), "--connect-timeout", "5"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection, _ = listener.accept()
        connected = time.monotonic() - started
        connection.close()
    finally:
        listener.close()
    process.wait(120)
    return connected, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-inventory-bench-"))
    rows = []
    for count in [int(n) for n in args.hosts.split(",")]:
        for shape, text in (("flat", flat(count)), ("grouped, 50 groups", grouped(count))):
            path = work / ("%s-%d.yaml" % (shape.split(",")[0], count))
            path.write_text(text)
            sides = {"fleet-audit hosts": [FLEET_AUDIT, "hosts", "-i", str(path)],
                     "ansible-inventory --list": [ANSIBLE_INVENTORY, "-i", str(path), "--list"]}
            runs = {name: [measure(argv) for _ in range(args.rounds)] for name, argv in sides.items()}
            ours, theirs = (runs[name] for name in sides)
            wall = [statistics.median(r[0] for r in side) for side in (ours, theirs)]
            rss = [max(r[1] for r in side) for side in (ours, theirs)]
            row = "| %s | %s | %.2f s (%.3f ms/host), %.0f MB | %.2f s, %.0f MB | %.1fx | %.2fx |" % (
                "{:,}".format(count), shape, wall[0], wall[0] / count * 1000, rss[0], wall[1], rss[1],
                wall[1] / wall[0], rss[0] / rss[1])
            print(row, "exit %s/%s" % (ours[0][2], theirs[0][2]), file=sys.stderr)
            rows.append(row)
    biggest = max(int(n) for n in args.hosts.split(","))
    target = work / "check-host.yaml"
    port = 2398
    target.write_text(flat(biggest, first="{ansible_host: 127.0.0.1, ansible_port: %d}" % port))
    connected, ended = first_connection(target, port)
    print("| hosts | inventory | `fleet-audit hosts` | `ansible-inventory --list` | faster | RSS ratio |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n`check-host h000000` in a %s-host inventory: first connection %.2f s after start (ended %.2f s)" % (
        "{:,}".format(biggest), connected, ended))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
