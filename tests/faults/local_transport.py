"""A toy transport for tests: the agent's command run by `sh -c` on this machine. It is what a new
backend needs (one class, one registry line), and it runs the real remote command for real."""
import subprocess
import time

from auditor.transports.base import OutcomeKind, RunOutcome, Transport
from auditor.transports.causes import command_outcome, ran_past


class LocalShell(Transport):
    name = "local-shell"
    keeps_stdin_open = False

    def run(self, spec, command, timeout, connect_timeout):
        started = time.monotonic()
        try:
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired:
            return RunOutcome(spec.name, str(OutcomeKind.TIMEOUT), detail=ran_past(timeout),
                              seconds=time.monotonic() - started)
        return command_outcome(spec.name, done.returncode, done.stdout, done.stderr, timeout,
                               time.monotonic() - started)


REGISTRY_LINE = ("local-shell", ("local_transport", "LocalShell"))
