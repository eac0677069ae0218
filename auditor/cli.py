"""The command line: one set of tasks for the installed `fleet-audit` and for `fab` in the checkout.

Every task ends in a documented exit code, never a traceback. Long flags mean the same in every
task; only harmless ones have a short form (no short flag trusts a key or calls ReceiveMessage).
Fabric's and Invoke's own core flags either work as they say or are refused: none is ignored.
"""
import atexit
import dataclasses
import datetime
import difflib
import itertools
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

from invoke import Collection, Exit, ParseError, Program

from . import __version__, codes, drift, files, history as history_module, transports, waivers as waiver_file
from . import watch as watching
from . import audit as pipeline
from . import inventory as inventory_module
from .errors import ExitStatus, UsageError, exit_codes_text
from .progress import Progress
from .settings import duration_seconds, limits_of
from .shell import command
from .render import FORMATS, MATRIX_FORMATS, render, render_matrix, render_pieces, use_colour
from .render.html import render_history_html
from .render.json_report import audit_dict
from .render.sanitize import one_line, terminal
from .render.steps import render_steps
from .render.table import inventory_table, screen_width, wrap
from .taskkit import STOP_ASKED, ReportNotWritten, drop_stdout, guarded, reader_gone, task
from .transports import Session


def _cross_check_progress():
    """The cross-check's progress line, on this run's stderr (made per run, never at import)."""
    return Progress("cross-check", unit="lookups")


def _announce(message):
    """What the operator must know at once (a host key trusted on first use), on stderr."""
    print(one_line(message), file=sys.stderr)


