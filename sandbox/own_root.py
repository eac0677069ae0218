"""Run a command in a private mount namespace whose root is this chroot's root.

Why: a Docker daemon started inside a plain chroot (as `../shared/tools/fresh-debian.sh` makes)
starts containers but cannot `docker exec` into them. runc puts a container's root where the
daemon's root is mounted, and `exec` enters the container at the root of the mount namespace,
which in a chroot is the machine's real root: runc fails with `chdir to cwd ("/app") set in
config.json failed`. Here the chroot's root mount is moved onto the namespace's root (what
switch_root does at boot), so both are the same place. Only the namespace made for this command
changes; the machine's mounts and the other processes in the chroot are untouched.

Usage: unshare --mount --propagation private python3 own_root.py COMMAND [ARGS...]
"""
import ctypes
import os
import sys

MS_MOVE = 8192


def in_chroot():
    """True when our root is not the root of init's file system (a chroot, not a container)."""
    try:
        ours, init = os.stat("/"), os.stat("/proc/1/root")
    except OSError:
        return False
    return (ours.st_dev, ours.st_ino) != (init.st_dev, init.st_ino)


def command_prefix():
    """What to put before a Docker daemon's command line: nothing, except in a chroot."""
    if not in_chroot():
        return []
    return ["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__)]


def move_chroot_onto_namespace_root():
    chroot_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    # leave the chroot: a root below our working directory lets `..` climb to the namespace's root
    os.chroot("/tmp")
    os.fchdir(chroot_root)
    while not os.path.samefile(".", ".."):
        os.chdir("..")
    os.chroot(".")
    os.fchdir(chroot_root)
    where = os.getcwd().encode()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(where, b"/", None, MS_MOVE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot move %s onto / in the new mount namespace" % where.decode())
    os.chroot(".")
    os.chdir("/")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    if in_chroot():
        move_chroot_onto_namespace_root()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
