"""The task plumbing every command shares (the installed `fleet-audit`, `fab` in a checkout and the
sandbox's tasks): the flag policy, the decorator that gives each common flag its help, and the
guard that turns every ending into a documented exit code (errors.ExitStatus), never a traceback."""
import contextlib
import functools
import inspect
import logging
import os
import signal
import sys
import threading
import traceback

from fabric import Connection
from fabric import task as fabric_task
from fabric.tasks import Task as FabricTask
from invoke import Exit

from .errors import AuditorError, ExitStatus, Terminated, UsageError
from .render import FORMATS
from .render.sanitize import one_line, terminal

SHORT_FLAGS = {"inventory": "i", "format": "f", "output": "o", "roles": "r", "parallel": "p"}
COMMON_HELP = {  # the help of the flags several tasks share
    "inventory": "inventory: YAML, an aws_ec2 plugin file, or (with ansible-core installed) INI, a directory or "
                 "another inventory plugin (default: inventory.yaml)",
    "hosts": "only these hosts: comma-separated names, or @FILE (one name per line, as --write-failed writes)",
    "write-failed": "write the hosts whose verdict is not ok to this file (0600), one per line, for a re-run with "
                    "--hosts @FILE (like Ansible's retry files)",
    "roles": "only hosts with these roles (comma-separated)",
    "parallel": "hosts audited at once (default: auditor.parallel)",
    "format": "report format: %s" % "|".join(FORMATS),
    "output": "write the report to this file (created 0600) instead of stdout",
    "accept-new-host-keys": "trust unknown host keys on first use and record them in known_hosts",
    "cross-check": "also look for every queue name with the controller's own AWS credentials, to say where "
                   "each queue really is, and read AWS's own account of it: attributes and CloudWatch's per-minute "
                   "counts (auditor.cross_check; needs sqs:GetQueueUrl, sqs:GetQueueAttributes, "
                   "cloudwatch:GetMetricData)",
    "connect-timeout": "seconds for each host's connection (TCP, banner, handshake); wins over the inventory's "
                       "auditor.timeouts.connect",
    "known-hosts": "the known_hosts file host keys are verified with; wins over the inventory's auditor.known_hosts",
    "debug": "log each host's remote command (without its payload), timings and transport decisions to "
             "stderr; tracebacks of unexpected errors",
}


class ReportNotWritten(Exception):
    """The audit ran, but --output could not take its report (full disk, /dev/full, a race)."""


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

    def get_arguments(self, ignore_unknown_help=None):
        """Invoke pops each flag's help as it builds the parser: keep it, so a second parser
        (the docs' flag table, a second run in one process) still explains every flag."""
        helps = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help)
        finally:
            self.help = helps


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
    raise Exit("error: %s" % terminal(error), code=getattr(error, "exit_code", ExitStatus.USAGE))


STOP_ASKED = threading.Event()
"""Set by Ctrl-C or SIGTERM besides the exception they raise: Python loses an exception raised while
the main thread runs a finaliser (a paramiko channel's __del__ during garbage collection), and a
loop such as `watch` must still stop."""


def _interrupted(signum, frame):
    STOP_ASKED.set()
    raise KeyboardInterrupt()


def _terminated(signum, frame):
    STOP_ASKED.set()
    raise Terminated()


def drop_stdout():
    """Point stdout at /dev/null: its reader is gone, and Python's own flush at exit must not meet
    the closed pipe again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def reader_gone(kind, value, trace):
    """sys.excepthook: a closed stdout (`--help | head -1`) ends quietly with 141, as a tool killed
    by SIGPIPE does, wherever Invoke was writing; anything else is shown as Python would."""
    if issubclass(kind, BrokenPipeError):
        drop_stdout()
        os._exit(ExitStatus.READER_GONE)
    sys.__excepthook__(kind, value, trace)


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
    (lambda c: (c.config.get("timeouts") or {}).get("connect"), "-t/--connect-timeout before the task",
     "give --connect-timeout after the task name"),
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


@contextlib.contextmanager
def _debug_lines(debug):
    """--debug: the auditor's log lines on this run's stderr, for this run only (basicConfig
    would do nothing where the root logger already has a handler)."""
    if not debug:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    log = logging.getLogger("auditor")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)


@contextlib.contextmanager
def _stop_signals():
    """SIGTERM ends the run like Ctrl-C (report, then 143), and both set STOP_ASKED; the previous
    handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    STOP_ASKED.clear()
    previous = {number: signal.signal(number, handler)
                for number, handler in ((signal.SIGINT, _interrupted), (signal.SIGTERM, _terminated))}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def guarded(body):
    """Every task ends in an exit code, never a traceback: usage and inventory errors exit 2,
    Ctrl-C 130, a closed stdout 141, and anything unexpected one line and 3 (the traceback with
    --debug)."""
    @functools.wraps(body)
    def run(c, *args, **kwargs):
        debug = kwargs.get("debug") or os.environ.get("FLEET_AUDIT_DEBUG")
        try:
            with _debug_lines(debug), _stop_signals():
                _refuse_core_flags(c)
                return body(c, *args, **kwargs)
        except Exit:
            raise
        except AuditorError as error:
            _fail(error)
        except ReportNotWritten as error:
            raise Exit(str(error), code=ExitStatus.REPORT_NOT_WRITTEN)
        except Terminated:
            raise Exit("terminated (SIGTERM)", code=ExitStatus.TERMINATED)
        except KeyboardInterrupt:
            raise Exit("interrupted", code=ExitStatus.INTERRUPTED)
        except BrokenPipeError:     # `| head` read enough: stop quietly, as a killed-by-SIGPIPE tool would
            drop_stdout()
            raise Exit(code=ExitStatus.READER_GONE)
        except Exception as error:  # the auditor's own bug: one line; the traceback with --debug
            if debug:
                traceback.print_exc()
            raise Exit("error: unexpected %s: %s (run again with --debug for the traceback)" % (
                type(error).__name__, one_line(str(error)[:300])), code=ExitStatus.UNEXPECTED)
    return run
