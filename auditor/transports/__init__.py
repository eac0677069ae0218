"""How hosts are reached, chosen per host by `ansible_connection`, with Ansible's names.

Adding a transport: one module with a `Transport` subclass (base.py), and its line in BACKENDS.
A name Ansible knows but the auditor does not support is refused with what to use instead.
"""
import importlib

from .base import OUTCOME_KINDS, OutcomeKind, RunOutcome, Session, Transport, quote  # noqa: F401 (the API)

BACKENDS = {            # ansible_connection -> (module, class)
    "ssh": ("auditor.transports.openssh", "OpenSSH"),
    "paramiko": ("auditor.transports.paramiko_ssh", "ParamikoSSH"),
    "community.aws.aws_ssm": ("auditor.transports.ssm", "SSM"),
}
ALIASES = {"paramiko_ssh": "paramiko", "ansible.builtin.ssh": "ssh", "ansible.builtin.paramiko_ssh": "paramiko",
           "aws_ssm": "community.aws.aws_ssm"}
SSM = "community.aws.aws_ssm"
REFUSED = {             # what Ansible could use, and what to do instead
    "local": "the audit reads remote hosts: list this machine with its SSH address",
    "docker": "the audit reads a host's containers from the host itself: reach the host over SSH",
    "community.docker.docker": "the audit reads a host's containers from the host itself: reach the host over SSH",
    "winrm": "Windows hosts are not audited (the agent needs a POSIX shell and Python)",
    "psrp": "Windows hosts are not audited (the agent needs a POSIX shell and Python)",
}
DEFAULT = "paramiko"    # for a host without ansible_connection: see the README's "Transports"


def canonical(name):
    """The backend name for an `ansible_connection` value; raises ValueError saying what to use."""
    name = ALIASES.get(name, name)
    if name in BACKENDS:
        return name
    if name in REFUSED:
        raise ValueError("ansible_connection %s is not supported: %s" % (name, REFUSED[name]))
    raise ValueError("ansible_connection %s is not a transport the auditor knows; use one of: %s" % (
        name, ", ".join(sorted(BACKENDS))))


def capabilities(name):
    """(keeps stdin open, compact output) of a transport, without making one."""
    cls = backend_class(name)
    return cls.keeps_stdin_open, cls.compact_output


def backend_class(name):
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)