def _parallel(value):
    """--parallel N: a whole number from 1 up, or None for the inventory's setting."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    largest = limits_of("parallel")[1]
    if not text.isdigit() or not 1 <= int(text) <= largest:
        raise UsageError("--parallel %r is not a number of hosts from 1 to %d" % (value, largest))
    return int(text)


def _check_output(output):
    """Before any host is visited: the report must have somewhere to go. The caller's own stream
    (`/dev/stdout`, `>(jq .)`, a FIFO) is written as it is; a regular file is written in place or
    created, never through a symbolic link (a planted link would make the report overwrite, and
    chmod, its target)."""
    if not output or files.caller_stream(output):
        return
    path = Path(output).expanduser()
    parent = path.absolute().parent
    if path.is_symlink():
        problem = "it is a symbolic link (to %s); name the file itself" % os.readlink(path)
    elif path.is_dir():
        problem = "it is a directory"
    elif path.exists() and not path.is_file():
        problem = "it is %s, not a file, pipe or terminal" % files.kind_of(path.stat().st_mode)
    elif path.exists():
        if os.access(path, os.W_OK):
            return
        problem = "the file exists and you may not write it"
    elif not parent.is_dir():
        problem = "no directory %s" % parent
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = "you may not create files in %s" % parent
    else:
        return
    raise UsageError("cannot write the report to %s: %s" % (output, problem))


def _hosts(inventory, hosts=None, roles=None, connect_timeout=None, known_hosts=None):
    """(the hosts to visit, with the command line's overrides, and the inventory's others): a flag
    wins over the inventory, which wins over the defaults (as `ssh -o` over ssh_config, `ansible
    --timeout` over ansible.cfg)."""
    specs, left_out = pipeline.choose(inventory, hosts, roles)
    timeouts, settings = {}, {}
    if connect_timeout not in (None, ""):
        low, high = limits_of("timeouts.connect")
        try:
            seconds = float(connect_timeout)
        except ValueError:
            seconds = None
        if seconds is None or not low <= seconds <= high:
            raise UsageError("--connect-timeout %r is not a number of seconds from %s to %s" % (
                connect_timeout, low, high))
        timeouts["connect"] = seconds
    if known_hosts:
        path = Path(known_hosts).expanduser()
        if not path.is_file():
            raise UsageError("--known-hosts %s: no such file (an empty file trusts no host)" % known_hosts)
        settings["known_hosts"] = str(path)
    return [dataclasses.replace(spec, settings=dataclasses.replace(
        spec.settings, timeouts=dataclasses.replace(spec.settings.timeouts, **timeouts), **settings))
        for spec in specs], left_out


def _check_format(fmt, allowed=FORMATS, why=""):
    """Before any host is visited: a wrong --format must not cost an audit. `why` says what limits
    `allowed` when a format the auditor has is not one of them."""
    if fmt in allowed:
        return
    if fmt in FORMATS and why:
        raise UsageError("--format %s %s; choose one of: %s" % (fmt, why, ", ".join(allowed)))
    close = difflib.get_close_matches(str(fmt), allowed, n=1)
    raise UsageError("unknown format %r%s; choose one of: %s" % (fmt, " (did you mean %r?)" % close[0] if close
                                                                 else "", ", ".join(allowed)))


def _write_private(path, pieces):
    """Write a report or list: see files.open_for_report."""
    with os.fdopen(files.open_for_report(path), "w", encoding="utf-8") as handle:
        handle.writelines(pieces)
        handle.write("\n")


def _write_failed(path, result):
    """The hosts that were not ok, one per line (an empty file when every host was ok)."""
    if not path:
        return
    failed = [h.report.name for h in result.hosts if str(h.verdict) != "ok"]
    try:
        _write_private(path, ["\n".join(failed)] if failed else [])
    except OSError as error:
        raise ReportNotWritten("error: the failed hosts could not be written to %s (%s)" % (
            terminal(path), error.strerror or error))
    print("%d host(s) not ok written to %s (re-run them with --hosts @%s)" % (
        len(failed), terminal(path), terminal(path)), file=sys.stderr)


def _emit(text, output):
    """Write a report (a string, or pieces of one) to stdout or, readable by its owner only, to a
    file: reports describe the fleet's credentials (masked). A file that cannot take the report
    after the audit does not lose it: it goes to stdout, and the task exits 4."""
    pieces = [text] if isinstance(text, str) else text
    if not output:
        sys.stdout.writelines(pieces)
        sys.stdout.write("\n")
        return
    pieces = list(pieces)
    try:
        _write_private(output, pieces)
    except OSError as error:
        sys.stdout.writelines(pieces)
        sys.stdout.write("\n")
        sys.stdout.flush()
        raise ReportNotWritten("error: the report could not be written to %s (%s): it was printed on stdout instead" % (
            terminal(output), error.strerror or error))
    print("report written to %s" % terminal(output), file=sys.stderr)


def _exit_for(result):
    if result.interrupted:
        terminated = result.exit_code == ExitStatus.TERMINATED
        raise Exit("%s: %d host(s) not audited" % ("terminated (SIGTERM)" if terminated else "interrupted",
                                                   len(result.interrupted)), code=result.exit_code)
    if result.exit_code:
        raise Exit(code=result.exit_code)


HISTORY_HELP = {"history": "the history file (default: ~/.local/state/fleet-auditor/history.sqlite)",
                "no-history": "record nothing in the history this time (auditor.history: false for always)"}


def _open_history(specs, path=None, off=False):
    """The history this run records in, opened before any host is visited (a history that cannot
    be used stops the run with what to do, not after the audit); None when turned off."""
    if off or not specs[0].settings.history:
        return None
    settings = specs[0].settings
    try:
        return history_module.History(Path(path) if path else history_module.default_path(),
                                      settings.history_keep_days, settings.history_keep_audits)
    except history_module.HistoryUnavailable as problem:
        print("warning: this run is not recorded in the history: %s (--history PATH to choose another file, "
              "--no-history to say nothing)" % terminal(str(problem)), file=sys.stderr)
        return None


def _remember(result, kind, kept):
    """The result with what changed on each not-ok host since it was last ok; recorded."""
    if kept is None:
        return result
    try:
        result = dataclasses.replace(result, since_ok=kept.since_ok(audit_dict(result)))
        kept.record(audit_dict(result), kind)
    except history_module.sqlite3.Error as error:     # a full disk must not cost the report
        print("warning: the audit was not recorded in %s (%s)" % (terminal(str(kept.path)), error), file=sys.stderr)
    finally:
        kept.close()
    return result


@task(help=dict(**{
    "matrix": "show the cross-host comparison matrix (--no-matrix hides it)",
    "matrix-only": "print only the comparison matrix (table, json or markdown)",
}, **HISTORY_HELP))
@guarded
def audit(c, inventory="inventory.yaml", hosts=None, roles=None, parallel=None, format="table", output=None,
          accept_new_host_keys=False, matrix=True, matrix_only=False, cross_check=False, connect_timeout=None,
          known_hosts=None, write_failed=None, history=None, no_history=False, debug=False):
    """Audit every host in parallel: SQS from each app's environment, containers, logs, verdicts.
    Read-only toward SQS and the hosts; hosts the inventory reaches by SSM Run Command
    (ansible_connection: community.aws.aws_ssm) leave a command record in the AWS account."""
    _check_format(format, MATRIX_FORMATS if matrix_only else FORMATS,
                  "is a whole report, not a matrix alone: drop --matrix-only for it" if matrix_only else "")
    _check_output(output)
    _check_output(write_failed)
    specs, left_out = _hosts(inventory, hosts, roles, connect_timeout, known_hosts)
    kept = _open_history(specs, history, no_history)
    result = pipeline.run_audit(inventory, parallel=_parallel(parallel), specs=specs, left_out=left_out,
                                accept_new=accept_new_host_keys, progress=Progress("audit"), announce=_announce,
                                cross_check=cross_check, cross_check_progress=_cross_check_progress())
    result = _remember(result, "audit", kept)
    colour = use_colour() and not output
    _emit(render_matrix(result, format, colour) if matrix_only else render_pieces(result, format, colour, matrix),
          output)
    _write_failed(write_failed, result)
    _exit_for(result)


@task(name="check-host", help=dict(**{
    "name": "the host's inventory name",
    "format": "table (the runbook's steps) or json",
    "app-check": "also run the app's own check script: it calls ReceiveMessage, which hides a real job for "
                 "its visibility timeout",
    "raw": "print the host's raw facts (the agent's JSON, already redacted on the host), for bug reports",
}, **HISTORY_HELP))
@guarded
def check_host(c, name, inventory="inventory.yaml", format="table", output=None, app_check=False,
               accept_new_host_keys=False, cross_check=False, raw=False, connect_timeout=None, known_hosts=None,
               history=None, no_history=False, debug=False):
    """One host, the runbook's three steps in order, with what was seen, verdicts and remedies."""
    _check_format(format, ("table", "json"))
    _check_output(output)
    if app_check:
        print("warning: --app-check runs the app's own check script, which calls ReceiveMessage: a real job "
              "is hidden from the workers for its visibility timeout", file=sys.stderr)
    specs, left_out = _hosts(inventory, name, None, connect_timeout, known_hosts)
    if raw:
        _, runs = pipeline.collect_runs(inventory, accept_new=accept_new_host_keys, specs=specs,
                                        run_check_script=app_check or None, keep_raw=True, announce=_announce)
        run = runs[0]
        _emit(json.dumps(run.facts if run.facts is not None else {
            "transport": {"kind": run.outcome.kind, "detail": run.outcome.detail}}, indent=2), output)
        return
    kept = _open_history(specs, history, no_history)
    result = pipeline.run_audit(inventory, accept_new=accept_new_host_keys, specs=specs, left_out=left_out,
                                announce=_announce,
                                run_check_script=app_check or None, cross_check=cross_check,
                                cross_check_progress=_cross_check_progress())
    result = _remember(result, "check-host", kept)
    if format == "json":
        _emit(render(result, "json"), output)
    else:
        api_roles = {role for role, definition in specs[0].settings.role_defs.items() if definition.produces}
        steps = render_steps(result.hosts[0], result.cross_check, [f for f in result.findings if f.step == 4],
                             api_roles)
        since = result.since_ok.get(result.hosts[0].report.name)
        _emit(steps + ("\n\n" + terminal(since.line()) if since else ""), output)
    _exit_for(result)


