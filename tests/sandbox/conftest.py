"""The real sandbox fleet (sshd, dockerd, moto on loopback), started once per
test session and stopped at its end. Needs root (Docker daemons): every test
here carries the `sandbox` marker and is skipped, with the reason, when not root."""
import os
import time
import urllib.parse

import pytest

from auditor import audit
from sandbox.fleet import Sandbox


class Fleet:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.scenario = None

    def use(self, scenario):
        if scenario != self.scenario:
            self.sandbox.up(scenario)
            self.scenario = scenario
        return self.sandbox.inventory

    def audit_until(self, predicate, timeout=180, inventory_path=None, **kwargs):
        """Audit again until the fleet has produced the evidence (bounded wait). The deadline is
        for a slow machine (the apps' first jobs come after their containers import boto3 on
        overlays of overlays: over a minute on a stock root); a fast one returns as soon as the
        evidence is there, so only a real failure pays for it."""
        deadline = time.monotonic() + timeout
        while True:
            result = audit.run_audit(inventory_path or self.sandbox.inventory, **kwargs)
            if predicate(result) or time.monotonic() > deadline:
                return result
            time.sleep(2)

    def host(self, name):
        return self.sandbox.hosts[name]

    def env_secrets(self, names):
        """The secret keys and full key ids in these hosts' .env files: what no output may hold."""
        lines = [line for name in names for line in (self.host(name).app_dir / ".env").read_text().splitlines()]
        pairs = [line.split("=", 1) for line in lines if "=" in line]
        found = {value for key, value in pairs if "SECRET" in key or key.endswith("ACCESS_KEY_ID")}
        return found | {urllib.parse.urlsplit(value).password for key, value in pairs    # a proxy's password
                        if key.endswith("_PROXY") and urllib.parse.urlsplit(value).password}


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.sandbox)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="the sandbox tests need root: they start Docker daemons "
                                                        "(run them as root, as `./dev test` and CI do)"))


@pytest.fixture(scope="session")
def fleet():
    sandbox = Sandbox()
    yield Fleet(sandbox)
    sandbox.down()
