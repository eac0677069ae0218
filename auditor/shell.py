"""The one quoting of words for a shell: the commands the auditor runs on hosts and the commands
its remedies tell the operator to run are built alike (a path with `$(...)` in it stays a path)."""
import shlex


def quote(value):
    """One word, quoted for a POSIX shell."""
    return shlex.quote(str(value))


def command(*words):
    """A command line of words, each quoted: what a remedy prints for copy and paste."""
    return " ".join(quote(word) for word in words)
