"""How hosts are reached, chosen per host by `ansible_connection`, with Ansible's names.

Adding a transport: one module with a `Transport` subclass (base.py) that names its target record
(and, if it has them, its own failure kinds and their codes), and its line in BACKENDS. A name
Ansible knows but the auditor does not support is refused with what to use instead. Nothing here
loads a backend's library: a target is built from its declaring module alone.
"""
import functools
import importlib
from typing import Dict, List, NamedTuple, Tuple, Type

from .base import FAILURE_CODES, OutcomeKind, RunOutcome, Session, Target, TargetProblem, Transport  # noqa: F401
from .base import quote  # noqa: F401 (the API)


class Backend(NamedTuple):
    module: str         # the Transport subclass's module (may load its library)
    cls: str
    declared_in: str    # a light module: its target record and failure kinds (`TARGET`, `FAILURE_CODES`)


BACKENDS = {            # ansible_connection -> its backend
    "ssh": Backend("auditor.transports.openssh", "OpenSSH", "auditor.transports.ssh"),
    "paramiko": Backend("auditor.transports.paramiko_ssh", "ParamikoSSH", "auditor.transports.ssh"),
    "community.aws.aws_ssm": Backend("auditor.transports.ssm", "SSM", "auditor.transports.ssm"),
}
ALIASES = {"paramiko_ssh": "paramiko", "ansible.builtin.ssh": "ssh", "ansible.builtin.paramiko_ssh": "paramiko",
           "aws_ssm": "community.aws.aws_ssm"}
REFUSED = {             # what Ansible could use, and what to do instead
    "local": "the audit reads remote hosts: list this machine with its SSH address",
    "docker": "the audit reads a host's containers from the host itself: reach the host over SSH",
    "community.docker.docker": "the audit reads a host's containers from the host itself: reach the host over SSH",
    "winrm": "Windows hosts are not audited (the agent needs a POSIX shell and Python)",
    "psrp": "Windows hosts are not audited (the agent needs a POSIX shell and Python)",
}
DEFAULT = "paramiko"    # for a host without ansible_connection: see docs/transports.md


def canonical(name: str) -> str:
    """The backend name for an `ansible_connection` value; raises ValueError saying what to use."""
    name = ALIASES.get(name, name)
    if name in BACKENDS:
        return name
    if name in REFUSED:
        raise ValueError("ansible_connection %s is not supported: %s" % (name, REFUSED[name]))
    raise ValueError("ansible_connection %s is not a transport the auditor knows; use one of: %s" % (
        name, ", ".join(sorted(BACKENDS))))


def target_class(name: str) -> type:
    """The target record of a backend, from its light declaring module."""
    return importlib.import_module(BACKENDS[name].declared_in).TARGET


@functools.lru_cache(maxsize=None)
def failure_codes() -> Dict[str, str]:
    """Every failure kind a transport can end with -> its finding code (the common ones and each
    backend's own): built once, not for every unreachable host."""
    codes = {str(kind): code for kind, code in FAILURE_CODES.items()}
    for backend in BACKENDS.values():
        declared = getattr(importlib.import_module(backend.declared_in), "FAILURE_CODES", {})
        codes.update({str(kind): code for kind, code in declared.items()})
    return codes


def help_notes() -> List[str]:
    """What a backend's use leaves behind, said in `--help` (each declaring module's HELP_NOTE)."""
    notes = []
    for backend in BACKENDS.values():
        note = getattr(importlib.import_module(backend.declared_in), "HELP_NOTE", None)
        if note and note not in notes:
            notes.append(note)
    return notes


def capabilities(name: str) -> Tuple[bool, bool]:
    """(keeps stdin open, compact output) of a transport, without making one."""
    cls = backend_class(name)
    return cls.keeps_stdin_open, cls.compact_output


def backend_class(name: str) -> Type[Transport]:
    backend = BACKENDS[name]
    return getattr(importlib.import_module(backend.module), backend.cls)
