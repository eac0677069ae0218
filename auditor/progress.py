"""Progress on stderr (done / total, failures so far, the slowest host still running):
redrawn in place on a terminal, plain lines otherwise (every item up to 20, then every 5%),
so stdout carries only the report."""
import sys

from .render.sanitize import one_line


class Progress:
    def __init__(self, label, unit="hosts", stream=None):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr      # the stderr of this run, not of the import
        self.tty = self.stream.isatty()

    def __call__(self, done, total, name, failed=0, slowest=None):
        """`failed`: items that failed so far; `slowest`: (name, seconds) of the oldest still running."""
        name = one_line(name)       # a host name is inventory data: no control byte reaches the terminal
        extra = ", %d failed" % failed if failed else ""
        if slowest and done < total:
            extra += ", slowest running: %s (%ds)" % (one_line(slowest[0]), slowest[1])
        if self.tty:
            self.stream.write("\r%s: %d/%d %s done%s (last: %s)\033[K" % (self.label, done, total, self.unit,
                                                                         extra, name))
            if done == total:
                self.stream.write("\n")
        elif done == total or done % max(1, total // 20) == 0:
            self.stream.write("%s: %d/%d %s done%s (%s)\n" % (self.label, done, total, self.unit, extra, name))
        self.stream.flush()
