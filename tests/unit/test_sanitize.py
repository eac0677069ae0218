"""Hostile bytes from hosts and inventories, shown in every medium: no control
character reaches a terminal, JUnit stays well-formed XML, Markdown and HTML
carry no live markup (escaped exactly once), JSON keeps the data."""
import json
from xml.etree import ElementTree

import pytest

from auditor.audit import AuditResult, HostResult
from auditor.codes import emit
from auditor.crosshost import build_matrix
from auditor.render import render
from auditor.render.sanitize import html_text, markdown, one_line, terminal, xml

from test_crosshost import host

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x00nul\u202eevil\x9b<script>alert(1)</script> a&b | `x`"
RAW_CONTROLS = ("\x1b", "\x00", "\x07", "\u202e", "\x9b")


def hostile_result():
    hosts = [host("api-1", "api"), host(HOSTILE, "video-worker", region="us-east-1" + HOSTILE)]
    findings = [emit("worker-sqs-errors", [HOSTILE], "%s: logged %s" % (HOSTILE, HOSTILE)),
                emit("endpoint-override", ["api-1"], "endpoint http://x/%s" % HOSTILE)]
    hosts = [HostResult(h.report, tuple(f for f in findings if h.report.name in f.hosts)) for h in hosts]
    return AuditResult(hosts=hosts, findings=findings, matrix=build_matrix(hosts), started="2026-11-26T00:00:00Z",
                       seconds=1.0, inventory="inv\x1b[2J.yaml")


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "junit"])
def test_no_control_character_reaches_any_medium(fmt):
    text = render(hostile_result(), fmt)
    for char in RAW_CONTROLS:
        assert char not in text, (fmt, repr(char))
    assert "\\x1b" in text


def test_junit_is_well_formed_and_keeps_the_escaped_text():
    suites = ElementTree.fromstring(render(hostile_result(), "junit"))
    names = [s.get("name") for s in suites.iter("testsuite")]
    assert any("\\x1b]0;owned\\x07" in name for name in names)


def test_markdown_and_html_carry_no_live_markup_and_escape_once():
    md = render(hostile_result(), "markdown")
    assert "<script>" not in md and "&lt;script&gt;" in md
    page = render(hostile_result(), "html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b" in page and "&amp;amp;" not in page


def test_json_keeps_the_data():
    document = json.loads(render(hostile_result(), "json"))
    assert HOSTILE in [h["name"] for h in document["hosts"]]


def test_each_sanitiser():
    assert terminal("a\x1b[2Jb\nc\td") == "a\\x1b[2Jb\nc\td"
    assert one_line("a\nb\u202ec") == "a\\x0ab\\u202ec"
    assert markdown("a|b*c<d>") == "a\\|b\\*c&lt;d&gt;"
    assert xml("a\x00b\x1bc") == "a\\x00b\\x1bc"
    assert html_text("<b>&\x1b") == "&lt;b&gt;&amp;\\x1b"
