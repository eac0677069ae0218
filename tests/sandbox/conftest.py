"""The real sandbox fleet (sshd, dockerd, moto on loopback), started once per
test session and stopped at its end. Needs root (Docker daemons): every test
here carries the `sandbox` marker and is skipped, with the reason, when not root.

`./dev test` runs the suite in parallel workers (pytest-xdist, `--dist loadgroup`), each with a
fleet of its own (a sandbox slot), so the tests that wait for a fleet (its first jobs, AWS's next
published minute) wait side by side; the longest are handed out first."""
import fcntl
import os
import time
import urllib.parse

import pytest

from auditor import audit
from sandbox.fleet import Sandbox
from sandbox.scenarios import SCENARIOS

HERE = os.path.dirname(__file__)


class Fleet:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.scenario = None
        # one process per fleet: a second would switch scenarios under the first one's tests
        sandbox.root.mkdir(parents=True, exist_ok=True)
        self._claim = open(sandbox.root / "tests.lock", "w")
        try:
            fcntl.flock(self._claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail("the sandbox fleet in %s is in use by another test process (two test runs at once?): "
                        "each worker of a run has a slot of its own" % sandbox.root)

    def stop(self):
        self.sandbox.down()
        self._claim.close()

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


def _dispatch_rank(item):
    """Where a test stands in the order the workers take tests: longest first, so that no worker
    starts a long wait when the others are done. First the scenarios that wait for AWS's published
    minutes (one to two minutes each), then the modules whose tests share one scenario (a group,
    on one fleet), then the other scenarios, then every test without a fleet."""
    if not str(item.fspath).startswith(HERE):
        return 3
    if item.module.__name__.endswith("test_scenarios"):
        scenario = SCENARIOS.get(item.callspec.params.get("name")) if hasattr(item, "callspec") else None
        return 0 if (scenario and scenario.cross_check) or "aws_account" in item.name else 2
    return 1


@pytest.hookimpl(tryfirst=True)         # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.sandbox)
            if _dispatch_rank(item) == 1:
                item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="the sandbox tests need root: they start Docker daemons "
                                                        "(run them as root, as `./dev test` and CI do)"))
    items.sort(key=_dispatch_rank)


@pytest.fixture(scope="session")
def fleet():
    """This process's fleet: each of pytest-xdist's workers has its own (its number is the
    sandbox's slot), so any worker can take any scenario."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    running = Fleet(Sandbox(slot=int(worker[2:]) if worker[2:].isdigit() else 0))
    yield running
    running.stop()
