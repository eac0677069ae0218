"""The one exception root, and the one table of exit codes. Per-host failures are data, not
exceptions: only problems that stop the whole run (bad inventory, bad usage) raise."""
from enum import IntEnum


class ExitStatus(IntEnum):
    """Every exit code a task can end with; `--help` and the docs' table are generated from
    EXIT_MEANINGS (exit_codes_text, exit_codes_table)."""
    OK = 0
    FINDINGS = 1
    USAGE = 2
    UNEXPECTED = 3
    REPORT_NOT_WRITTEN = 4
    INTERRUPTED = 130
    READER_GONE = 141
    TERMINATED = 143


# (what it means in one line, for --help; what it means in full, for the docs)
EXIT_MEANINGS = {
    ExitStatus.OK: ("no error-level finding (diff: no change)",
                    "no finding at error level (warnings and info may exist); `diff`: nothing changed"),
    ExitStatus.FINDINGS: ("error-level findings, unreachable hosts included (diff: something changed)",
                          "at least one error-level finding (including unreachable hosts); `diff`: something "
                          "changed"),
    ExitStatus.USAGE: ("usage or inventory error (nothing audited)",
                       "usage or inventory error: nothing was audited (one line on stderr, with the fix)"),
    ExitStatus.UNEXPECTED: ("unexpected failure of the auditor",
                            "an unexpected failure of the auditor itself: one line; `--debug` (or "
                            "`FLEET_AUDIT_DEBUG=1`) shows the traceback"),
    ExitStatus.REPORT_NOT_WRITTEN: ("the report could not be written to --output (it went to stdout)",
                                    "the audit ran, but the report could not be written to `--output` (full disk, "
                                    "`/dev/full`): it was printed on stdout instead, with one line on stderr saying "
                                    "why"),
    ExitStatus.INTERRUPTED: ("interrupted (Ctrl-C)",
                             "interrupted (Ctrl-C): the report of the finished hosts was printed, the rest listed as "
                             "`host-not-audited`; the report's `exit_code` says 130"),
    ExitStatus.READER_GONE: ("stdout closed by its reader (| head)",
                             "the reader of stdout closed it early (for example `head`, also after `--help` or "
                             "`--list`): the rest of the output was dropped, quietly"),
    ExitStatus.TERMINATED: ("terminated (SIGTERM)",
                            "terminated (SIGTERM, as CI timeouts and `timeout` send it): as for Ctrl-C, the report of "
                            "the finished hosts was printed (or written to `--output`), the rest listed as "
                            "`host-not-audited`; the report's `exit_code` says 143"),
}


def exit_codes_text():
    """The exit codes in one paragraph, for `--help`."""
    return "Exit codes: " + "; ".join("%d %s" % (code, EXIT_MEANINGS[code][0]) for code in ExitStatus) + \
        ". Interrupted or terminated audits still print the report of the finished hosts."


def exit_codes_table():
    """The docs' table of exit codes (`python -m auditor.errors`)."""
    return "\n".join(["| code | meaning |", "|---|---|"] +
                     ["| %d | %s |" % (code, EXIT_MEANINGS[code][1]) for code in ExitStatus])


class AuditorError(Exception):
    """Base of every error the auditor raises on purpose."""

    exit_code = ExitStatus.USAGE


class InventoryError(AuditorError):
    """The inventory cannot be used; the message names file, line, key and a fix."""


class UsageError(AuditorError):
    """A task was called with arguments that cannot work."""


class SandboxError(AuditorError):
    """The local sandbox fleet cannot be started or is not running."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI timeout, `timeout`, systemd): the audit stops as for Ctrl-C, and says which."""


def aws_error_code(error):
    """The AWS error code of a boto3/botocore exception raised on the controller, else its type name."""
    response = getattr(error, "response", None) or {}
    return (response.get("Error") or {}).get("Code") or type(error).__name__


if __name__ == "__main__":
    print(exit_codes_table())
