"""The command line behaves like the tools operators know: Fabric's core flags work or are
refused, flags mean the same in every task, dangerous ones have no short form."""
import pytest


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
