"""The command line: one set of tasks for the installed `fleet-audit` and for `fab` in the checkout.

Every task ends in a documented exit code, never a traceback. Long flags mean the same in every
task; only harmless ones have a short form (no short flag trusts a key or calls ReceiveMessage).
Fabric's and Invoke's own core flags either work as they say or are refused: none is ignored.
"""
import difflib
import functools
import inspect
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from fabric import Connection
from fabric import task as fabric_task
from fabric.tasks import Task as FabricTask
from invoke import Collection, Exit, Program

from . import __version__, codes, drift
from . import audit as pipeline
from . import inventory as inventory_module
from .errors import AuditorError, UsageError
from .progress import Progress
from .render import FORMATS, MATRIX_FORMATS, render, render_matrix, render_pieces, use_colour
from .render.steps import render_steps
from .render.table import inventory_table

EXIT_UNEXPECTED, EXIT_INTERRUPTED, EXIT_READER_GONE = 3, 130, 141
SHORT_FLAGS = {"inventory": "i", "format": "f", "output": "o", "roles": "r", "parallel": "p"}
CROSS_CHECK_PROGRESS = Progress("cross-check", unit="lookups")
COMMON_HELP = {
    "inventory": "inventory file: YAML, or an aws_ec2 plugin file (default: inventory.yaml)",
    "hosts": "only these hosts (comma-separated names)",
    "roles": "only hosts with these roles (comma-separated)",
    "parallel": "hosts audited at once (default: auditor.parallel)",
    "format": "report format: %s" % "|".join(FORMATS),
    "output": "write the report to this file (created 0600) instead of stdout",
    "accept-new-host-keys": "trust unknown host keys on first use and record them in known_hosts",
    "cross-check": "also look for every queue name with the controller's own AWS credentials, to say where "
                   "each queue really is (auditor.cross_check)",
    "debug": "log each host's remote command (without its payload), timings and transport decisions to "
             "stderr; tracebacks of unexpected errors",
}


class AuditTask(FabricTask):
    """Short flags only from SHORT_FLAGS: Invoke would give every flag one, and they would clash
    between tasks (`-a` trusting keys in one task, calling ReceiveMessage in another)."""

    def arg_opts(self, name, default, taken_names):
        automatic, self.auto_shortflags = self.auto_shortflags, False
        try:
            opts = super().arg_opts(name, default, taken_names)
        finally:
            self.auto_shortflags = automatic
        short = SHORT_FLAGS.get(name)
        if short and short not in taken_names:
            opts["names"].append(short)
        return opts


def task(*args, **kwargs):
    """Fabric's @task with AuditTask, and COMMON_HELP for every common flag the task has."""
    if args and callable(args[0]):
        return task()(args[0])
    extra = kwargs.pop("help", {})

    def decorate(body):
        names = [name.replace("_", "-") for name in inspect.signature(body).parameters]
        helps = dict({name: COMMON_HELP[name] for name in names if name in COMMON_HELP}, **extra)
        return fabric_task(klass=AuditTask, help=helps, **kwargs)(body)
    return decorate


def _fail(error):
    raise Exit("error: %s" % error, code=getattr(error, "exit_code", pipeline.EXIT_USAGE))


REFUSED_CORE_FLAGS = (
    # (is it set in this context's config?, the flag, what to do instead)
    (lambda c: isinstance(c, Connection), "-H/--hosts before the task",
     "it runs the task once per host, one after another; use the task's own --hosts"),
    (lambda c: c.config.run.dry, "-R/--dry", "nothing is dry-run here; `hosts` lists what an audit would visit"),
    (lambda c: c.config.get("connect_kwargs", {}).get("key_filename"), "-i/--identity before the task",
     "set ansible_ssh_private_key_file in the inventory (-i after the task is --inventory)"),
    (lambda c: c.config.get("connect_kwargs", {}).get("password") or
     c.config.get("connect_kwargs", {}).get("passphrase"), "--prompt-for-login-password/--prompt-for-passphrase",
     "use keys (ansible_ssh_private_key_file) or an SSH agent"),
    (lambda c: (c.config.get("timeouts") or {}).get("connect"), "-t/--connect-timeout",
     "set auditor.timeouts.connect in the inventory"),
    (lambda c: (c.config.get("timeouts") or {}).get("command"), "-T/--command-timeout",
     "set auditor.timeouts.command in the inventory"),
    (lambda c: c.config.get("ssh_config_path"), "-S/--ssh-config", "the auditor reads ~/.ssh/config"),
    (lambda c: c.config.get("forward_agent"), "-A/--forward-agent", "the audit never forwards the SSH agent"),
    (lambda c: c.config.run.echo or c.config.run.warn or c.config.run.pty or c.config.run.hide,
     "-e/--echo, -w/--warn-only, -p/--pty or --hide", "they change local commands, and the audit runs none"),
)


