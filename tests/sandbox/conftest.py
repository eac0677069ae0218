"""The real sandbox fleet (sshd, dockerd, moto on loopback), started once per
test session and stopped at its end. Needs root (Docker daemons)."""
import os
import time

import pytest

from auditor import audit
from auditor.sandbox.fleet import Sandbox


class Fleet:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.scenario = None

    def use(self, scenario):
        if scenario != self.scenario:
            self.sandbox.up(scenario)
            self.scenario = scenario
        return self.sandbox.inventory

    def audit_until(self, predicate, timeout=60, inventory_path=None, **kwargs):
        """Audit again until the fleet has produced the evidence (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            result = audit.run_audit(inventory_path or self.sandbox.inventory, **kwargs)
            if predicate(result) or time.monotonic() > deadline:
                return result
            time.sleep(2)

    def host(self, name):
        return self.sandbox.hosts[name]


@pytest.fixture(scope="session")
def fleet():
    if os.geteuid() != 0:
        pytest.fail("the sandbox tests need root: they start Docker daemons")
    sandbox = Sandbox()
    yield Fleet(sandbox)
    sandbox.down()