PREFLIGHT_RETRY = 10       # seconds between --wait rounds (a rolling restart takes minutes)


@task(help=dict(**{
    "baseline": "YAML file of expected values: `attribute: value` or `attribute: {role: value}` (attribute "
                "names as in the comparison matrix)",
    "strict": "also fail on warnings",
    "waivers": "YAML file of accepted findings: `waivers: [{code, host or role, reason, expires: YYYY-MM-DD}]`; "
               "a waived finding does not fail the gate, an expired waiver stops applying and is named",
    "wait": "after a deploy: audit again every %d s until the fleet passes or this time is up (5m, 300)"
            % PREFLIGHT_RETRY,
}, **HISTORY_HELP))
@guarded
def preflight(c, baseline, inventory="inventory.yaml", hosts=None, roles=None, parallel=None, format="table",
              output=None, accept_new_host_keys=False, strict=False, cross_check=False, connect_timeout=None,
              known_hosts=None, write_failed=None, waivers=None, wait=None, history=None, no_history=False,
              debug=False):
    """Pre-release audit: fail (exit 1) when the fleet drifts from the baseline or has errors not waived."""
    _check_format(format)
    _check_output(output)
    _check_output(write_failed)
    expected = drift.load_baseline(baseline)
    specs, left_out = _hosts(inventory, hosts, roles, connect_timeout, known_hosts)
    every_role = {role for spec in specs for role in spec.settings.role_defs}
    drift.check_roles(expected, every_role, baseline)
    accepted = waiver_file.load_waivers(waivers, [s.name for s in specs] + [b.name for b in left_out],
                                        every_role) if waivers else []
    try:
        patience = duration_seconds(wait) if wait else 0
    except ValueError:
        raise UsageError("--wait %r: give seconds or a duration such as 5m" % wait)
    deadline = time.monotonic() + patience
    roles_of = {spec.name: spec.roles for spec in specs}.get
    for round_number in itertools.count(1):
        kept = _open_history(specs, history, no_history)
        result = pipeline.run_audit(inventory, parallel=_parallel(parallel),
                                    accept_new=accept_new_host_keys, baseline=expected, progress=Progress("preflight"),
                                    specs=specs, left_out=left_out, announce=_announce,
                                    cross_check=cross_check, cross_check_progress=_cross_check_progress())
        result = _remember(result, "preflight", kept)
        if result.interrupted:
            break
        counted, waived, expired = waiver_file.apply(result.findings, accepted, lambda h: roles_of(h) or (),
                                                     datetime.date.today())
        drifted = drift.drift(result, expected)
        failure = drift.preflight_failure(dataclasses.replace(result, findings=counted), drifted, strict)
        if failure is None or time.monotonic() + PREFLIGHT_RETRY > deadline:
            break
        print("preflight round %d: %s; again in %d s (--wait: %d s left)" % (
            round_number, failure.replace("preflight failed: ", ""), PREFLIGHT_RETRY, deadline - time.monotonic()),
            file=sys.stderr)
        time.sleep(PREFLIGHT_RETRY)
    _emit(render_pieces(result, format, colour=use_colour() and not output), output)
    _write_failed(write_failed, result)
    if result.interrupted:
        _exit_for(result)
    for host, attribute, seen, wanted in drifted:       # host names and values are hosts' data
        print(one_line("drift: %s %s is %s, baseline says %s" % (host, attribute, seen, wanted)), file=sys.stderr)
    for finding, waiver in waived:
        print(one_line("waived: %s on %s: %s (until %s, %s)" % (finding.code, ", ".join(finding.hosts), waiver.reason,
                                                                waiver.expires, waiver.where)), file=sys.stderr)
    for finding, waiver in expired:
        print(one_line("waiver expired: %s on %s was accepted until %s (%s): it counts again; renew the waiver or "
                       "fix it" % (finding.code, ", ".join(finding.hosts), waiver.expires, waiver.where)),
              file=sys.stderr)
    if failure:
        raise Exit(failure + ("; %d waiver(s) expired" % len(expired) if expired else ""), code=1)
    print("preflight passed%s" % (" (%d finding(s) waived)" % len(waived) if waived else ""), file=sys.stderr)


