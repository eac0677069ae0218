"""The finding registry: complete, consistent, the only way to emit a code, and
the source of the README's code table and of the verdict precedence."""
import re
from pathlib import Path

import pytest

from auditor import codes
from auditor.codes import CODES, Severity, Verdict, emit

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_an_unregistered_code_cannot_be_emitted():
    with pytest.raises(KeyError):
        emit("no-such-code", ["h"], "message")


def test_every_error_decides_a_verdict_and_every_remedy_is_a_template():
    for entry in CODES.values():
        if entry.severity == Severity.ERROR:
            assert entry.verdict is not None, entry.code
        assert entry.step in codes.STEPS
        fields = re.findall(r"{(\w*)}", entry.remedy)
        assert all(fields), entry.code        # named fields only


def test_the_docs_code_table_is_the_registrys():
    assert codes.markdown_table() in (DOCS / "findings.md").read_text(), "regenerate it: python -m auditor.codes"


def test_the_docs_exit_code_table_and_help_are_the_enums():
    from auditor.cli import epilog
    from auditor.errors import ExitStatus, exit_codes_table, exit_codes_text
    assert exit_codes_table() in (DOCS / "usage.md").read_text(), "regenerate it: python -m auditor.errors"
    assert " ".join(exit_codes_text().split()) in " ".join(epilog().split())
    assert all("| %d |" % code in exit_codes_table() for code in ExitStatus)


def test_verdict_precedence_takes_the_first_implied():
    def finding(code):
        return emit(code, ["h"], "m", None, container="c", fix="f", queue="q", hosts="h", host="h", region="r",
                    region_var="R", account="a", detail="d", path="p", app_keys="k", create_queue="c", read="r")
    assert codes.verdict(True, []) == (Verdict.OK, ())
    assert codes.verdict(True, [finding("worker-no-activity"), finding("logs-truncated")]) == (Verdict.OK, ())
    assert codes.verdict(True, [finding("logs-unreadable")]) == (Verdict.UNKNOWN, ("logs-unreadable",))
    mixed = [finding("logs-unreadable"), finding("container-not-running"), finding("sqs-queue-missing")]
    assert codes.verdict(True, mixed) == (Verdict.CONFIG, ("sqs-queue-missing",))
    assert codes.verdict(False, [finding("ssh-unreachable")]) == (Verdict.UNREACHABLE, ("ssh-unreachable",))


def test_explain_prints_meaning_verdict_and_fix():
    text = codes.explain("logs-unreadable")
    assert text.startswith("logs-unreadable (error, step 2")
    assert "Verdict: unknown" in text and "Fix:" in text


def test_severities_print_as_their_words():
    assert "%s/%s" % (Severity.ERROR, Verdict.WORKER_DOWN) == "error/worker-down"
    assert Severity.WARNING == "warning"


def test_the_registry_and_the_rules_load_without_the_fan_out_or_paramiko():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "import sys, auditor.codes, auditor.diagnosis, auditor.crosshost; "
                           "print(sorted(m for m in sys.modules if m in ('paramiko', 'auditor.collect', 'boto3')))"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_explain_covers_every_code():
    for code in codes.CODES:
        text = codes.explain(code)
        assert text.startswith(code) and "Fix:" in text and "{" not in text


def test_a_consequence_takes_the_verdict_of_the_cause_the_host_shows():
    def finding(code):
        return codes.emit(code, ["h"], "m", queue="q", hosts="h", url="u", consumer_urls="c")
    backlog = finding("backlog-no-consumer")
    assert codes.verdict(True, [backlog]) == (Verdict.WORKER_DOWN, ("backlog-no-consumer",))   # alone, it speaks
    crash_loop = codes.emit("job-crash-loop", ["h"], "m", job="j", error="e")
    assert codes.verdict(True, [backlog, crash_loop]) == (Verdict.CODE_SUSPECT, ("job-crash-loop",))
    unreadable = codes.emit("logs-unreadable", ["h"], "m", read="r", access="a", absent="x", container="c")
    assert codes.verdict(True, [backlog, unreadable])[0] == Verdict.WORKER_DOWN      # missing evidence explains nothing
    assert {c.code for c in codes.CODES.values() if c.consequence} == {
        "backlog-no-consumer", "jobs-not-consumed", "jobs-enqueued-unpolled", "worker-idle", "jobs-expiring",
        "sent-not-received", "received-not-deleted", "jobs-received-repeatedly", "backlog-growing"}