def _refuse_core_flags(c):
    for is_set, flag, instead in REFUSED_CORE_FLAGS:
        if is_set(c):
            raise UsageError("%s is not used by the auditor: %s" % (flag, instead))


def guarded(body):
    """Every task ends in an exit code, never a traceback: usage and inventory errors exit 2,
    Ctrl-C 130, a closed stdout 141, and anything unexpected one line and 3 (the traceback with
    --debug)."""
    @functools.wraps(body)
    def run(c, *args, **kwargs):
        debug = kwargs.get("debug") or os.environ.get("FLEET_AUDIT_DEBUG")
        if debug:
            logging.basicConfig(stream=sys.stderr, format="debug: %(message)s")
            logging.getLogger("auditor").setLevel(logging.DEBUG)
        try:
            _refuse_core_flags(c)
            return body(c, *args, **kwargs)
        except Exit:
            raise
        except AuditorError as error:
            _fail(error)
        except KeyboardInterrupt:
            raise Exit("interrupted", code=EXIT_INTERRUPTED)
        except BrokenPipeError:     # `| head` read enough: stop quietly, as a killed-by-SIGPIPE tool would
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=EXIT_READER_GONE)
        except Exception as error:  # the auditor's own bug: one line; the traceback with --debug
            if debug:
                traceback.print_exc()
            raise Exit("error: unexpected %s: %s (run again with --debug for the traceback)" % (
                type(error).__name__, str(error)[:300]), code=EXIT_UNEXPECTED)
    return run


def _parallel(value):
    """--parallel N: a whole number from 1 up, or None for the inventory's setting."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    largest = inventory_module.LIMITS["parallel"][1]
    if not text.isdigit() or not 1 <= int(text) <= largest:
        raise UsageError("--parallel %r is not a number of hosts from 1 to %d" % (value, largest))
    return int(text)


def _check_output(output):
    """Before any host is visited: the report must have somewhere to go."""
    if not output:
        return
    path = Path(output).expanduser()
    parent = path.resolve().parent
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError("cannot write the report to %s: %s" % (
            output, "it is a directory" if path.is_dir() else "no writable directory %s" % parent))


def _check_format(fmt, allowed=FORMATS):
    """Before any host is visited: a wrong --format must not cost an audit."""
    if fmt not in allowed:
        raise UsageError("unknown format %r; choose one of: %s" % (fmt, ", ".join(allowed)))


def _emit(text, output):
    """Write a report (a string, or pieces of one) to stdout or, readable by its owner only, to a
    file: reports describe the fleet's credentials (masked)."""
    pieces = [text] if isinstance(text, str) else text
    if output:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.writelines(pieces)
            handle.write("\n")
        print("report written to %s" % output, file=sys.stderr)
    else:
        sys.stdout.writelines(pieces)
        sys.stdout.write("\n")


def _exit_for(result):
    if result.interrupted:
        raise Exit("interrupted: %d host(s) not audited" % len(result.interrupted), code=EXIT_INTERRUPTED)
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(help=dict(**{
    "matrix": "show the cross-host comparison matrix (--no-matrix hides it)",
    "matrix-only": "print only the comparison matrix (table, json or markdown)",
}))
@guarded
def audit(c, inventory="inventory.yaml", hosts=None, roles=None, parallel=None, format="table", output=None,
          accept_new_host_keys=False, matrix=True, matrix_only=False, cross_check=False, debug=False):
    """Audit every host in parallel: SQS from each app's environment, containers, logs, verdicts."""
    _check_format(format, MATRIX_FORMATS if matrix_only else FORMATS)
    _check_output(output)
    result = pipeline.run_audit(inventory, hosts=hosts, roles=roles, parallel=_parallel(parallel),
                                accept_new=accept_new_host_keys, progress=Progress("audit"),
                                cross_check=cross_check, cross_check_progress=CROSS_CHECK_PROGRESS)
    colour = use_colour() and not output
    _emit(render_matrix(result, format, colour) if matrix_only else render_pieces(result, format, colour, matrix),
          output)
    _exit_for(result)