@task(help={"old": "an earlier audit: a saved one (audit --format json --output FILE), or from the history: last, "
                   "last-ok, an audit id, a time (2026-12-01T09:14)",
            "new": "a later one, the same ways", "history": HISTORY_HELP["history"]})
@guarded
def diff(c, old, new, history=None):
    """Show what changed between two audits (saved files or the history's): hosts, verdicts, values, findings.

    Exits 1 when something changed, 0 when nothing did (like `git diff --exit-code`)."""
    lines = drift.diff_snapshots(_snapshot(old, history), _snapshot(new, history))
    print("\n".join(one_line(line) for line in lines) if lines else "no change")
    if lines:
        raise Exit(code=1)


def _snapshot(reference, history_path):
    """A saved audit's file, else a history reference."""
    if Path(reference).exists():
        return drift.load_snapshot(reference)
    kept = history_module.History(Path(history_path) if history_path else history_module.default_path())
    try:
        return kept.document(reference)
    finally:
        kept.close()


@task(help=dict(**{
    "every": "time from one round's start to the next's: seconds or a duration (90s, 5m, 1h)",
    "jitter": "a random delay up to this before each round, so that watchers do not hit the fleet together",
    "once": "one round, then exit (for cron with --textfile)",
    "listen": "serve /metrics at ADDRESS:PORT (default 127.0.0.1:%d when no --textfile is given)" % 9731,
    "textfile": "write the metrics to this file after each round, atomically (node-exporter's textfile collector)",
}, **HISTORY_HELP))
@guarded
def watch(c, inventory="inventory.yaml", every="5m", jitter="0", once=False, listen=None, textfile=None, hosts=None,
          roles=None, parallel=None, connect_timeout=None, known_hosts=None, history=None, no_history=False,
          debug=False):
    """Audit on a schedule and publish each round to Prometheus (/metrics and/or a textfile); every round is recorded.

    Rounds never overlap; one that fails is counted (fleet_audit_round_failures_total) and the next
    runs as planned. Ctrl-C or SIGTERM ends the watch at once (exit 0)."""
    try:
        schedule = watching.Schedule(float(duration_seconds(every)), float(duration_seconds(jitter)), once)
    except ValueError:
        raise UsageError("--every %r / --jitter %r: give seconds or a duration such as 90s, 5m, 1h" % (every, jitter))
    if schedule.every < 1:
        raise UsageError("--every %r: at least 1 second between rounds" % every)
    if textfile:
        _check_output(textfile)
    if once and not (textfile or listen):
        raise UsageError("--once publishes nothing without --textfile PATH (or --listen ADDRESS:PORT)")
    metrics = watching.Metrics()
    server = watching.serve(metrics, watching.listen_address(listen or "127.0.0.1:9731")) \
        if listen or not textfile else None
    if server is not None:
        print("watch: metrics at http://%s:%d/metrics" % server.server_address[:2], file=sys.stderr)

    def run_round():
        specs, left_out = _hosts(inventory, hosts, roles, connect_timeout, known_hosts)
        kept = _open_history(specs, history, no_history)
        result = pipeline.run_audit(inventory, parallel=_parallel(parallel), specs=specs, left_out=left_out,
                                    announce=_announce)
        if result.interrupted:          # a round cut short is not recorded: the history holds whole audits
            if kept is not None:
                kept.close()
            return result
        return _remember(result, "audit", kept)

    try:
        rounds = watching.watch(run_round, schedule, metrics, textfile, stop=STOP_ASKED)
    except KeyboardInterrupt:           # Ctrl-C or SIGTERM while waiting for the next round
        rounds = None
    finally:
        if server is not None:
            server.shutdown()
    print("watch: stopped%s" % (" after %d round(s)" % rounds if rounds is not None else ""), file=sys.stderr)


