"""The one exception root. Per-host failures are data, not exceptions:
only problems that stop the whole run (bad inventory, bad usage) raise."""


class AuditorError(Exception):
    """Base of every error the auditor raises on purpose."""

    exit_code = 2


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
