"""One sanitiser per medium for every string that came from a host or an inventory.

Host data is hostile until shown safely: a log line can carry `ESC ] 0 ;` (set
the terminal's title), `ESC [ 2 J` (clear the screen), bidi overrides that
reorder what a reader sees, NUL bytes that make XML invalid, or Markdown and
HTML that a ticket would render. Control characters are shown escaped
(`\\x1b`, `\\u202e`), never passed on; then each medium escapes its own syntax,
exactly once. JSON needs none of this: json.dumps escapes every control
character and keeps the data.
"""
import html
import re

# C0 and C1 controls (tab and newline are layout, kept), DEL, bidi embeddings,
# overrides and isolates, and the line/paragraph separators
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# the same, newline and tab included, for one-line places (a progress line, a table cell name)
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# characters XML 1.0 cannot carry at all (ElementTree would write them and make the file invalid)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")      # what is markup mid-line, in a cell or a list item


def _escape(match):
    char = match.group(0)
    return "\\x%02x" % ord(char) if ord(char) < 0x100 else "\\u%04x" % ord(char)


def terminal(value: object) -> str:
    """For a terminal: controls escaped, newlines and tabs kept."""
    return _CONTROL.sub(_escape, str(value))


def one_line(value: object) -> str:
    """For a single line (progress on stderr, a name): every control escaped, newlines too."""
    return _CONTROL_ONE_LINE.sub(_escape, str(value))


def markdown(value: object) -> str:
    """For Markdown: controls escaped, one line, Markdown and HTML syntax escaped."""
    text = _MARKDOWN.sub(r"\\\1", one_line(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml(value: object) -> str:
    """For XML text and attributes (ElementTree escapes &, < and > itself): controls escaped,
    characters XML 1.0 forbids removed by escaping, so the document stays well-formed."""
    return _NOT_XML.sub(_escape, terminal(value))


def html_text(value: object) -> str:
    """For HTML: controls escaped, then HTML-escaped, exactly once."""
    return html.escape(terminal(value), quote=True)
