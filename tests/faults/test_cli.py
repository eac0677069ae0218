"""The command line behaves like the tools operators know: Fabric's core flags work or are
refused, flags mean the same in every task, dangerous ones have no short form."""
import json
import sys
from pathlib import Path

import pytest

from faultkit import ROOT, free_port, in_a_process


@pytest.mark.parametrize("core, words", [
    (["-R"], "-R/--dry"),
    (["-H", "api-1"], "--hosts before the task"),
    (["-i", "/tmp/key.pem"], "--identity before the task"),
    (["-T", "5"], "--command-timeout"),
    (["-e"], "--echo"),
])
def test_core_flags_the_auditor_does_not_use_are_refused(fab, inventory, core, words):
    done = fab(*core, "hosts", "--inventory", str(inventory()))
    assert done.returncode == 2 and words in done.stderr


@pytest.mark.parametrize("name", ["audit", "check-host", "preflight", "hosts"])
def test_flags_are_consistent_and_dangerous_ones_have_no_short_form(fab, name):
    helped = fab("--help", name).stdout
    assert "-i STRING, --inventory=STRING" in helped
    for flag in ("--accept-new-host-keys", "--app-check", "--cross-check"):
        for line in helped.splitlines():
            if flag in line:
                assert line.strip().startswith(flag), line      # no short form in front of it
    if name != "hosts":
        assert "-f STRING, --format=STRING" in helped and "-o STRING, --output=STRING" in helped


FLEET_AUDIT = str(Path(sys.executable).parent / "fleet-audit")


def fleet_audit_process(*args):
    """The installed console script itself, for what depends on how the command was started."""
    return in_a_process(FLEET_AUDIT, *args, timeout=60)


@pytest.mark.parametrize("args, words", [
    (["audti"], "did you mean 'audit'?"),
    (["audit", "--parralel", "5"], "did you mean '--parallel'?"),
    (["check-host"], "did not receive required positional arguments: 'name'"),
    (["explain", "a", "b"], "No idea what 'b' is"),
    (["-f", "json", "audit"], "the report format goes after the task"),
    (["-p", "audit"], "hosts at once go after the task"),
    (["--prompt-for-sudo-password", "audit"], "never prompts"),
    (["sandbox.up"], "the sandbox's tasks live in a checkout"),
    (["-i", "inventory.yaml", "audit"], "the inventory goes after the task"),
    (["-H", "web-1", "audit"], "hosts go after the task"),
    (["audit", "web-1"], "hosts go to --hosts: `fleet-audit audit --hosts web-1`"),
    (["check-host", "web-1", "web-2"], "check-host takes one host name"),
    (["explain", "a", "b"], "explain takes one code"),
    (["audit", "--matrix-only", "-f", "html"], "--format html is a whole report, not a matrix alone"),
    (["audit", "-f", "jsno"], "did you mean 'json'?"),
])
def test_usage_errors_of_the_installed_command_exit_2_and_say_what_was_meant(fleet_audit, args, words):
    done = fleet_audit(*args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert words in done.stderr


@pytest.mark.parametrize("task", ["audit", "check-host", "preflight", "diff", "hosts", "explain"])
def test_task_help_after_the_task_name_is_the_tasks_help(fleet_audit, task):
    done = fleet_audit(task, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: fleet-audit [--core-opts] %s" % task)


def test_remedies_name_the_command_the_operator_ran(fab_process):
    assert "(fleet-audit check-host <host>)" in fleet_audit_process("explain", "agent-failed").stdout
    assert "(fab check-host <host>)" in fab_process("explain", "agent-failed").stdout


def test_write_failed_names_the_hosts_that_were_not_ok_and_hosts_at_file_reruns_them(fab, inventory, tmp_path):
    closed = free_port()
    path = inventory(hosts={"down-1": {"ansible_host": "127.0.0.1", "ansible_port": closed},
                            "down-2": {"ansible_host": "127.0.0.1", "ansible_port": closed}})
    failed = tmp_path / "failed.txt"
    done = fab("audit", "-i", str(path), "--write-failed", str(failed), "--hosts", "down-1", "-f", "json")
    assert done.returncode == 1 and failed.read_text().split() == ["down-1"]
    assert oct(failed.stat().st_mode & 0o777) == "0o600" and "--hosts @" in done.stderr
    again = fab("audit", "-i", str(path), "--hosts", "@%s" % failed, "-f", "json")
    assert [h["name"] for h in json.loads(again.stdout)["hosts"]] == ["down-1"]
    failed.write_text("# nothing failed\n")
    empty = fab("audit", "-i", str(path), "--hosts", "@%s" % failed)
    assert empty.returncode == 2 and "names no host" in empty.stderr
    missing = fab("audit", "-i", str(path), "--hosts", "@%s" % (tmp_path / "absent"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_the_docs_flag_table_is_the_parsers():
    from auditor.cli import flag_table
    assert flag_table() in (ROOT / "docs" / "usage.md").read_text(), \
        "regenerate it: python -c 'from auditor.cli import flag_table; print(flag_table())'"


def test_a_task_explains_its_flags_however_often_its_parser_is_built(fleet_audit):
    first = fleet_audit("audit", "--help").stdout
    assert "--parallel=STRING" in first and "hosts audited at once" in first
    assert fleet_audit("audit", "--help").stdout == first


def test_help_lists_only_the_core_options_the_auditor_honours_and_a_whole_line_per_task(fleet_audit):
    helped = fleet_audit("--help").stdout
    for shown in ("--version", "--list", "--print-completion-script", "--complete"):
        assert shown in helped
    for refused in ("--config", "--pty", "--echo", "--prompt-for-sudo-password", "--dry", "--warn-only",
                    "--command-timeout", "--hide", "--write-pyc", "-d, --debug"):
        assert refused not in helped, refused
    tasks = helped.split("Subcommands:")[1].split("Examples:")[0]
    assert "Exits 1 when" not in tasks


def test_explain_fits_the_terminal_and_keeps_one_line_per_part_for_scripts(fleet_audit):
    narrow = fleet_audit("explain", "ssh-host-key-unknown", env={"COLUMNS": "60"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 60
    whole = fleet_audit("explain", "ssh-host-key-unknown", env={"COLUMNS": ""}).stdout     # a pipe
    assert " ".join(narrow.split()) == " ".join(whole.split())
    assert [line for line in whole.splitlines() if line.startswith("  Fix: ")][0].endswith("ansible_connection: ssh")
    listed = fleet_audit("explain", "all", env={"COLUMNS": "70"}).stdout.splitlines()
    assert max(len(line) for line in listed) <= 70 and listed[1].startswith(" " * 43)
