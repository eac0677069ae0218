"""The one exception root, and the one table of exit codes. Per-host failures are data, not
exceptions: only problems that stop the whole run (bad inventory, bad usage) raise."""
from enum import IntEnum


class ExitStatus(IntEnum):
    """Every exit code a task can end with (the README's table and `--help` say the same)."""
    OK = 0                      # no error-level finding (diff: no change)
    FINDINGS = 1                # error-level findings, unreachable hosts included (diff: something changed)
    USAGE = 2                   # usage or inventory error: nothing audited
    UNEXPECTED = 3              # the auditor's own bug
    REPORT_NOT_WRITTEN = 4      # --output could not be written: the report went to stdout
    INTERRUPTED = 130           # Ctrl-C
    READER_GONE = 141           # stdout closed by its reader (| head)
    TERMINATED = 143            # SIGTERM


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
