"""Code that runs on the audited hosts (standard library only, Python 3.7+).

`host_agent.py` runs on the host, once per audit; `sqs_probe.py` runs inside
the app's environment (its container, or its .env) and needs only boto3 there.
`command_line()` packs both for a single SSH exec, with no stdin streaming.
"""
import base64
import functools
import json
import zlib
from pathlib import Path

from .wire import to_wire

HERE = Path(__file__).parent
BOOTSTRAP = ("import sys,zlib,base64;exec(compile(zlib.decompress(base64.b64decode(sys.argv[1])),"
             "'fleet-agent','exec'))")


def _pack(data):
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


SHARED = ("wire.py", "redact.py", "appenv.py")
# each program's modules, in import order: a module comes after what it imports
PARTS = {"host_agent.py": SHARED + ("runner.py", "environment.py", "logs.py", "containers.py", "host_agent.py"),
         "sqs_probe.py": SHARED + ("celery_view.py", "sqs_probe.py")}


def program(name):
    """A shipped program: its modules' sources, one after the other, as one source."""
    return "\n\n".join((HERE / part).read_text() for part in PARTS[name])


@functools.lru_cache(maxsize=None)
def packed_program(name):
    """Packed once per process: compressing the agent cost more controller CPU per host than SSH."""
    return _pack(program(name).encode())


def command_display(python, config, timeout):
    """The remote command as --debug shows it: the packed agent and its settings only by size
    (large, and of no use to read)."""
    agent, settings, probe = command_line(python, config, timeout, lambda word: word).split(" ")[-3:]
    return "timeout -k 5 %d %s -c <bootstrap> <agent: %d bytes> <settings: %d bytes> <probe: %d bytes>" % (
        int(timeout), python, len(agent), len(settings), len(probe))


def command_line(python, config, timeout, quote):
    """`timeout N PYTHON -c BOOTSTRAP AGENT SETTINGS PROBE`: one exec, every word quoted; only
    the settings differ between hosts."""
    words = ["timeout", "-k", "5", str(int(timeout)), python, "-c", BOOTSTRAP,
             packed_program("host_agent.py"), _pack(json.dumps(to_wire(config)).encode()),
             packed_program("sqs_probe.py")]
    return " ".join(quote(word) for word in words)
