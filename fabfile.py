"""Fleet auditor tasks. `fab --list` shows them; `fab --help TASK` explains each.

Exit codes (stable): 0 no error-level finding, 1 error-level findings,
2 usage or inventory error, 3 an unexpected failure of the auditor itself
(one line; the traceback with FLEET_AUDIT_DEBUG=1), 130 interrupted (Ctrl-C).
"""
import difflib
import functools
import os
import sys
import traceback
from pathlib import Path

from fabric import task
from invoke import Collection, Exit

from auditor import audit as audit_pipeline
from auditor import codes, drift
from auditor import inventory as inventory_module
from auditor.errors import AuditorError, UsageError
from auditor.progress import Progress
from auditor.render import FORMATS, MATRIX_FORMATS, render, render_matrix, use_colour
from auditor.render.steps import render_steps
from auditor.render.table import inventory_table
from auditor.sandbox import fleet, golden, scenarios


CROSS_CHECK_PROGRESS = Progress("cross-check", unit="lookups")


EXIT_UNEXPECTED, EXIT_INTERRUPTED = 3, 130


def _fail(error):
    raise Exit("error: %s" % error, code=getattr(error, "exit_code", audit_pipeline.EXIT_USAGE))


def guarded(body):
    """Every task ends in an exit code, never a traceback: usage and inventory errors exit 2,
    Ctrl-C 130, and anything unexpected one line and 3."""
    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except Exit:
            raise
        except AuditorError as error:
            _fail(error)
        except KeyboardInterrupt:
            raise Exit("interrupted", code=EXIT_INTERRUPTED)
        except Exception as error:  # the auditor's own bug: say it in one line, keep the traceback for --debug
            if os.environ.get("FLEET_AUDIT_DEBUG"):
                traceback.print_exc()
            raise Exit("error: unexpected %s: %s (set FLEET_AUDIT_DEBUG=1 for the traceback)" % (
                type(error).__name__, str(error)[:300]), code=EXIT_UNEXPECTED)
    return run


def _parallel(value):
    """--parallel N: a whole number from 1 up, or None for the inventory's setting."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= inventory_module.LIMITS["parallel"][1]:
        raise UsageError("--parallel %r is not a number of hosts from 1 to %d" % (
            value, inventory_module.LIMITS["parallel"][1]))
    return int(text)


def _check_output(output):
    """Before any host is visited: the report must have somewhere to go."""
    if not output:
        return
    parent = Path(output).expanduser().resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK) or Path(output).is_dir():
        raise UsageError("cannot write the report to %s: %s" % (
            output, "it is a directory" if Path(output).is_dir() else "no writable directory %s" % parent))


def _check_format(format):
    """Before any host is visited: a wrong --format must not cost an audit."""
    if format not in FORMATS:
        _fail(UsageError("unknown format %r; choose one of: %s" % (format, ", ".join(FORMATS))))


def _emit(text, output):
    if output:      # reports describe the fleet's credentials (masked): readable by their owner only
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print("report written to %s" % output, file=sys.stderr)
    else:
        print(text)


@task(help={
    "inventory": "inventory file (default: inventory.yaml)",
    "format": "report format: %s" % "|".join(FORMATS),
    "output": "write the report to this file instead of stdout",
    "hosts": "only these hosts (comma-separated names)",
    "roles": "only hosts with these roles (comma-separated)",
    "parallel": "hosts audited at once (default: auditor.parallel, 20)",
    "accept-new-host-keys": "trust unknown host keys on first use and record them in known_hosts",
    "matrix": "show the cross-host comparison matrix (--no-matrix hides it)",
    "matrix-only": "print only the comparison matrix (table, json or markdown)",
    "cross-check": "also look for every queue name with the controller's own AWS credentials "
                   "(auditor.cross_check: profiles, regions), to say where each queue really is",
})
@guarded
def audit(c, inventory="inventory.yaml", format="table", output=None, hosts=None, roles=None, parallel=None,
          accept_new_host_keys=False, matrix=True, matrix_only=False, cross_check=False):
    """Audit every host in parallel: SQS from each app's environment, containers, logs, verdicts."""
    _check_format(format)
    _check_output(output)
    if matrix_only and format not in MATRIX_FORMATS:
        _fail(AuditorError("--matrix-only prints a table, json or markdown, not %s" % format))
    result = audit_pipeline.run_audit(inventory, hosts=hosts, roles=roles, parallel=_parallel(parallel),
                                      accept_new=accept_new_host_keys, progress=Progress("audit"),
                                      cross_check=cross_check, cross_check_progress=CROSS_CHECK_PROGRESS)
    colour = use_colour() and not output
    _emit(render_matrix(result, format, colour) if matrix_only else render(result, format, colour, matrix), output)
    _exit_for(result)


def _exit_for(result):
    if result.interrupted:
        raise Exit("interrupted: %d host(s) not audited" % len(result.interrupted), code=EXIT_INTERRUPTED)
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(name="check-host", help={
    "name": "the host's inventory name",
    "inventory": "inventory file (default: inventory.yaml)",
    "app-check": "also run the app's own check script (it calls ReceiveMessage, which hides a job for a while)",
    "accept-new-host-keys": "trust an unknown host key on first use and record it",
    "cross-check": "also say where the host's queues really are, seen with the controller's own AWS credentials",
})
@guarded
def check_host(c, name, inventory="inventory.yaml", app_check=False, accept_new_host_keys=False, cross_check=False):
    """One host, the runbook's three steps in order, with what was seen, verdicts and remedies."""
    if app_check:
        print("warning: --app-check runs the app's own check script, which calls ReceiveMessage: a real job "
              "is hidden from the workers for its visibility timeout", file=sys.stderr)
    result = audit_pipeline.run_audit(inventory, hosts=name, accept_new=accept_new_host_keys,
                                      run_check_script=app_check or None, cross_check=cross_check,
                                      cross_check_progress=CROSS_CHECK_PROGRESS)
    print(render_steps(result.hosts[0], result.cross_check, [f for f in result.findings if f.step == 4]))
    _exit_for(result)