@task(name="history", help={"host": "one host's changes (default: every host's)",
                            "queue": "only the values of one queue (its key: video, ai-basic...)",
                            "timeline": "the incident's timeline instead: verdict changes, container starts and "
                                        "restarts, the last line of each log marker, in time order across hosts",
                            "format": "table, json or html", "history": HISTORY_HELP["history"]})
@guarded
def history_(c, host=None, queue=None, timeline=False, format="table", history=None):
    """What changed, audit after audit: one line per audit in which a host's verdict, values or findings changed."""
    _check_format(format, ("table", "json", "html"))
    kept = history_module.History(Path(history) if history else history_module.default_path())
    try:
        changes = kept.timeline(host, "queue %s " % queue if queue else "")
        incident = kept.incident() if timeline else None
    finally:
        kept.close()
    if incident is not None:
        events = [e for e in incident if host in (None, e[1])]
        if format == "json":
            print(json.dumps([{"time": when, "host": name, "event": what} for when, name, what in events], indent=2))
        elif format == "html":
            print(render_history_html("Incident timeline", ["time", "host", "event"], events))
        else:
            for when, name, what in events:
                print(one_line("%s  %-12s %s" % (when, name, what)))
        return
    if format == "html":
        print(render_history_html("Fleet history", ["time", "audit", "host", "verdict", "what changed"],
                                  [(state.started, state.audit_id, name, state.verdict, "; ".join(what))
                                   for name, state, what in changes]))
        return
    if format == "json":
        print(json.dumps([{"host": name, "audit": state.audit_id, "started": state.started, "verdict": state.verdict,
                           "changes": what} for name, state, what in changes], indent=2))
        return
    if not changes:
        print("no recorded audit%s" % (" of %s" % terminal(host) if host else ""), file=sys.stderr)
        return
    for name, state, what in changes:
        print(one_line("%s  #%-5d %-12s %-12s %s" % (state.started, state.audit_id, name, state.verdict,
                                                     "; ".join(what))))


