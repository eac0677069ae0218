"""Progress on stderr (done / total): redrawn in place on a terminal, plain
lines otherwise (every item up to 20, then every 5%), so stdout carries only
the report."""
import sys

from .render.sanitize import one_line


class Progress:
    def __init__(self, label, unit="hosts", stream=sys.stderr):
        self.label = label
        self.unit = unit
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, done, total, name):
        name = one_line(name)       # a host name is inventory data: no control byte reaches the terminal
        if self.tty:
            self.stream.write("\r%s: %d/%d %s done (last: %s)\033[K" % (self.label, done, total, self.unit, name))
            if done == total:
                self.stream.write("\n")
        elif done == total or done % max(1, total // 20) == 0:
            self.stream.write("%s: %d/%d %s done (%s)\n" % (self.label, done, total, self.unit, name))
        self.stream.flush()
