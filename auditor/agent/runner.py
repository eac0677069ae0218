"""Running commands on the host within the agent's time budget: every step has a timeout,
every output is bounded, and a command that could not run is a result with its reason."""
import collections
import subprocess
import threading
import time

try:
    from .wire import STEP_TIMEOUT, Unread
except ImportError:  # shipped: the sources are concatenated (see agent.program)
    pass

DEADLINE = [None]           # the agent's time budget: every step ends before it
MAX_LINE = 16384            # a longer line is cut: its head is kept, the rest skipped


def remaining(timeout):
    """A step's timeout, cut to what is left of the agent's budget."""
    if DEADLINE[0] is None:
        return timeout
    return min(timeout, DEADLINE[0] - time.time())


def unread_reason(code, text):
    """Why a reading could not be taken, from a failed command's exit status and output."""
    lowered = text.lower()
    if code == 124:
        return Unread.TIMED_OUT
    if code == 127:
        return Unread.NOT_FOUND
    if "does not support reading" in lowered:
        return Unread.LOG_DRIVER
    if "permission denied" in lowered:
        return Unread.PERMISSION_DENIED
    if "cannot connect to the docker daemon" in lowered or "is the docker daemon running" in lowered:
        return Unread.DAEMON_DOWN
    return Unread.FAILED


def unread(code, out, err, limit=300):
    """A reading not taken: the reason and the tail of what the command said."""
    text = (err or out).strip()
    return {"read": False, "reason": unread_reason(code, text), "error": text[-limit:]}


def run(argv, timeout=STEP_TIMEOUT, input_text=None, env=None):
    """(exit status, stdout, stderr); a missing program or a timeout is a result too."""
    timeout = remaining(timeout)
    if timeout < 0.5:
        return 124, "", "%s not run: the agent's time budget ran out" % argv[0]
    try:
        done = subprocess.run(argv, input=input_text, capture_output=True, timeout=timeout, env=env,
                              universal_newlines=True, errors="replace")
        return done.returncode, done.stdout, done.stderr
    except FileNotFoundError:
        return 127, "", "%s: not found" % argv[0]
    except OSError as error:    # e.g. E2BIG: an environment too large to pass on
        return 125, "", "%s could not start: %s" % (argv[0], error.strerror)
    except subprocess.TimeoutExpired:
        return 124, "", "%s timed out after %ss" % (" ".join(argv[:3]), timeout)


class NewestLines:
    """The newest lines of a stream, never more than max_bytes in all (plus one line)."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.lines = collections.deque()
        self.size = 0
        self.dropped = False

    def feed(self, stream):
        """Read a binary stream line by line, each line capped at MAX_LINE bytes."""
        cut = False
        while True:
            chunk = stream.readline(MAX_LINE)
            if not chunk:
                return
            whole = chunk.endswith(b"\n")
            if not cut:
                self.add(chunk.decode("utf-8", "replace").rstrip("\r\n"))
            cut = not whole

    def add(self, line):
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1
            self.dropped = True


def stream_command(argv, newest, timeout):
    """Run argv and keep the newest lines of its output (stdout and stderr merged):
    (exit status, NewestLines), with 124 when it ran past `timeout`."""
    timeout = remaining(timeout)
    if timeout < 0.5:
        newest.add("%s not run: the agent's time budget ran out" % argv[0])
        return 124, newest
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError:
        return 127, newest
    expired = []

    def stop():
        expired.append(True)
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        newest.feed(process.stdout)
        code = process.wait()
    finally:
        timer.cancel()
        process.stdout.close()
    return (124 if expired else code), newest
