"""HTML report: one self-contained file (inline CSS, no script, no link out).

A Content-Security-Policy of `default-src 'none'` makes the browser refuse any
fetch, so the report opens the same on an air-gapped laptop as in CI. Every
value is escaped: hosts' data is untrusted text.
"""
from typing import TYPE_CHECKING, List, Sequence

from .sanitize import html_text
from .table import (ACCOUNT_HEADERS, CROSS_CHECK_HEADERS, account_rows, container_cell, cross_check_rows,
                    cross_check_summary, last_activity)

if TYPE_CHECKING:
    from ..audit import AuditResult

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; }
.summary { color: #555; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d0d0d5; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f5; }
td.deviates { background: #ffd7d5; color: #8a1010; font-weight: 600; }
td.unknown { color: #888; }
.mark { display: inline-block; margin-right: .3em; font-weight: 700; }
.sev-error, .v-config, .v-worker-down, .v-unreachable { color: #b00020; font-weight: 600; }
.sev-warning { color: #9a6700; font-weight: 600; } .sev-info { color: #0b5cad; }
.v-ok { color: #1a7f37; font-weight: 600; } .v-code-suspect { color: #8250df; font-weight: 600; }
code, .mono { font-family: ui-monospace, monospace; font-size: .92em; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _e(value):
    return html_text("" if value is None else value)


def _table(headers, rows, table_id=None):
    """Rows are lists of cells; a cell is text (escaped here) or (html, css class)."""
    table_tag = '<table id="%s">' % table_id if table_id else "<table>"
    out = [table_tag + "<thead><tr>%s</tr></thead><tbody>" % "".join("<th>%s</th>" % _e(h) for h in headers)]
    for row in rows:
        cells = []
        for cell in row:
            html, css = cell if isinstance(cell, tuple) else (_e(cell), "")
            cells.append('<td class="%s">%s</td>' % (css, html) if css else "<td>%s</td>" % html)
        out.append("<tr>%s</tr>" % "".join(cells))
    out.append("</tbody></table>")
    return "\n".join(out)


def _lines(text):
    return "<br>".join(_e(line) for line in str(text).splitlines())


def _hosts(result):
    rows = []
    for host in result.hosts:
        report = host.report
        rows.append([report.name, ",".join(report.roles) or "-",
                     "yes" if report.reachable else "no: " + report.transport_kind,
                     (_lines(container_cell(report)), ""), last_activity(report),
                     (_e(host.verdict), "v-%s" % host.verdict)])
    return _table(["host", "role", "reachable", "containers", "last activity", "verdict"], rows)


def _matrix(result):
    names = [h.report.name for h in result.hosts]
    rows = []
    for row in result.matrix:
        cells = [row.attribute]
        for name in names:
            value = row.cells.get(name)
            if name in row.deviating:
                html = '<span class="mark" title="expected: %s">!</span>%s' % (_e(row.expected.get(name)), _e(value))
                cells.append((html, "deviates"))
            elif value is None:
                cells.append(("?", "unknown"))
            else:
                cells.append(value)         # plain text: _table escapes it, once
        rows.append(cells)
    return ("<p>A highlighted cell (marked <b>!</b>) differs from the baseline or from the majority of the "
            "hosts it is compared with (the fleet, or the hosts of the same role).</p>"
            + _table(["attribute"] + names, rows, table_id="comparison"))


def _findings(findings):
    if not findings:
        return "<p>No findings.</p>"
    return _table(["severity", "code", "hosts", "what", "fix"],
                  [[(_e(f.severity), "sev-%s" % f.severity), ("<code>%s</code>" % _e(f.code), ""),
                    ", ".join(f.hosts), f.message, f.remedy] for f in findings])


FLOW_COLOURS = {"sent": "#0b5cad", "received": "#9a6700", "completed": "#1a7f37", "failed": "#b00020",
                "AWS sent": "#0b5cad", "AWS received": "#9a6700", "AWS deleted": "#1a7f37"}
CHART_WIDTH, CHART_HEIGHT, MARGIN = 640, 160, 34


def _flow_svg(flow):
    """One queue's job flow as an inline SVG (no script, nothing fetched): per minute, a line per
    kind (all hosts together), the per-host totals in each line's title, the dead-letter depth; AWS's
    own counts dashed beside them, and the minute the flow changed."""
    minutes = flow.minutes
    if not minutes:
        return "<p>queue <code>%s</code>: no per-minute job lines in the window.</p>" % _e(flow.key)
    totals = {kind: {m: sum(per.get(m, 0) for per in hosts.values()) for m in minutes}
              for kind, hosts in flow.counts.items()}
    totals.update({label: {m: per.get(m, 0) for m in minutes} for label, per in flow.aws.items() if per})
    top = max([1] + [n for series in totals.values() for n in series.values()])
    step = (CHART_WIDTH - 2 * MARGIN) / max(1, len(minutes) - 1)

    def point(index, value):
        return "%.1f,%.1f" % (MARGIN + index * step, CHART_HEIGHT - MARGIN - value * (CHART_HEIGHT - 2 * MARGIN) / top)

    shapes = []
    for kind, series in totals.items():
        by = ", ".join("%s %d" % (host, sum(per.values())) for host, per in sorted(flow.counts[kind].items())) \
            if kind in flow.counts else "AWS's account: %d" % sum(series.values())
        shapes.append('<polyline class="flow-%s" fill="none" stroke="%s" stroke-width="2"%s points="%s">'
                      "<title>%s per minute (%s)</title></polyline>" % (
                          _e(kind.replace(" ", "-")), FLOW_COLOURS.get(kind, "#555"),
                          ' stroke-dasharray="5 3"' if kind in flow.aws else "",
                          " ".join(point(i, series[m]) for i, m in enumerate(minutes)), _e(kind), _e(by)))
    if flow.changed in minutes:
        x = MARGIN + minutes.index(flow.changed) * step
        shapes.append('<line class="flow-changed" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#b00020" '
                      'stroke-dasharray="2 2"><title>the flow changed at %s (AWS\'s account)</title></line>'
                      '<text x="%.1f" y="%d" font-size="11" fill="#b00020">since %s</text>' % (
                          x, MARGIN, x, CHART_HEIGHT - MARGIN, _e(flow.changed), x + 3, MARGIN + 12,
                          _e(flow.changed[11:])))
    legend = "".join('<text x="%d" y="14" fill="%s" font-size="12">%s</text>' % (
        MARGIN + 80 * i, FLOW_COLOURS.get(kind, "#555"), _e(kind)) for i, kind in enumerate(totals))
    axis = ('<text x="%d" y="%d" font-size="11" fill="#555">%s</text><text x="%d" y="%d" font-size="11" fill="#555" '
            'text-anchor="end">%s</text><text x="4" y="%d" font-size="11" fill="#555">%d/min</text>' % (
                MARGIN, CHART_HEIGHT - 8, _e(minutes[0][11:]), CHART_WIDTH - MARGIN, CHART_HEIGHT - 8,
                _e(minutes[-1][11:]), MARGIN + 4, top))
    dead = "" if flow.dead_letter_depth is None else \
        '<text x="%d" y="14" font-size="12" fill="#8250df" text-anchor="end">dead letters: %d</text>' % (
            CHART_WIDTH - MARGIN, flow.dead_letter_depth)
    return ('<figure><figcaption>queue <code>%s</code>: job lines per minute, %s to %s (UTC)</figcaption>'
            '<svg xmlns="http://www.w3.org/2000/svg" class="job-flow" width="%d" height="%d" viewBox="0 0 %d %d" '
            'role="img"><rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#d0d0d5"/>%s%s%s%s</svg>'
            "</figure>" % (_e(flow.key), _e(minutes[0]), _e(minutes[-1]), CHART_WIDTH, CHART_HEIGHT, CHART_WIDTH,
                           CHART_HEIGHT, MARGIN, MARGIN, CHART_WIDTH - 2 * MARGIN, CHART_HEIGHT - 2 * MARGIN,
                           "".join(shapes), legend, axis, dead))


def _host_detail(host, since=None):
    report, probe = host.report, host.report.probe
    parts = ["<details%s><summary>%s: %s</summary>" % ("" if host.verdict == "ok" else " open",
                                                        _e(report.name), _e(host.verdict)),
             "<p>address <span class=mono>%s</span>, transport %s %s, %.1fs</p>" % (
                 _e(report.address), _e(report.transport_kind), _e(report.transport_detail or ""), report.seconds or 0)]
    if probe is not None:
        parts.append("<p>environment: %s%s; python %s, boto3 %s, botocore %s</p>" % (
            _e(probe.env_source), " (%s)" % _e(probe.failure) if probe.failure else "",
            _e(probe.python), _e(probe.boto3), _e(probe.botocore)))
        parts.append(_table(["who", "region", "source"],
                            [[who, probe.region(who) or "unset",
                              probe.regions[who].source if who in probe.regions else "-"]
                             for who in ("app", "boto3", "cli")]))
        credentials = probe.credentials
        parts.append("<p>credentials: key id <span class=mono>%s</span> from %s, secret fingerprint "
                     "<span class=mono>%s</span>; account %s</p>" % (
                         _e(credentials.key_id or "-"), _e(credentials.source or "-"),
                         _e(credentials.secret_fp or "-"), _e(probe.account or probe.identity_error or "-")))
        if probe.queues:
            parts.append(_table(["queue", "name", "region", "url or error", "visible", "in flight"],
                                [[q.key, q.name, q.region, q.url or q.error_code,
                                  q.attributes.get("ApproximateNumberOfMessages", "-"),
                                  q.attributes.get("ApproximateNumberOfMessagesNotVisible", "-")]
                                 for q in probe.queues]))
    for container in report.containers:
        if not container.logs.read:
            parts.append("<p>%s: logs not read (%s)</p>" % (_e(container.name), _e(container.logs.missing)))
        elif container.logs.markers:
            parts.append(_table(["%s: log marker" % container.name, "kind", "count", "last"],
                                [[m.name, m.kind, m.count, m.last or "-"]
                                 for m in sorted(container.logs.markers, key=lambda m: m.name)]))
    parts.append(_findings(host.findings))
    if since is not None:
        parts.append('<p class="since">%s</p>' % _e(since.line()))
    parts.append("</details>")
    return "\n".join(parts)


def render_html(result: "AuditResult", matrix: bool = True) -> str:
    errors = sum(f.severity == "error" for f in result.findings)
    body = ["<h1>Fleet audit</h1>",
            '<p class="summary">%s &middot; inventory <code>%s</code> &middot; %d host(s), %d finding(s), '
            "%d error(s) &middot; exit code %d &middot; %.1fs</p>" % (
                _e(result.started), _e(result.inventory), len(result.hosts), len(result.findings), errors,
                result.exit_code, result.seconds),
            "<h2>Hosts</h2>", _hosts(result)]
    if matrix and result.matrix:
        body += ['<h2 id="matrix">Comparison</h2>', _matrix(result)]
    if result.cross_check is not None:
        body += ["<h2>Where the queues are</h2>", "<p>%s</p>" % _e(cross_check_summary(result.cross_check)),
                 _table(CROSS_CHECK_HEADERS, cross_check_rows(result.cross_check))]
        if result.cross_check.accounts:
            body += ["<h3>AWS's account of each queue</h3>", _table(ACCOUNT_HEADERS, account_rows(result.cross_check))]
    if result.job_flow:
        body += ["<h2>Job flow</h2>"] + [_flow_svg(flow) for flow in result.job_flow]
    body += ["<h2>Findings</h2>", _findings(result.findings),
             "<h2>Per host</h2>"] + [_host_detail(h, result.since_ok.get(h.report.name)) for h in result.hosts]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Fleet audit %s</title>" % _e(result.started),
        "<style>%s</style></head><body>" % STYLE,
    ] + body + ["</body></html>", ""])


def render_history_html(title: str, headers: List[str], rows: Sequence[Sequence[object]]) -> str:
    """`fleet-audit history -f html`: the history's lines (or an incident's timeline) as a page of
    its own, every value escaped as the report's are."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        "<title>%s</title>" % _e(title),
        "<style>%s</style></head><body>" % STYLE,
        "<h1>%s</h1>" % _e(title),
        _table(headers, [[str(cell) for cell in row] for row in rows], "timeline") if rows else "<p>nothing recorded</p>",
        "</body></html>", ""])
