"""The sandbox's tasks (`fab sandbox.up|down|status|scenario-list|record-golden`): only in a
checkout, never in an operator's install."""
import importlib.util
import sys

from invoke import Collection

from auditor.taskkit import guarded, task
from auditor.errors import SandboxError

from . import fleet, golden, scenarios

NEEDS = ("moto", "flask", "flask_cors")


def require_sandbox_dependencies():
    """One clear line, before anything starts, when the [sandbox] extra is not installed."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise SandboxError("the sandbox needs %s: install the project with its extra, "
                           "pip install -e '.[sandbox]' (./dev demo does)" % ", ".join(missing))


def say(message):
    print("sandbox: " + message, file=sys.stderr)


@task(help={"scenario": "one of: %s" % ", ".join(scenarios.SCENARIOS)})
@guarded
def up(c, scenario="healthy"):
    """Start the local sandbox fleet (or switch its scenario); prints the inventory path."""
    require_sandbox_dependencies()
    print(fleet.Sandbox().up(scenario, progress=say))


@task
@guarded
def down(c):
    """Stop everything the sandbox started (sshd, dockerd, containers, processes, moto)."""
    fleet.Sandbox().down()
    say("stopped")


@task
@guarded
def status(c):
    """Say what the sandbox runs, the active scenario and the inventory path."""
    print("\n".join(fleet.Sandbox().status()))


@task(name="scenario-list")
@guarded
def scenario_list(c):
    """List the sandbox scenarios and the findings each must produce."""
    for item in scenarios.SCENARIOS.values():
        expect = ", ".join("%s on %s" % (code, host) for host, code in item.expect) or "no finding"
        print("%-22s %s\n%-22s expect: %s" % (item.name, item.summary, "", expect))


@task(name="record-golden", help={"scenario": "only this scenario (default: every one)",
                                  "directory": "where to write SCENARIO.json (default: tests/golden)"})
@guarded
def record_golden(c, scenario=None, directory="tests/golden"):
    """Record each scenario's raw agent facts for the golden tests (needs root, like sandbox.up)."""
    require_sandbox_dependencies()
    if scenario is not None and scenario not in scenarios.SCENARIOS:
        raise SandboxError("unknown scenario %r; choose one of: %s" % (scenario, ", ".join(scenarios.SCENARIOS)))
    chosen = [scenarios.SCENARIOS[scenario]] if scenario else list(scenarios.SCENARIOS.values())
    sandbox = fleet.Sandbox()
    for item in chosen:
        golden.record(sandbox, item, directory, say=say)


collection = Collection("sandbox", up, down, status, scenario_list, record_golden)
