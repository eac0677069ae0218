"""The operator's files, as operators name them: a path, `/dev/stdin`, `<(sops -d inventory.yaml)`,
`-o >(jq .)`, `/dev/stdout`, a FIFO. Each is opened once (a pipe is empty the second time), read
with a bound (a wrong path to `/dev/zero` must not eat the machine's memory), and what is neither a
file nor a pipe is refused with what it is."""
import errno
import os
import select
import stat
import time
from pathlib import Path

READ_LIMIT = 256 * 1024 * 1024      # far above a 100,000-host inventory or a saved audit of one
READER_WAIT = 10                    # seconds a FIFO waits for the process at its other end
READ_SECONDS = 120                  # seconds a pipe may take to deliver a whole file (as ansible-inventory's)


class Unreadable(Exception):
    """The path cannot be read as a file or a pipe; the message says why, in the operator's words."""


def kind_of(mode):
    """What a file type is called in a message."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISFIFO, "a pipe"),
                       (stat.S_ISREG, "a file")):
        if test(mode):
            return name
    return "not a file"


def read_bytes(path, limit=READ_LIMIT):
    """The whole content of a regular file or a pipe (process substitution, /dev/stdin, a FIFO whose
    writer may start a moment later), read once, within READ_SECONDS."""
    try:
        descriptor = os.open(os.path.expanduser(str(path)), os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise Unreadable(error.strerror or str(error))
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISREG(mode):
            os.set_blocking(descriptor, True)
            content = handle.read(limit + 1)
        elif stat.S_ISFIFO(mode):
            content = _read_pipe(descriptor, limit)
        else:
            raise Unreadable("it is %s, not a file or a pipe" % kind_of(mode))
    if len(content) > limit:
        raise Unreadable("it holds more than %d MiB" % (limit // (1024 * 1024)))
    return content


def _read_pipe(descriptor, limit):
    """A pipe read to its end; an end before any writer came (a FIFO read first) is waited out."""
    started = time.monotonic()
    chunks, size = [], 0
    while size <= limit:
        waited = time.monotonic() - started
        if waited > READ_SECONDS:
            raise Unreadable("its writer sent no end within %d s" % READ_SECONDS)
        try:
            chunk = os.read(descriptor, 1 << 20)
        except BlockingIOError:                 # a writer, nothing written yet (sops still decrypting)
            select.select([descriptor], [], [], 0.5)
            continue
        except OSError as error:
            raise Unreadable(error.strerror or str(error))
        if not chunk:
            if chunks or waited > READER_WAIT:
                break
            time.sleep(0.1)                     # no writer yet: a FIFO's writer may start after us
            continue
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_text(path, limit=READ_LIMIT):
    """read_bytes as UTF-8 text; UnicodeDecodeError is the caller's to word (it knows the line)."""
    return read_bytes(path, limit).decode("utf-8")


def caller_stream(path):
    """True when a report path is the caller's own stream: a pipe, FIFO, terminal or device reached
    directly or through a link (`/dev/stdout`, `/dev/fd/N` of `>(jq .)`): written as it is, in place.
    A link to a regular file is not (a planted link would make the report overwrite its target)."""
    try:
        mode = os.stat(os.path.expanduser(str(path))).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def open_for_report(path):
    """A descriptor to write a report to: the caller's stream as it is (a FIFO nobody reads is an
    error, not a hang), else a regular file created or truncated in place, never through a link,
    and made readable by its owner only (reports describe the fleet's credentials, masked)."""
    path = os.path.expanduser(str(path))
    if caller_stream(path):
        deadline = time.monotonic() + READER_WAIT
        while True:
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                if error.errno != errno.ENXIO:
                    raise
                if time.monotonic() > deadline:
                    raise OSError(error.errno, "no process opened that pipe to read within %d s" % READER_WAIT)
                time.sleep(0.1)         # a FIFO's reader may start after the writer (`... & cat fifo`)
        os.set_blocking(descriptor, True)
        return descriptor
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    target = os.fstat(descriptor)
    if stat.S_ISREG(target.st_mode) and target.st_uid == os.getuid():
        os.fchmod(descriptor, 0o600)
    return descriptor


# -- the operator's own state: files only they may read (the fingerprint key, the history) ------

def create_private(path):
    """A new file only its owner may read, in a directory only they may enter (made if missing);
    its descriptor, open for writing. FileExistsError when it exists (it is never replaced)."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def others_may_read(info):
    """Whether a file's stat says another user may read it (or it is not this user's)."""
    return bool(info.st_mode & 0o077) or info.st_uid != os.getuid()
