"""Progress on stderr: done/total, failures so far, the slowest host still running, and never a
control byte from a host name."""
import io

from auditor.progress import Progress


def test_progress_says_failures_and_the_slowest_running_host():
    stream = io.StringIO()
    progress = Progress("audit", stream=stream)
    progress(1, 2, "h\x1b]0;x\x07", failed=1, slowest=("h2", 12.4))
    progress(2, 2, "h2", failed=1)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "audit: 1/2 hosts done, 1 failed, slowest running: h2 (12s) (h\\x1b]0;x\\x07)"
    assert lines[1] == "audit: 2/2 hosts done, 1 failed (h2)"
