"""Each way a connection fails gets its own kind and a detail that names the hop and the fix, for
both transports: paramiko's from the hop, phase and exception; OpenSSH's from what `ssh` said.
The OpenSSH texts are what OpenSSH 9.2 printed here (LogLevel=VERBOSE, BatchMode) against a
real sshd and real peers; the faults and sandbox suites check the same cases end to end."""
import base64
import socket

import paramiko
import pytest
from fabric import Connection

from auditor.transports.ssh import SshTarget
from auditor.inventory import HostSpec
from auditor.transports import openssh
from auditor.transports.base import OutcomeKind as K
from auditor.transports.paramiko_ssh import (CommandTimeout, HopFailed, HostKeyRefused, Hop, KeyUnusable,
                                             OutputTooLarge, RecordingSocket, classify)

KNOWN_HOSTS = "/home/op/.ssh/known_hosts"
HOST_KEY = paramiko.Ed25519Key(data=base64.b64decode(
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"))
HOST_KEY_SHA256 = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"     # as `ssh-keygen -lf` prints it
SPEC = HostSpec("web-1", SshTarget("10.0.0.5", port=2222, user="deploy"))


def failed(error, phase, role="target", host="10.0.0.5", port=2222, first_bytes=None, wire_error=None,
           closed_by_peer=False, proxy_command=None):
    """A HopFailed as the paramiko transport raises it: the hop, the phase it reached, what its socket saw."""
    hop = Hop(role, Connection(host, port=port, user="deploy", connect_timeout=5))
    hop.phase, hop.proxy_command = phase, proxy_command
    if first_bytes is not None or wire_error or closed_by_peer:
        hop.wire = RecordingSocket(None)
        hop.wire.first_bytes, hop.wire.error, hop.wire.closed_by_peer = first_bytes or b"", wire_error, closed_by_peer
    return HopFailed(hop, error)


def paramiko_case(failure):
    return classify(failure, SPEC, KNOWN_HOSTS, 5)


def test_paramiko_host_key_unknown_says_how_to_add_it():
    kind, detail = paramiko_case(failed(HostKeyRefused("[10.0.0.5]:2222", HOST_KEY), "handshake"))
    assert kind == K.HOST_KEY_UNKNOWN
    assert detail.startswith("[10.0.0.5]:2222 is not in %s" % KNOWN_HOSTS)
    assert "`ssh-keyscan -p 2222 10.0.0.5`" in detail and "--accept-new-host-keys" in detail


def test_paramiko_host_key_vouched_for_only_by_a_certificate_authority_points_at_openssh():
    refused = HostKeyRefused("[10.0.0.5]:2222", HOST_KEY, authority="%s:3" % KNOWN_HOSTS)
    kind, detail = paramiko_case(failed(refused, "handshake"))
    assert kind == K.HOST_KEY_UNKNOWN
    assert "(%s:3: @cert-authority)" % KNOWN_HOSTS in detail and "`ansible_connection: ssh`" in detail


@pytest.mark.parametrize("patterns, vouched", [
    ("127.0.0.1,[127.0.0.1]:42722", True),          # as OpenSSH's own docs write a non-default port
    ("[127.0.0.1]:42722", True),
    ("127.0.0.*", True),
    ("[127.0.0.1]:2222", False),
    ("*,![127.0.0.1]:42722", False),
])
def test_a_cert_authority_line_is_matched_by_openssh_host_patterns(tmp_path, patterns, vouched):
    from auditor.transports.paramiko_ssh import IndexedHostKeys as KnownHosts
    known = tmp_path / "known_hosts"
    known.write_text("@cert-authority %s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
                     % patterns)
    found = KnownHosts(str(known)).authority_for("[127.0.0.1]:42722")
    assert found == ("%s:1" % known if vouched else None)


def test_paramiko_revoked_host_key_names_its_fingerprint_as_openssh_prints_it():
    kind, detail = paramiko_case(failed(HostKeyRefused("[10.0.0.5]:2222", HOST_KEY, revoked=True), "handshake"))
    assert kind == K.HOST_KEY_REVOKED
    assert "the key %s presented by [10.0.0.5]:2222 is marked @revoked" % HOST_KEY_SHA256 in detail


def test_paramiko_changed_host_key_gives_the_new_key_and_the_exact_removal_command():
    changed = paramiko.BadHostKeyException("[10.0.0.5]:2222", HOST_KEY, HOST_KEY)
    kind, detail = paramiko_case(failed(changed, "handshake"))
    assert kind == K.HOST_KEY_CHANGED
    assert "now ssh-ed25519 %s" % HOST_KEY_SHA256 in detail
    assert "`ssh-keygen -R '[10.0.0.5]:2222' -f %s`" % KNOWN_HOSTS in detail


def test_paramiko_host_key_failures_at_a_jump_host_name_the_jump_host():
    kind, detail = paramiko_case(failed(HostKeyRefused("bastion", HOST_KEY), "handshake", role="jump host",
                                        host="bastion", port=22))
    assert kind == K.HOST_KEY_UNKNOWN and detail.startswith("jump host bastion is not in")
    assert "`ssh-keyscan -p 22 bastion`" in detail


@pytest.mark.parametrize("error", [
    paramiko.AuthenticationException("Authentication failed."),
    paramiko.SSHException("No authentication methods available"),
])
def test_paramiko_refused_authentication_names_the_user_and_the_hop(error):
    kind, detail = paramiko_case(failed(error, "auth"))
    assert kind == K.AUTH_FAILED and detail.startswith("[10.0.0.5]:2222 refused user 'deploy'")


def test_paramiko_authentication_refused_by_a_jump_host_says_so():
    kind, detail = paramiko_case(failed(paramiko.AuthenticationException("Authentication failed."), "auth",
                                        role="jump host", host="bastion", port=22))
    assert kind == K.AUTH_FAILED and detail.startswith("jump host bastion refused user 'deploy'")


def test_paramiko_unusable_private_key_names_the_host_and_the_file():
    kind, detail = paramiko_case(failed(KeyUnusable("/keys/web.pem.pub", "a public key, not a private one"), "tcp"))
    assert kind == K.KEY_UNUSABLE
    assert detail == "web-1: private key /keys/web.pem.pub cannot be used: a public key, not a private one"


@pytest.mark.parametrize("error, kind, words", [
    (ConnectionRefusedError(111, "Connection refused"), K.UNREACHABLE, "connection refused (nothing listens"),
    (socket.timeout("timed out"), K.UNREACHABLE, "no answer to the TCP connection within 5s"),
    (OSError(110, "Connection timed out"), K.UNREACHABLE, "no answer to the TCP connection within 5s"),
    (ConnectionResetError(104, "Connection reset by peer"), K.UNREACHABLE, "reset the connection as soon as"),
    (socket.gaierror(-2, "Name or service not known"), K.UNREACHABLE, "does not resolve (Name or service not known)"),
    (OSError(113, "No route to host"), K.UNREACHABLE, "[10.0.0.5]:2222: No route to host"),
])
def test_paramiko_tcp_failures(error, kind, words):
    found_kind, detail = paramiko_case(failed(error, "tcp"))
    assert found_kind == kind and words in detail, detail


@pytest.mark.parametrize("wire, kind, words", [
    (dict(first_bytes=b"SSH-1.5-OldServer\r\n"), K.PROTOCOL, "speaks only SSH-1 ('SSH-1.5-OldServer')"),
    (dict(first_bytes=b"HTTP/1.1 400 Bad Request\r\n\r\n"), K.PROTOCOL,
     "not as an SSH server: 'HTTP/1.1 400 Bad Request'"),
    (dict(wire_error=ConnectionResetError(104, "reset")), K.UNREACHABLE, "reset the connection during the SSH handshake"),
    (dict(closed_by_peer=True), K.UNREACHABLE, "closed the connection during the SSH handshake (sshd's MaxStartups"),
    (dict(first_bytes=b"SSH-2.0-OpenSSH_9.2\r\n", closed_by_peer=True), K.UNREACHABLE,
     "closed the connection during the SSH handshake after its banner"),
    (dict(first_bytes=b""), K.TIMEOUT, "no SSH banner from [10.0.0.5]:2222 within 5s"),
    (dict(first_bytes=b"SSH-2.0-OpenSSH_9.2\r\n"), K.TIMEOUT,
     "handshake with [10.0.0.5]:2222 stalled after its banner (SSH-2.0-OpenSSH_9.2) for 5s"),
])
def test_paramiko_handshake_failures_are_classified_by_what_the_peer_did(wire, kind, words):
    found_kind, detail = paramiko_case(failed(paramiko.SSHException("Error reading SSH protocol banner"),
                                              "handshake", **wire))
    assert found_kind == kind and words in detail, detail


def test_paramiko_a_jump_host_that_cannot_reach_the_target():
    kind, detail = paramiko_case(failed(paramiko.ChannelException(2, "Connect failed"), "tunnel",
                                        role="jump host", host="bastion", port=22))
    assert kind == K.UNREACHABLE
    assert detail.startswith("jump host bastion could not open a connection to 10.0.0.5:2222 (")


def test_paramiko_a_failing_proxy_command_is_named():
    failure = failed(paramiko.ssh_exception.ProxyCommandFailure("nc -X 5 proxy %h %p", "exit 1"), "proxy",
                     proxy_command="nc -X 5 proxy %h %p")
    kind, detail = paramiko_case(failure)
    assert kind == K.UNREACHABLE and "the ProxyCommand for [10.0.0.5]:2222 ended before the SSH handshake (nc -X 5 proxy %h %p)" in detail


def test_paramiko_command_timeout_output_flood_and_the_auditors_own_bug():
    assert paramiko_case(failed(CommandTimeout(60), "exec")) == (K.TIMEOUT, "the remote command ran past 60s "
                                                                            "and was stopped")
    kind, detail = paramiko_case(failed(OutputTooLarge(16 << 20), "exec"))
    assert kind == K.ERROR and "more than 16 MiB" in detail
    kind, detail = paramiko_case(failed(ValueError("unexpected"), "exec"))
    assert (kind, detail) == (K.ERROR, "[10.0.0.5]:2222, exec: ValueError: unexpected")


# -- OpenSSH: what ssh said ------------------------------------------------------------------------

TARGET = HostSpec("web-1", SshTarget("127.0.0.1", port=42722, user="nobody"))
BEHIND_A_JUMP = HostSpec("web-2", SshTarget("10.9.9.9", user="nobody", proxy_jump="bastion:2222"))
BANNER_LINES = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"

UNKNOWN = ("No ED25519 host key is known for [127.0.0.1]:42722 and you have requested strict checking.\r\n"
           "Host key verification failed.\r\n")
CHANGED = (BANNER_LINES + "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n" + BANNER_LINES +
           "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n"
           "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\r\n"
           "It is also possible that a host key has just been changed.\r\n"
           "The fingerprint for the ED25519 key sent by the remote host is\n"
           "SHA256:eJG7t3yv12Dl6vVrqu1p7K2f+A8UESWKPJZYN/T6pd8.\r\n"
           "Please contact your system administrator.\r\n"
           "Add correct host key in /tmp/cap/kh_changed to get rid of this message.\r\n"
           "Offending ED25519 key in /tmp/cap/kh_changed:1\r\n"
           "  remove with:\r\n"
           "  ssh-keygen -f \"/tmp/cap/kh_changed\" -R \"[127.0.0.1]:42722\"\r\n"
           "Host key for [127.0.0.1]:42722 has changed and you have requested strict checking.\r\n"
           "Host key verification failed.\r\n")
REVOKED = (BANNER_LINES + "@       WARNING: REVOKED HOST KEY DETECTED!               @\r\n" + BANNER_LINES +
           "The ED25519 host key for [127.0.0.1]:42722 is marked as revoked.\r\n"
           "This could mean that a stolen key is being used to\r\nimpersonate this host.\r\n"
           "ED25519 host key for [127.0.0.1]:42722 was revoked and you have requested strict checking.\r\n"
           "Host key verification failed.\r\n")
DENIED = "nobody@127.0.0.1: Permission denied (publickey,password,keyboard-interactive).\r\n"
JUMP_CLOSED = "kex_exchange_identification: Connection closed by remote host\r\nConnection closed by UNKNOWN port 65535\r\n"


def openssh_case(stderr, spec=TARGET):
    return openssh.classify(stderr, spec, 5, {"hostname": spec.address, "port": spec.target.port})


@pytest.mark.parametrize("stderr, spec, kind, words", [
    (UNKNOWN, TARGET, K.HOST_KEY_UNKNOWN, "[127.0.0.1]:42722 is not in known_hosts (nor covered by a "
                                          "@cert-authority line); add its key (`ssh-keyscan -p 42722 127.0.0.1`"),
    (CHANGED, TARGET, K.HOST_KEY_CHANGED, "host key of [127.0.0.1]:42722 changed (now SHA256:eJG7t3yv12Dl6vVrqu1p7K2f"
                                          "+A8UESWKPJZYN/T6pd8); if the host was rebuilt, verify the new key out of "
                                          "band, then `ssh-keygen -f /tmp/cap/kh_changed -R '[127.0.0.1]:42722'`"),
    (REVOKED, TARGET, K.HOST_KEY_REVOKED, "presented by [127.0.0.1]:42722 is marked @revoked"),
    # the jump host's own ssh (its ProxyCommand) failed: its words come first, then the closed proxy
    (UNKNOWN + JUMP_CLOSED, BEHIND_A_JUMP, K.HOST_KEY_UNKNOWN, "jump host [127.0.0.1]:42722 is not in known_hosts"),
    ("Host key verification failed.\r\n" + JUMP_CLOSED, BEHIND_A_JUMP, K.HOST_KEY_UNKNOWN,
     "10.9.9.9 or one of its jump hosts is not in known_hosts"),
    (DENIED, TARGET, K.AUTH_FAILED, "[127.0.0.1]:42722 refused user 'nobody' (publickey,password,keyboard-interactive)"),
    (DENIED + JUMP_CLOSED, BEHIND_A_JUMP, K.AUTH_FAILED, "jump host 127.0.0.1 refused user 'nobody'"),
    ('Load key "/keys/web.pem": incorrect passphrase supplied to decrypt private key\r\n' + DENIED, TARGET,
     K.AUTH_FAILED, "no ssh-agent offered it (ssh-add /keys/web.pem)"),
])
def test_openssh_host_key_and_authentication_failures(stderr, spec, kind, words):
    found_kind, detail = openssh_case(stderr, spec)
    assert found_kind == kind and words in detail, detail


@pytest.mark.parametrize("stderr, spec, kind, words", [
    ("ssh: connect to host 127.0.0.1 port 42722: Connection refused\n", TARGET, K.UNREACHABLE,
     "[127.0.0.1]:42722: connection refused"),
    ("ssh: connect to host 127.0.0.1 port 42722: Connection timed out\n", TARGET, K.UNREACHABLE,
     "no answer to the TCP connection within 5s"),
    ("ssh: connect to host 127.0.0.1 port 43351: Connection refused\n" + JUMP_CLOSED, BEHIND_A_JUMP, K.UNREACHABLE,
     "jump host [127.0.0.1]:43351: connection refused"),
    ("ssh: Could not resolve hostname nosuch.invalid: Name or service not known\n",
     HostSpec("x", SshTarget("nosuch.invalid")), K.UNREACHABLE, "nosuch.invalid: the name does not resolve"),
    ("channel 0: open failed: connect failed: Connection refused\r\nstdio forwarding failed\r\n" + JUMP_CLOSED,
     BEHIND_A_JUMP, K.UNREACHABLE, "the jump host could not open a connection to 10.9.9.9:22 (Connection refused)"),
    ("Protocol major versions differ: 2 vs. 1\nbanner exchange: Connection to 127.0.0.1 port 42722: could not read "
     "protocol version\n", TARGET, K.PROTOCOL, "speaks only SSH-1"),
    ("kex_exchange_identification: banner line contains invalid characters\r\n", TARGET, K.PROTOCOL,
     "not as an SSH server"),
    ("Connection reset by 127.0.0.1 port 42722\n", TARGET, K.UNREACHABLE, "reset the connection during the SSH handshake"),
    ("kex_exchange_identification: Connection closed by remote host\nConnection closed by 127.0.0.1 port 42722\n",
     TARGET, K.UNREACHABLE, "closed the connection during the SSH handshake: not an SSH server there"),
    ("Connection timed out during banner exchange\nConnection to 127.0.0.1 port 42722 timed out\n", TARGET,
     K.TIMEOUT, "no SSH banner from [127.0.0.1]:42722 within 5s"),
    ("/bin/false: exec failed\r\n" + JUMP_CLOSED, BEHIND_A_JUMP, K.UNREACHABLE,
     "the ProxyCommand for 10.9.9.9 ended before the SSH handshake (the jump host's ssh, ProxyJump bastion:2222): "
     "'/bin/false: exec failed': run it by hand"),
    (JUMP_CLOSED, BEHIND_A_JUMP, K.UNREACHABLE, "the ProxyCommand for 10.9.9.9 ended before the SSH handshake (the "
                                                "jump host's ssh, ProxyJump bastion:2222), saying nothing"),
    ("nc: connect to proxy.internal port 3128 (tcp) failed: Connection refused\r\n" + JUMP_CLOSED,
     HostSpec("web-3", SshTarget("10.9.9.9", proxy_command="nc -X connect -x proxy.internal:3128 %h %p")), K.UNREACHABLE,
     "(nc -X connect -x proxy.internal:3128 %h %p): 'nc: connect to proxy.internal port 3128 (tcp) failed: "
     "Connection refused'"),
    ("", TARGET, K.ERROR, "ssh failed (exit 255): ssh failed and said nothing"),
])
def test_openssh_connection_failures(stderr, spec, kind, words):
    found_kind, detail = openssh_case(stderr, spec)
    assert found_kind == kind and words in detail, detail


def test_ssh_ends_its_options_before_every_address_it_is_given():
    from auditor.transports.base import Session
    jumped = HostSpec("web-2", SshTarget("10.9.9.9", user="nobody", proxy_jump="bastion:2222"))
    argv = openssh.OpenSSH(Session()).argv(jumped, "true", 5)
    assert argv[-3:] == ["--", "10.9.9.9", "true"]
    proxy = next(word for word in argv if word.startswith("ProxyCommand="))
    assert proxy.endswith(" -- bastion")
