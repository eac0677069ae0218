"""A toy transport for tests: the agent's command run by `sh -c` on this machine. It is all a new
backend needs (this module, and one line in transports.BACKENDS), and it runs the real agent."""
import subprocess
import time
from dataclasses import dataclass

from auditor.transports import Backend
from auditor.transports.base import OutcomeKind, RunOutcome, Target, Transport
from auditor.transports.causes import command_outcome, ran_past


@dataclass(frozen=True)
class LocalTarget(Target):
    """This machine, under any name."""

    @classmethod
    def from_variables(cls, name, variables, settings, declared=lambda key: True):
        return cls(address=str(variables.get("ansible_host") or "localhost"))


TARGET = LocalTarget


class LocalShell(Transport):
    name = "local-shell"
    keeps_stdin_open = False

    def run(self, spec, command, timeout, connect_timeout):
        started = time.monotonic()
        try:
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired:
            return RunOutcome(spec.name, OutcomeKind.TIMEOUT, detail=ran_past(timeout),
                              seconds=time.monotonic() - started)
        return command_outcome(spec.name, done.returncode, done.stdout, done.stderr, timeout,
                               time.monotonic() - started)


REGISTRY_LINE = ("local-shell", Backend("local_transport", "LocalShell", "local_transport"))
