"""What happened to a connection, in the words every transport uses for it: one condition, one
kind and one cause, whichever transport saw it (paramiko learns it from the socket, OpenSSH from
its own messages). Each function returns (kind, detail with the fix)."""
from typing import Optional, Union

from .base import NOT_FOUND_EXIT, TIMEOUT_EXIT, Cause, RunOutcome
from .base import OutcomeKind as K

REFUSING = "a firewall, or sshd's MaxStartups or tcp wrappers refusing it"


def hop_label(host: str, port: Union[int, str, None]) -> str:
    """A host as known_hosts and OpenSSH write it: `[host]:port` unless the port is 22."""
    number = int(port or 22)
    return "[%s]:%d" % (host, number) if number != 22 else host


def no_answer(where: str, seconds: float) -> Cause:
    return K.UNREACHABLE, "%s: no answer to the TCP connection within %ss (packets dropped: the host is down, " \
        "or a firewall or security group drops them)" % (where, seconds)


def refused(where: str) -> Cause:
    return K.UNREACHABLE, "%s: connection refused (nothing listens on that port)" % where


def reset_at_connect(where: str) -> Cause:
    return K.UNREACHABLE, "%s reset the connection as soon as it was made (%s)" % (where, REFUSING)


def reset_in_handshake(where: str) -> Cause:
    return K.UNREACHABLE, "%s reset the connection during the SSH handshake (%s)" % (where, REFUSING)


def unresolved(where: str, reason: Optional[str] = None) -> Cause:
    return K.UNREACHABLE, "%s: the name does not resolve%s" % (where, " (%s)" % reason if reason else "")


def no_banner(where: str, seconds: float) -> Cause:
    return K.TIMEOUT, "no SSH banner from %s within %ss: something accepts TCP there but is not answering as " \
        "sshd" % (where, seconds)


def not_ssh(where: str, answered: str) -> Cause:
    return K.PROTOCOL, "%s answered, but not as an SSH server: %r (another service on that port?)" % (where, answered)


def proxy_failed(where: str, command: Optional[str], said: str) -> Cause:
    """A ProxyCommand that ended before the SSH handshake: its own words are the cause, not sshd."""
    return K.UNREACHABLE, "the ProxyCommand for %s ended before the SSH handshake (%s)%s: run it by hand and fix " \
        "what it says; the host's sshd was never reached" % (where, command, ": %r" % said if said else
                                                              ", saying nothing")


def ssh1_only(where: str, banner: Optional[str] = None) -> Cause:
    return K.PROTOCOL, "%s speaks only SSH-1%s: the audit needs SSH-2" % (where, " (%r)" % banner if banner else "")


def tunnel_failed(jump: str, host: str, port: int, reason: object) -> Cause:
    return K.UNREACHABLE, "%s could not open a connection to %s:%d (%s): check the target's address as the " \
        "jump host sees it" % (jump, host, port, reason)


def unknown_key(where: str, known_hosts: str, host: str, port: Union[int, str]) -> Cause:
    return K.HOST_KEY_UNKNOWN, "%s is not in %s; add its key (`ssh-keyscan -p %s %s`, checked out of band) or " \
        "run once with --accept-new-host-keys" % (where, known_hosts, port, host)


def changed_key(where: str, now: str, fix: str) -> Cause:
    return K.HOST_KEY_CHANGED, "host key of %s changed (now %s); if the host was rebuilt, verify the new key out " \
        "of band, then %s" % (where, now, fix)


def revoked_key(where: str, fingerprint: Optional[str] = None) -> Cause:
    return K.HOST_KEY_REVOKED, "the key%s presented by %s is marked @revoked in known_hosts: do not connect until " \
        "the host is rebuilt with a new key" % (" %s" % fingerprint if fingerprint else "", where)


def without_agent(key: str) -> str:
    """Why authentication with a passphrase-protected key failed (a clause to add to the refusal)."""
    return "the key %s is protected by a passphrase and no ssh-agent offered it (ssh-add %s)" % (key, key)


def ran_past(timeout: float) -> str:
    return "the remote command ran past %ss and was stopped" % timeout


def too_much_output(limit: int) -> str:
    return "the remote command printed more than %d MiB on stdout: reading stopped and the command was ended " \
        "(an interpreter or login script that prints on start-up?)" % (limit >> 20)


def command_outcome(host: str, exited: Optional[int], stdout: str, stderr: str, timeout: float,
                    seconds: float) -> RunOutcome:
    """The outcome of a remote command that ran (the connection worked), from its exit status."""
    kind, detail = K.OK, ""
    if exited == TIMEOUT_EXIT:
        kind, detail = K.TIMEOUT, ran_past(timeout)
    elif exited == NOT_FOUND_EXIT and ("not found" in stderr or "No such file" in stderr):
        kind, detail = K.PYTHON_MISSING, stderr.strip()[-300:]
    return RunOutcome(host, kind, exit_status=exited, stdout=stdout, stderr=stderr, detail=detail,
                      seconds=seconds)
