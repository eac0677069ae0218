"""The real sandbox fleet (sshd, dockerd, moto on loopback), started once per
test session and stopped at its end. Needs root (Docker daemons): every test
here carries the `sandbox` marker and is skipped, with the reason, when not root.

`./dev test` runs the suite in parallel workers (pytest-xdist, `--dist loadgroup`): the sandbox
tests are split into groups, each run by one worker on a fleet of its own (a sandbox slot), so the
tests that wait for a fleet (its first jobs, AWS's next published minute) wait side by side."""
import fcntl
import os
import time
import urllib.parse

import pytest

from auditor import audit
from sandbox.fleet import Sandbox
from sandbox.scenarios import SCENARIOS


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
            pytest.fail("the sandbox fleet in %s is in use by another test process: each of pytest-xdist's "
                        "workers must run one group of sandbox tests (--dist loadgroup)" % sandbox.root)

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


PARALLEL = "PYTEST_XDIST_WORKER" in os.environ


def fleet_slot(item):
    """Which fleet runs a sandbox test: the scenarios that wait for AWS's published minutes on
    one, the other scenarios on another, every other sandbox test (most on `healthy`) on a third."""
    if item.module.__name__.endswith("test_scenarios"):
        scenario = SCENARIOS.get(getattr(item, "callspec", None) and item.callspec.params.get("name"))
        waits_for_aws = (scenario and scenario.cross_check) or "aws_account" in item.name
        return 1 if waits_for_aws else 2 if scenario else 0
    return 0


@pytest.hookimpl(tryfirst=True)         # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.sandbox)
            item.add_marker(pytest.mark.xdist_group("fleet-%d" % fleet_slot(item)))
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="the sandbox tests need root: they start Docker daemons "
                                                        "(run them as root, as `./dev test` and CI do)"))


@pytest.fixture(scope="session")
def fleets():
    """The fleet this worker runs (one at a time), by slot; stopped at the session's end."""
    running = {}
    yield running
    for fleet in running.values():
        fleet.stop()


@pytest.fixture
def fleet(fleets, request):
    slot = fleet_slot(request.node) if PARALLEL else 0
    if slot not in fleets:
        for other in list(fleets):
            fleets.pop(other).stop()
        fleets[slot] = Fleet(Sandbox(slot=slot))
    return fleets[slot]