@task
@guarded
def hosts(c, inventory="inventory.yaml", hosts=None, roles=None):
    """List the hosts an audit would visit: address, user, roles, groups, where the app's environment comes from."""
    specs = inventory_module.select(inventory_module.load_inventory(inventory), hosts, roles)
    session = Session()
    print(terminal(inventory_table(specs, lambda spec: session.transport(spec.connection).describe(spec))))


@task(help={"code": "a finding code, e.g. logs-unreadable; `explain all` lists every code"})
@guarded
def explain(c, code):
    """Say what a finding code means, the verdict it implies and its fix (like ansible-doc)."""
    width = screen_width()
    if code == "all":
        for entry in codes.CODES.values():
            print(wrap("%-26s %-7s step %d  %s" % (entry.code, entry.severity, entry.step, entry.description),
                       width, hanging=" " * 43))
        return
    if code not in codes.CODES:
        close = difflib.get_close_matches(code, codes.CODES, n=1)
        raise UsageError("unknown finding code %r%s; `explain all` lists them all"
                         % (code, " (did you mean %r?)" % close[0] if close else ""))
    for line in codes.explain(code).splitlines():      # "  Fix: ..." goes on under its label
        indent = line[:len(line) - len(line.lstrip())]
        print(wrap(line.strip(), width, indent, indent + "  "))


def _flush_stdout():
    """At exit, before Python's own flush: a reader gone by then is the same quiet 141."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        drop_stdout()
        os._exit(ExitStatus.READER_GONE)
    except (OSError, ValueError):       # stdout already closed: nothing left to say
        pass


def namespace():
    """The operator's tasks. Called by both entry points before Invoke prints anything; the
    checkout's fabfile.py adds the sandbox's own (the installed package never imports it)."""
    sys.excepthook = reader_gone
    atexit.register(_flush_stdout)
    return Collection(audit, check_host, preflight, diff, history_, watch, hosts, explain)


def epilog():
    """`--help`'s closing text: examples, the exit codes (from their enum), what stays read-only."""
    notes = "".join(note + "\n" for note in transports.help_notes())
    return EXAMPLES + "\n" + "\n".join(textwrap.wrap(exit_codes_text(), 100)) + "\n" + READ_ONLY + notes + COMPLETION


