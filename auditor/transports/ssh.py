"""Where an SSH transport reaches a host (both SSH backends share it): the target record, read from
the host's Ansible variables as Ansible reads them, and refused where ssh would misread it.
Imports nothing heavy: the inventory builds targets without loading an SSH library."""
import re
import reprlib
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Tuple, cast

from .base import Target, TargetProblem

if TYPE_CHECKING:
    from ..inventory import HostSpec

# what OpenSSH refuses in a user or host name on its command line (ssh.c valid_ruser/valid_hostname),
# refused here for every SSH backend: such a name is a typo or an attempt to smuggle in an option
REFUSED_IN_USER = frozenset("'`\";&<>|(){}")
REFUSED_IN_HOST = REFUSED_IN_USER | frozenset("$\\ \t")
SSH_ARGS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80            # a value quoted in a message stays one line


@dataclass(frozen=True)
class SshTarget(Target):
    """A host reached over SSH: `address` and `port`, the login `user` and `key_file`, jump hosts
    (`user@host:port[,...]`), a ProxyCommand, and the other words of ansible_ssh_*_args."""
    port: int = 22
    user: Optional[str] = None
    key_file: Optional[str] = None
    proxy_jump: Optional[str] = None
    proxy_command: Optional[str] = None
    ssh_args: Tuple[str, ...] = ()

    def location(self) -> str:
        return "%s:%d" % (self.address, self.port)

    def login(self) -> Optional[str]:
        return self.user

    def key_files(self) -> Tuple[str, ...]:
        return (self.key_file,) if self.key_file else ()

    @classmethod
    def from_variables(cls, name: str, variables: Mapping, settings: object,
                       declared: Callable[[str], bool] = lambda key: True) -> "SshTarget":
        """The target of host `name` from its merged variables; TargetProblem names the variable at
        fault. A name with a dot and no ansible_host is its own address, as in Ansible."""
        address = variables.get("ansible_host")
        if not address:
            if "." not in name:
                raise TargetProblem(None, "host %r has no address (ansible_host)" % name,
                                    "add `ansible_host: <ip or dns name>` under it")
            address = name
        port = _port(variables.get("ansible_port", 22))
        try:
            jump, proxy, others = ssh_arguments(" ".join(str(variables.get(key) or "") for key in SSH_ARGS))
        except ValueError as error:
            raise TargetProblem("ansible_ssh_common_args", "host %r: ansible_ssh_common_args cannot be read (%s)"
                                % (name, error), "balance its quotes")
        user = variables.get("ansible_user")
        _check_names(name, str(address), None if user is None else str(user), jump,
                     "ansible_ssh_common_args" if declared("ansible_ssh_common_args") else "ansible_ssh_extra_args")
        return cls(address=str(address), port=port, user=user, key_file=variables.get("ansible_ssh_private_key_file"),
                   proxy_jump=jump, proxy_command=proxy, ssh_args=others)


def ssh_target(spec: "HostSpec") -> SshTarget:
    """A host's SSH target: the registry hands an SSH backend only the hosts it reaches."""
    return cast(SshTarget, spec.target)


def _port(raw: object) -> int:
    port: Optional[int] = None
    if isinstance(raw, (int, str)) and not isinstance(raw, bool):
        try:
            port = int(raw)
        except ValueError:
            pass
    if port is None or not 1 <= port <= 65535:
        raise TargetProblem("ansible_port", "ansible_port %s is not a port number" % _SHOWN.repr(raw),
                            "write a number from 1 to 65535")
    return port


def ssh_arguments(text: str) -> Tuple[Optional[str], Optional[str], Tuple[str, ...]]:
    """(jump hosts, ProxyCommand, the other words) of ansible_ssh_common_args/extra_args: `-J x`,
    `-o ProxyJump=x`, `-o ProxyCommand=...` (also `-oKey=value` and `-o "Key value"`)."""
    if not text or text.isspace():
        return None, None, ()
    words = shlex.split(text)
    jump = proxy = None
    others = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-J", "-o") and index + 1 < len(words):
            value, index = words[index + 1], index + 2
        elif word.startswith(("-J", "-o")) and len(word) > 2:
            value, index = word[2:], index + 1
        else:
            others.append(word)
            index += 1
            continue
        if word.startswith("-J"):
            jump = value
            continue
        key, _, setting = value.replace("=", " ", 1).partition(" ")
        if key.lower() == "proxyjump":
            jump = setting.strip()
        elif key.lower() == "proxycommand":
            proxy = setting.strip()
        else:
            others += ["-o", value]
    return jump, proxy, tuple(others)


def split_destination(text: str) -> Tuple[Optional[str], str, str]:
    """'user@host:port' (a ProxyJump element, `[host]:port` too) -> (user or None, host, port as written)."""
    user, _, rest = text.rpartition("@")
    host, port = rest, "22"
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else "22"
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    return user or None, host, port


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def name_problem(value: str, refused: frozenset) -> Optional[str]:
    """Why ssh would refuse or misread a user or host name (None when it is fine)."""
    if not value:
        return "it is empty"
    if value.startswith("-"):
        return "it starts with '-' (ssh would read it as an option)"
    if _CONTROL.search(value):
        return "it holds a control character"
    bad = sorted(set(value) & refused)
    return "it holds %s, which ssh refuses" % " ".join(repr(c) for c in bad) if bad else None


def _check_names(name: str, address: str, user: Optional[str], jump: Optional[str], args_key: str) -> None:
    """The address, user and each jump host as ssh will take them (`ProxyJump=root@bastion:24o3`
    is a typo, not a bug to report)."""
    for key, value, refused in (("ansible_host", address, REFUSED_IN_HOST), ("ansible_user", user, REFUSED_IN_USER)):
        problem = name_problem(value, refused) if value is not None else None
        if problem:
            raise TargetProblem(key, "host %r: %s %s: %s" % (name, key, _SHOWN.repr(value), problem),
                                "write the %s as ssh takes it" % ("address" if key == "ansible_host" else "user name"))
    for element in jump.split(",") if jump is not None else ():
        jump_user, host, port = split_destination(element)
        problem = (name_problem(jump_user or "", REFUSED_IN_USER) if "@" in element else None) or \
            name_problem(host, REFUSED_IN_HOST) or \
            (None if port.isdigit() and 1 <= int(port) <= 65535 else
             "its port %r is not a number from 1 to 65535" % port)
        if problem:
            raise TargetProblem(args_key, "host %r: jump host %s: %s" % (name, _SHOWN.repr(element), problem),
                                "write each jump host as [user@]host[:port] (ProxyJump=a,b for a chain)")
TARGET = SshTarget