@task(name="check-host", help=dict(**{
    "name": "the host's inventory name",
    "format": "table (the runbook's steps) or json",
    "app-check": "also run the app's own check script: it calls ReceiveMessage, which hides a real job for "
                 "its visibility timeout",
    "raw": "print the host's raw facts (the agent's JSON, already redacted on the host), for bug reports",
}))
@guarded
def check_host(c, name, inventory="inventory.yaml", format="table", output=None, app_check=False,
               accept_new_host_keys=False, cross_check=False, raw=False, debug=False):
    """One host, the runbook's three steps in order, with what was seen, verdicts and remedies."""
    _check_format(format, ("table", "json"))
    _check_output(output)
    if app_check:
        print("warning: --app-check runs the app's own check script, which calls ReceiveMessage: a real job "
              "is hidden from the workers for its visibility timeout", file=sys.stderr)
    if raw:
        _, runs = pipeline.collect_runs(inventory, hosts=name, accept_new=accept_new_host_keys,
                                        run_check_script=app_check or None, keep_raw=True)
        run = runs[0]
        _emit(json.dumps(run.facts if run.facts is not None else {
            "transport": {"kind": run.outcome.kind, "detail": run.outcome.detail}}, indent=2), output)
        return
    result = pipeline.run_audit(inventory, hosts=name, accept_new=accept_new_host_keys,
                                run_check_script=app_check or None, cross_check=cross_check,
                                cross_check_progress=CROSS_CHECK_PROGRESS)
    if format == "json":
        _emit(render(result, "json"), output)
    else:
        _emit(render_steps(result.hosts[0], result.cross_check, [f for f in result.findings if f.step == 4]), output)
    _exit_for(result)


@task(help=dict(**{
    "baseline": "YAML file of expected values: `attribute: value` or `attribute: {role: value}` (attribute "
                "names as in the comparison matrix)",
    "strict": "also fail on warnings",
}))
@guarded
def preflight(c, baseline, inventory="inventory.yaml", hosts=None, roles=None, parallel=None, format="table",
              output=None, accept_new_host_keys=False, strict=False, cross_check=False, debug=False):
    """Pre-release audit: fail (exit 1) when the fleet drifts from the baseline or has errors."""
    _check_format(format)
    _check_output(output)
    expected = drift.load_baseline(baseline)
    result = pipeline.run_audit(inventory, hosts=hosts, roles=roles, parallel=_parallel(parallel),
                                accept_new=accept_new_host_keys, baseline=expected, progress=Progress("preflight"),
                                cross_check=cross_check, cross_check_progress=CROSS_CHECK_PROGRESS)
    _emit(render_pieces(result, format, colour=use_colour() and not output), output)
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


@task(help={"old": "an earlier saved audit (audit --format json --output FILE)", "new": "a later one"})
@guarded
def diff(c, old, new):
    """Show what changed between two saved audits: hosts, verdicts, values, findings."""
    lines = drift.diff_snapshots(drift.load_snapshot(old), drift.load_snapshot(new))
    print("\n".join(lines) if lines else "no change")


@task
@guarded
def hosts(c, inventory="inventory.yaml", hosts=None, roles=None):
    """List the hosts an audit would visit: address, user, roles, groups, where the app's environment comes from."""
    print(inventory_table(inventory_module.select(inventory_module.load_inventory(inventory), hosts, roles)))


@task(help={"code": "a finding code, e.g. logs-unreadable; `explain all` lists every code"})
@guarded
def explain(c, code):
    """Say what a finding code means, the verdict it implies and its fix (like ansible-doc)."""
    if code == "all":
        for entry in codes.CODES.values():
            print("%-26s %-7s step %d  %s" % (entry.code, entry.severity, entry.step, entry.description))
        return
    if code not in codes.CODES:
        close = difflib.get_close_matches(code, codes.CODES, n=1)
        raise UsageError("unknown finding code %r%s; `explain all` lists them all"
                         % (code, " (did you mean %r?)" % close[0] if close else ""))
    print(codes.explain(code))


def namespace():
    """The operator's tasks, plus the sandbox's when its package is importable (a checkout)."""
    collection = Collection(audit, check_host, preflight, diff, hosts, explain)
    try:
        from sandbox.tasks import collection as sandbox_collection
    except ImportError:         # an operator install: no sandbox, and no sandbox tasks
        return collection
    collection.add_collection(sandbox_collection)
    return collection


EPILOG = """
Examples:
  fleet-audit audit -i inventory.yaml                    every host, a table on stdout
  fleet-audit audit -i inventory.yaml -f json | jq .      JSON for scripts (progress goes to stderr)
  fleet-audit check-host video-1 -i inventory.yaml       one host, the runbook's steps in order
  fleet-audit preflight --baseline baseline.yaml -i inventory.yaml --strict
  fleet-audit diff before.json after.json
  fleet-audit explain logs-unreadable

Exit codes: 0 no error-level finding; 1 error-level findings (unreachable hosts included);
2 usage or inventory error (nothing audited); 3 unexpected failure of the auditor; 130 interrupted;
141 stdout closed by its reader (| head).
Shell completion: fleet-audit --print-completion-script bash > /etc/bash_completion.d/fleet-audit
"""


class FleetAuditProgram(Program):
    def print_help(self):
        super().print_help()
        print(EPILOG.strip())


def main():
    FleetAuditProgram(name="fleet-audit", binary="fleet-audit", version=__version__,
                      namespace=namespace()).run()
