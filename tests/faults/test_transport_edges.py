"""Transport edge cases on real loopback sockets and a real paramiko client (no sandbox needed)."""
import threading
import time

from auditor import transport
from auditor.inventory import HostSpec
from auditor.transport import run_on_host
from faultkit import free_port, silent_listener


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


def test_tcp_is_connected_outside_the_handshake_slots(tmp_path):
    """Hosts that never answer TCP must not hold the slots that bound concurrent key exchanges:
    with every slot taken, a refused host is still classified (it never waits for a slot)."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spec = HostSpec("refused", "127.0.0.1", port=free_port(), user="nobody", settings={"known_hosts": str(known_hosts)})
    for _ in range(transport.HANDSHAKES_IN_FLIGHT):
        transport._handshakes.acquire()
    try:
        outcomes = []
        worker = threading.Thread(target=lambda: outcomes.append(run_on_host(spec, "true", 30, connect_timeout=2)),
                                  daemon=True)
        worker.start()
        worker.join(10)
    finally:
        for _ in range(transport.HANDSHAKES_IN_FLIGHT):
            transport._handshakes.release()
    assert outcomes and outcomes[0].kind == "unreachable", outcomes
