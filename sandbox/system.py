"""Small process helpers for the sandbox: prerequisites, pid files, waits."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from auditor.errors import SandboxError

# binary -> Debian package that provides it
REQUIRED_BINARIES = {
    "sshd": ("/usr/sbin/sshd", "openssh-server"),
    "ssh-keygen": ("ssh-keygen", "openssh-client"),
    "dockerd": ("dockerd", "docker.io"),
    "docker": ("docker", "docker.io"),
    "debootstrap": ("debootstrap", "debootstrap"),
}


def require_system_parts(names=REQUIRED_BINARIES):
    """Fail once, naming every missing Debian package, instead of a traceback later."""
    missing = sorted({package for binary, package in names.values()
                      if not (os.path.exists(binary) if binary.startswith("/") else shutil.which(binary))})
    if missing:
        raise SandboxError(
            "the sandbox needs these Debian packages: %s\n  fix: apt-get install -y %s"
            % (", ".join(missing), " ".join(missing)))
    if os.geteuid() != 0:
        raise SandboxError("the sandbox starts Docker daemons, which needs root\n  fix: run it as root (sudo)")


def read_pid(path):
    try:
        pid = int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_pid(pid, timeout=15.0):
    """SIGTERM, wait, then SIGKILL: every wait here has a bound."""
    if pid is None or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def spawn(argv, log_path, env=None):
    """Start a daemon detached from our session, its output to a log file."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    return process.pid


CHECKOUT = Path(__file__).resolve().parents[1]


def spawn_module(module, args, log_path, **env):
    """A sandbox module (`python -m MODULE ARGS`) as a daemon (spawn), importable from this checkout
    whatever the caller's directory."""
    return spawn([sys.executable, "-m", module, *args], log_path,
                 env=dict(os.environ, PYTHONPATH=str(CHECKOUT), **env))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SandboxError("timed out after %.0fs waiting for %s" % (timeout, what))


def mounts():
    """[(mount point, file system type)] in the order they were mounted, from the mount table."""
    with open("/proc/self/mounts") as table:
        return [(fields[1].replace("\\040", " "), fields[2]) for fields in map(str.split, table)]


def file_system_type(path):
    """The type of the file system `path` lives on ("ext4", "overlay", ...)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    for point, point_kind in mounts():
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, point_kind
    return kind


def port_open(address, port):
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(address="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def run(argv, timeout=120, env=None, input=None):
    """Run a setup command; a failure raises with its output, which is what a user needs."""
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, input=input)
    except subprocess.TimeoutExpired:
        raise SandboxError("timed out after %ss: %s" % (timeout, " ".join(map(str, argv))))
    if result.returncode != 0:
        raise SandboxError("command failed (%d): %s\n%s" % (
            result.returncode, " ".join(map(str, argv)), (result.stderr or result.stdout).decode(errors="replace")[-2000:]))
    return result.stdout.decode(errors="replace")


class LoopbackServer:
    """A server process the sandbox starts on a loopback port: its pid and port in files under
    `directory` (named after `name`), so that a later command finds and stops it."""

    def __init__(self, directory, name):
        self.directory = Path(directory)
        self.pid_file = self.directory / ("%s.pid" % name)
        self.port_file = self.directory / ("%s.port" % name)

    @property
    def port(self):
        try:
            return int(self.port_file.read_text())
        except (OSError, ValueError):
            return None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def pid(self):
        return read_pid(self.pid_file)

    def stop(self):
        stop_pid(self.pid())
        self.pid_file.unlink(missing_ok=True)
