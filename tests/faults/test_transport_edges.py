"""Transport edge cases on real loopback sockets and a real paramiko client (no sandbox needed)."""
import time

from auditor.inventory import HostSpec
from auditor.transport import run_on_host
from faultkit import silent_listener


def test_a_host_that_accepts_tcp_and_never_sends_a_banner_is_a_timeout(tmp_path):
    listener = silent_listener()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spec = HostSpec("silent", "127.0.0.1", port=listener.getsockname()[1], user="nobody",
                    settings={"known_hosts": str(known_hosts)})
    started = time.monotonic()
    outcome = run_on_host(spec, "true", timeout=30, connect_timeout=2)
    elapsed = time.monotonic() - started
    listener.close()
    assert outcome.kind == "timeout", outcome
    assert "banner" in outcome.detail
    assert elapsed < 10           # bounded by the connect timeout, not the command's
