"""Run a command in a private mount namespace whose root is this chroot's root.

Why: a Docker daemon started inside a plain chroot (as `../shared/tools/fresh-debian.sh` makes)
starts containers but cannot `docker exec` into them. runc puts a container's root where the
daemon's root is mounted, and `exec` enters the container at the root of the mount namespace,
which in a chroot is the machine's real root: runc fails with `chdir to cwd ("/app") set in
config.json failed`. Here the chroot's root mount is moved onto the namespace's root (what
switch_root does at boot), so both are the same place. Only the namespace made for this command
changes; the machine's mounts and the other processes in the chroot are untouched.

Usage: unshare --mount --propagation private python3 own_root.py COMMAND [ARGS...]
       python3 own_root.py --in-chroot        (exit status 0 in a chroot, 1 otherwise)
"""
import ctypes
import functools
import os
import subprocess
import sys

MS_MOVE = 8192


def leave_chroot():
    """Make the mount namespace's root our root; returns the path our old root has there.

    As root, a chroot is left by moving the root below the working directory and climbing
    `..`. (/proc/1/root would tell the same without leaving, but it is often not readable.)"""
    chroot_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    os.chroot("/tmp")
    os.fchdir(chroot_root)
    while not os.path.samefile(".", ".."):
        os.chdir("..")
    os.chroot(".")
    os.fchdir(chroot_root)
    return os.getcwd()


@functools.lru_cache(maxsize=None)
def in_chroot():
    """Asked of a child process, which alone leaves the chroot to look."""
    return subprocess.run([sys.executable, os.path.abspath(__file__), "--in-chroot"]).returncode == 0


def command_prefix():
    """What to put before a Docker daemon's command line: nothing, except in a chroot."""
    if not in_chroot():
        return []
    return ["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__)]


def move_chroot_onto_namespace_root():
    where = leave_chroot()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(where.encode(), b"/", None, MS_MOVE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot move %s onto / in the new mount namespace" % where)
    os.chroot(".")
    os.chdir("/")


def main(argv):
    if argv == ["--in-chroot"]:
        try:
            sys.exit(0 if leave_chroot() != "/" else 1)
        except OSError:     # not root: then not able to start Docker daemons either
            sys.exit(1)
    if not argv:
        sys.exit(__doc__)
    move_chroot_onto_namespace_root()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