EXAMPLES = """
Examples:
  fleet-audit audit -i inventory.yaml                    every host, a table on stdout
  fleet-audit audit -i inventory.yaml -f json | jq .      JSON for scripts (progress goes to stderr)
  fleet-audit check-host video-1 -i inventory.yaml       one host, the runbook's steps in order
  fleet-audit preflight --baseline baseline.yaml -i inventory.yaml --strict
  fleet-audit diff before.json after.json
  fleet-audit explain logs-unreadable
"""
READ_ONLY = "Read-only: the audit never sends, receives or deletes a queue message and changes nothing on a host.\n"
COMPLETION = "Shell completion: fleet-audit --print-completion-script bash > /etc/bash_completion.d/fleet-audit\n"


# Invoke's core flags whose short forms mean something else in the tasks (-f format, -p parallel),
# or that would prompt: refused before the task name, with what was meant
MISPLACED_CORE_FLAGS = {
    "-f": "-f before the task is Invoke's config file; the report format goes after the task: "
          "fleet-audit audit -f json",
    "--config": "the auditor reads no Invoke config file; its settings live in the inventory (auditor:)",
    "-p": "-p before the task is Invoke's pty; hosts at once go after the task: fleet-audit audit -p 20",
    "--pty": "the audit runs no local command that needs a pty",
    "-d": "-d before the task is Invoke's debug; the auditor's is --debug after the task",
    "--prompt-for-sudo-password": "the audit never uses sudo and never prompts",
    "-c": "the tasks are built in: there is no collection to choose",
    "--collection": "the tasks are built in: there is no collection to choose",
    "-r": "the tasks are built in: there is no search root",
    "--search-root": "the tasks are built in: there is no search root",
    "-i": "the inventory goes after the task: fleet-audit audit -i inventory.yaml",
    "--inventory": "the inventory goes after the task: fleet-audit audit --inventory inventory.yaml",
    "-H": "hosts go after the task: fleet-audit audit --hosts web-1,web-2 (or fleet-audit check-host web-1)",
    "--hosts": "hosts go after the task: fleet-audit audit --hosts web-1,web-2 (or fleet-audit check-host web-1)",
    "--roles": "roles go after the task: fleet-audit audit --roles api",
}


# Invoke's core flags that mean something to the auditor (the rest run local commands, or read an
# Invoke config file: MISPLACED_CORE_FLAGS and taskkit.REFUSED_CORE_FLAGS say what to use instead)
HONOURED_CORE_FLAGS = ("complete", "print-completion-script", "help", "list", "list-depth", "list-format", "version")


