"""Markdown report, for a release ticket: verdicts, the matrix with deviating
cells in bold and marked, then the findings."""
from typing import TYPE_CHECKING

from .sanitize import markdown
from .table import ACCOUNT_HEADERS, CROSS_CHECK_HEADERS, account_rows, cross_check_rows, cross_check_summary

if TYPE_CHECKING:
    from ..audit import AuditResult


def _cell(text):
    return markdown(text)


def _table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def matrix_markdown(result: "AuditResult") -> str:
    names = [h.report.name for h in result.hosts]
    rows = []
    for row in result.matrix:
        cells = []
        for name in names:
            value = "?" if row.cells.get(name) is None else markdown(row.cells[name])
            cells.append("**%s** (deviates)" % value if name in row.deviating else value)
        rows.append([row.attribute] + cells)
    lines = ["| " + " | ".join(["attribute"] + [markdown(n) for n in names]) + " |", "|" + "---|" * (len(names) + 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def render_markdown(result: "AuditResult", matrix: bool = True) -> str:
    errors = sum(f.severity == "error" for f in result.findings)
    out = ["# Fleet audit %s" % result.started, "",
           "%d host(s), %d finding(s), %d error(s). Inventory: %s." % (
               len(result.hosts), len(result.findings), errors, markdown(result.inventory)), "",
           "## Hosts", "",
           _table(["host", "role", "reachable", "verdict"],
                  [[h.report.name, ",".join(h.report.roles), "yes" if h.report.reachable else h.report.transport_kind,
                    h.verdict] for h in result.hosts])]
    if matrix and result.matrix:
        out += ["", "## Comparison", "", matrix_markdown(result)]
    if result.cross_check is not None:
        out += ["", "## Where the queues are", "", markdown(cross_check_summary(result.cross_check)) + ".", "",
                _table(CROSS_CHECK_HEADERS, cross_check_rows(result.cross_check))]
        if result.cross_check.accounts:
            out += ["", "AWS's account of each queue (CloudWatch `AWS/SQS`, the logs' window):", "",
                    _table(ACCOUNT_HEADERS, account_rows(result.cross_check))]
    out += ["", "## Findings", ""]
    if not result.findings:
        out.append("No findings.")
    for f in result.findings:
        out.append("- **%s** `%s` on %s: %s  \n  Fix: %s" % (f.severity, f.code, markdown(", ".join(f.hosts)),
                                                            markdown(f.message), markdown(f.remedy)))
    if result.since_ok:
        out += ["", "## Since it last worked", ""]
        out += ["- **%s** %s" % (markdown(host), markdown(since.line())) for host, since in sorted(result.since_ok.items())]
    return "\n".join(out)
