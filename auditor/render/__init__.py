"""Renderers: AuditResult -> text. Each format lives in its own module."""
import os
import sys

FORMATS = ("table", "json", "markdown", "html", "junit")


def use_colour(stream=sys.stdout):
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


MATRIX_FORMATS = ("table", "json", "markdown")


def render_matrix(result, fmt, colour=False):
    """The comparison matrix alone (`fab audit --matrix-only`)."""
    if fmt == "table":
        from .table import matrix_table
        return matrix_table(result, colour)
    if fmt == "json":
        import json
        from .json_report import SCHEMA, matrix_rows
        return json.dumps({"schema": SCHEMA, "started": result.started, "matrix": matrix_rows(result)}, indent=2)
    if fmt == "markdown":
        from .markdown import matrix_markdown
        return matrix_markdown(result)
    raise ValueError("the matrix alone comes as %s, not %r" % ("|".join(MATRIX_FORMATS), fmt))


def render_pieces(result, fmt, colour=False, matrix=True):
    """The report as pieces of text, to be written one after the other (JSON is streamed)."""
    if fmt == "json":
        from .json_report import json_chunks
        return json_chunks(result)
    return [render(result, fmt, colour, matrix)]


def render(result, fmt, colour=False, matrix=True):
    if fmt == "json":
        from .json_report import render_json
        return render_json(result)
    if fmt == "table":
        from .table import render_table
        return render_table(result, colour, matrix)
    if fmt == "markdown":
        from .markdown import render_markdown
        return render_markdown(result, matrix)
    if fmt == "html":
        from .html import render_html
        return render_html(result, matrix)
    if fmt == "junit":
        from .junit import render_junit
        return render_junit(result)
    raise ValueError("unknown format %r; choose one of %s" % (fmt, ", ".join(FORMATS)))
