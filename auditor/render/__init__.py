"""Renderers: AuditResult -> text. Each format lives in its own module, named in RENDERERS."""
import importlib
import os
import sys
from typing import TYPE_CHECKING, Iterable, Optional, TextIO

if TYPE_CHECKING:
    from ..audit import AuditResult


def use_colour(stream: Optional[TextIO] = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return (stream or sys.stdout).isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


MATRIX_FORMATS = ("table", "json", "markdown")


def render_matrix(result: "AuditResult", fmt: str, colour: bool = False) -> str:
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


def render_pieces(result: "AuditResult", fmt: str, colour: bool = False, matrix: bool = True) -> Iterable[str]:
    """The report as pieces of text, to be written one after the other (JSON is streamed)."""
    if fmt == "json":
        from .json_report import json_chunks
        return json_chunks(result)
    return [render(result, fmt, colour, matrix)]


# format -> (module, function, the options it takes): the one table of renderers, imported on use
RENDERERS = {"table": ("table", "render_table", ("colour", "matrix")), "json": ("json_report", "render_json", ()),
             "markdown": ("markdown", "render_markdown", ("matrix",)), "html": ("html", "render_html", ("matrix",)),
             "junit": ("junit", "render_junit", ())}


def render(result: "AuditResult", fmt: str, colour: bool = False, matrix: bool = True) -> str:
    if fmt not in RENDERERS:
        raise ValueError("unknown format %r; choose one of %s" % (fmt, ", ".join(FORMATS)))
    module, function, takes = RENDERERS[fmt]
    options = {"colour": colour, "matrix": matrix}
    renderer = getattr(importlib.import_module("." + module, __name__), function)
    return renderer(result, *(options[name] for name in takes))


FORMATS = tuple(RENDERERS)