class FleetAuditProgram(Program):
    """`fleet-audit`: Invoke's program with usage errors that say what was meant and exit 2, and
    `TASK --help` as the task's help (Invoke would take --help as the task's first argument)."""

    words = ()          # the command line after the program's name, as run() was given it

    def print_help(self):
        """Invoke's help with only the core options the auditor honours: the others stay parsed
        (Invoke reads them) and are refused with what to do instead, but are not advertised."""
        print("Usage: %s [--core-opts] <subcommand> [--subcommand-opts] ...\n\nCore options:\n" % self.binary)
        self.print_columns([(flags, text) for flags, text in self.initial_context.help_tuples()
                            if re.search(r"--([a-z-]+)", flags).group(1) in HONOURED_CORE_FLAGS])
        self.list_tasks()
        print(epilog().strip())

    def run(self, argv=None, exit=True):
        words = list(sys.argv[1:] if argv is None else argv[1:] if isinstance(argv, list) else argv.split()[1:])
        tasks = set(self.namespace.task_names) if self.namespace else set()
        first = next((i for i, word in enumerate(words) if not word.startswith("-")), len(words))
        try:
            for word in words[:first]:
                flag = word.split("=", 1)[0]
                if flag in MISPLACED_CORE_FLAGS:
                    raise UsageError("%s: %s" % (flag, MISPLACED_CORE_FLAGS[flag]))
            if first < len(words) and words[first] in tasks and {"--help", "-h"} & set(words[first + 1:]):
                words = words[:first] + ["--help", words[first]]
        except UsageError as error:
            print("error: %s" % terminal(error), file=sys.stderr)
            if exit:
                sys.exit(ExitStatus.USAGE)
            return
        self.words = words
        return super().run([self.binary or "fleet-audit"] + words, exit)

    def parse_core(self, argv):
        try:
            super().parse_core(argv)
        except ParseError as error:
            raise self._usage(error)

    def parse_tasks(self):
        try:
            super().parse_tasks()
        except ParseError as error:
            raise self._usage(error)

    def parse_collection(self):
        try:
            super().parse_collection()
        except ParseError as error:
            raise self._usage(error)

    def _usage(self, error):
        """A parse error as a usage error: exit 2, with the closest task or flag."""
        message = str(error)
        unknown = re.search(r"No idea what '([^']*)' is", message)
        hint = ""
        if unknown:
            word = unknown.group(1)
            if word.startswith("sandbox."):
                hint = " (the sandbox's tasks live in a checkout of the project: run `./dev demo` or " \
                       "`fab sandbox.up` there)"
            else:
                names = list(self.namespace.task_names) + ["--" + arg.name.replace("_", "-") for name in
                                                           self.namespace.task_names for arg in
                                                           self.namespace[name].get_arguments()]
                close = difflib.get_close_matches(word, names, n=1)
                if close:
                    hint = " (did you mean %r?)" % close[0]
                elif not word.startswith("-"):      # a word where the task takes none: say what it takes
                    task = next((w for w in self.words if w in self.namespace.task_names), None)
                    hint = {"audit": " (hosts go to --hosts: `%s`)" % command("fleet-audit", "audit", "--hosts", word),
                            "preflight": " (hosts go to --hosts: `%s`)" % command("fleet-audit", "preflight", "--hosts",
                                                                                   word),
                            "check-host": " (check-host takes one host name; several: `fleet-audit audit --hosts "
                                          "a,b`)",
                            "explain": " (explain takes one code, or `all`)"}.get(task, "")
        return Exit("error: %s%s\n  fix: `fleet-audit --list` lists the tasks, `fleet-audit TASK --help` a "
                    "task's flags" % (terminal(message), hint), code=ExitStatus.USAGE)


def program():
    """The installed command's program (its tests run it in process too)."""
    return FleetAuditProgram(name="fleet-audit", binary="fleet-audit", version=__version__, namespace=namespace())


def main():
    program().run()


def flag_table():
    """The docs' flag table (docs/usage.md), generated from the tasks' own parsers (a test keeps them equal):
    each flag once, with its short form, the tasks that take it and what it means."""
    flags = {}
    collection = namespace()
    for name in collection.task_names:
        for argument in collection[name].get_arguments():
            long_name = argument.names[0].replace("_", "-")
            entry = flags.setdefault(long_name, {"short": "", "tasks": [], "helps": {}, "positional": argument.positional})
            entry["tasks"].append(name)
            entry["helps"].setdefault(argument.help or "", []).append(name)
            entry["short"] = entry["short"] or next(("-" + n for n in argument.names[1:] if len(n) == 1), "")
    lines = ["| flag | short | tasks | meaning |", "|---|---|---|---|"]
    for flag, entry in sorted(flags.items(), key=lambda item: (not item[1]["positional"], item[0])):
        shown = flag.upper() if entry["positional"] else "--" + flag
        helps = entry["helps"]
        meaning = next(iter(helps)) if len(helps) == 1 else "; ".join(
            "%s: %s" % (", ".join(tasks), text) for text, tasks in helps.items())
        lines.append("| `%s` | %s | %s | %s |" % (shown, "`%s`" % entry["short"] if entry["short"] else "",
                                               ", ".join(entry["tasks"]), meaning.replace("|", "/")))
    return "\n".join(lines)
