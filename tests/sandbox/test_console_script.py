"""The installed console script, run from outside the checkout against the sandbox:
version, help, an operator's task list, one audit in JSON, and the exit codes 0, 1 and 2."""
import json
import subprocess
import sys
from pathlib import Path

FLEET_AUDIT = str(Path(sys.executable).parent / "fleet-audit")


def run(tmp_path, *args):
    return subprocess.run([FLEET_AUDIT, *args], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(tmp_path)})


def test_console_script_from_another_directory(fleet, tmp_path):
    from auditor import __version__
    assert run(tmp_path, "--version").stdout.strip() == "fleet-audit %s" % __version__
    helped = run(tmp_path, "--help").stdout
    assert "Examples:" in helped and "Exit codes:" in helped
    listed = run(tmp_path, "--list").stdout
    assert "check-host" in listed and "preflight" in listed and "sandbox" not in listed
    inventory = str(fleet.use("healthy"))
    healthy = fleet.audit_until(lambda r: r.exit_code == 0)
    assert healthy.exit_code == 0
    done = run(tmp_path, "audit", "-i", inventory, "-f", "json")
    assert done.returncode == 0, done.stderr
    assert {h["verdict"] for h in json.loads(done.stdout)["hosts"]} == {"ok"}
    fleet.use("worker-down")
    assert run(tmp_path, "audit", "-i", inventory, "--no-matrix").returncode == 1
    missing = run(tmp_path, "audit", "-i", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and missing.stderr.startswith("error:")


def test_debug_shows_the_remote_command_without_its_payload_and_raw_shows_redacted_facts(fleet, tmp_path):
    inventory = str(fleet.use("healthy"))
    debugged = run(tmp_path, "audit", "-i", inventory, "-f", "json", "--hosts", "api-1", "--debug")
    assert json.loads(debugged.stdout)["hosts"][0]["name"] == "api-1"       # stdout: the report alone
    command = [line for line in debugged.stderr.splitlines() if "timeout -k 5" in line]
    assert command and "<agent:" in command[0] and "<settings:" in command[0] and "<probe:" in command[0]
    assert max(len(word) for word in debugged.stderr.split()) < 200         # no packed payload, no salt
    assert "agent steps" in debugged.stderr and "host keys" in debugged.stderr
    raw = run(tmp_path, "check-host", "api-1", "-i", inventory, "--raw")
    assert raw.returncode == 0, raw.stderr
    facts = json.loads(raw.stdout)
    assert facts["schema"] == "host-facts/2" and facts["probe"]
    secrets = fleet.env_secrets(["api-1"])      # secret keys and full key ids: key ids are masked too
    assert len(secrets) >= 3 and all(secrets) and not [value for value in secrets if value in raw.stdout]
