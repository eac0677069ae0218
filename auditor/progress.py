"""Progress on stderr (hosts done / total): redrawn in place on a terminal,
one line per host otherwise, so stdout carries only the report."""
import sys


class Progress:
    def __init__(self, label, stream=sys.stderr):
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, done, total, name):
        if self.tty:
            self.stream.write("\r%s: %d/%d hosts done (last: %s)\033[K" % (self.label, done, total, name))
            if done == total:
                self.stream.write("\n")
        else:
            self.stream.write("%s: %d/%d hosts done (%s)\n" % (self.label, done, total, name))
        self.stream.flush()