@task(help={
    "baseline": "YAML file of expected values: `attribute: value` or `attribute: {role: value}` "
                "(attribute names as in the comparison matrix)",
    "inventory": "inventory file (default: inventory.yaml)",
    "strict": "also fail on warnings",
    "format": "report format: %s" % "|".join(FORMATS),
    "output": "write the report to this file",
    "cross-check": "also look for every queue name with the controller's own AWS credentials",
})
@guarded
def preflight(c, baseline, inventory="inventory.yaml", strict=False, format="table", output=None, cross_check=False):
    """Pre-release audit: fail (exit 1) when the fleet drifts from the baseline or has errors."""
    _check_format(format)
    _check_output(output)
    expected = drift.load_baseline(baseline)
    result = audit_pipeline.run_audit(inventory, baseline=expected, progress=Progress("preflight"),
                                      cross_check=cross_check, cross_check_progress=CROSS_CHECK_PROGRESS)
    _emit(render(result, format, colour=use_colour() and not output), output)
    if result.interrupted:
        _exit_for(result)
    drifted = drift.drift(result, expected)
    for host, attribute, seen, wanted in drifted:
        print("drift: %s %s is %s, baseline says %s" % (host, attribute, seen, wanted), file=sys.stderr)
    warnings = [f for f in result.findings if f.severity == "warning"]
    if drifted or result.exit_code or (strict and warnings):
        raise Exit("preflight failed: %d drifted value(s), %d error finding(s)%s" % (
            len(drifted), sum(f.severity == "error" for f in result.findings),
            ", %d warning(s) (--strict)" % len(warnings) if strict else ""), code=1)
    print("preflight passed", file=sys.stderr)


@task(help={"old": "an earlier saved audit (fab audit --format json --output FILE)", "new": "a later one"})
@guarded
def diff(c, old, new):
    """Show what changed between two saved audits: hosts, verdicts, values, findings."""
    lines = drift.diff_snapshots(drift.load_snapshot(old), drift.load_snapshot(new))
    print("\n".join(lines) if lines else "no change")


@task(help={
    "inventory": "inventory file (default: inventory.yaml), YAML or an aws_ec2 plugin file",
    "hosts": "only these hosts (comma-separated names)",
    "roles": "only hosts with these roles (comma-separated)",
})
@guarded
def hosts(c, inventory="inventory.yaml", hosts=None, roles=None):
    """List the hosts an audit would visit: address, user, roles, groups, where the app's environment comes from."""
    specs = inventory_module.select(inventory_module.load_inventory(inventory), hosts, roles)
    print(inventory_table(specs))


@task(help={"code": "a finding code, e.g. logs-unreadable; `fab explain all` lists every code"})
def explain(c, code):
    """Say what a finding code means, the verdict it implies and its fix (like ansible-doc)."""
    if code == "all":
        for entry in codes.CODES.values():
            print("%-26s %-7s step %d  %s" % (entry.code, entry.severity, entry.step, entry.description))
        return
    if code not in codes.CODES:
        close = difflib.get_close_matches(code, codes.CODES, n=1)
        _fail(UsageError("unknown finding code %r%s; `fab explain all` lists them all"
                         % (code, " (did you mean %r?)" % close[0] if close else "")))
    print(codes.explain(code))


@task(help={"scenario": "one of: %s" % ", ".join(scenarios.SCENARIOS)})
def up(c, scenario="healthy"):
    """Start the local sandbox fleet (or switch its scenario); prints the inventory path."""
    try:
        inventory = fleet.Sandbox().up(scenario, progress=lambda m: print("sandbox: " + m, file=sys.stderr))
    except AuditorError as error:
        _fail(error)
    print(inventory)


@task
def down(c):
    """Stop everything the sandbox started (sshd, dockerd, containers, moto)."""
    fleet.Sandbox().down()
    print("sandbox stopped", file=sys.stderr)


@task
def status(c):
    """Say what the sandbox runs, the active scenario and the inventory path."""
    print("\n".join(fleet.Sandbox().status()))


@task
def scenario_list(c):
    """List the sandbox scenarios and the findings each must produce."""
    for item in scenarios.SCENARIOS.values():
        expect = ", ".join("%s on %s" % (code, host) for host, code in item.expect) or "no error"
        print("%-20s %s\n%-20s expect: %s" % (item.name, item.summary, "", expect))


@task(name="record-golden", help={"scenario": "only this scenario (default: every one)",
                                  "directory": "where to write SCENARIO.json (default: tests/golden)"})
def record_golden(c, scenario=None, directory="tests/golden"):
    """Record each scenario's raw agent facts for the golden tests (needs root, like sandbox.up)."""
    chosen = [scenarios.SCENARIOS[scenario]] if scenario else list(scenarios.SCENARIOS.values())
    sandbox = fleet.Sandbox()
    try:
        for item in chosen:
            golden.record(sandbox, item, directory, say=lambda m: print(m, file=sys.stderr))
    except AuditorError as error:
        _fail(error)


ns = Collection(audit, check_host, preflight, diff, hosts, explain,
                Collection("sandbox", up, down, status, scenario_list, record_golden))
