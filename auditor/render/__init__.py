"""Renderers: AuditResult -> text. Each format lives in its own module."""
import os
import sys

FORMATS = ("table", "json")


def use_colour(stream=sys.stdout):
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def render(result, fmt, colour=False):
    if fmt == "json":
        from .json_report import render_json
        return render_json(result)
    if fmt == "table":
        from .table import render_table
        return render_table(result, colour)
    raise ValueError("unknown format %r; choose one of %s" % (fmt, ", ".join(FORMATS)))
