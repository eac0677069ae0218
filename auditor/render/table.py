"""Terminal report: one row per host, then the findings, with tabulate, fitted to the terminal's
width (COLUMNS): text wraps at word boundaries, never inside a value; a matrix wider than the
screen is shown per attribute, and findings put their fix under them."""
import os
import re
import shutil
import sys
import textwrap
from collections import Counter
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from tabulate import tabulate

from ..codes import VERDICT_PRECEDENCE
from ..codes import Finding
from ..facts import HostReport, MarkerKind, ProbeReading
from .sanitize import terminal

if TYPE_CHECKING:
    from ..audit import AuditResult
    from ..controller import QueueLocations
    from ..inventory import HostSpec

COLOURS = {"error": "31", "warning": "33", "info": "36", "ok": "32", "config": "31", "worker-down": "31",
           "code-suspect": "35", "unreachable": "31"}


def paint(text: str, key: str, colour: bool) -> str:
    code = COLOURS.get(key)
    return "\033[%sm%s\033[0m" % (code, text) if colour and code else str(text)


def queue_cell(probe: Optional[ProbeReading]) -> str:
    if probe is None:
        return "?"
    if probe.failure:
        return "probe: %s" % probe.failure
    return "\n".join("%s: %s" % (q.key, "OK" if q.ok else q.error_code) for q in probe.queues) or "-"


def container_cell(report: HostReport) -> str:
    if not report.reachable:
        return "?"
    if report.docker.missing is not None:
        return "docker: %s" % report.docker.missing.reason
    cells = []
    for c in report.containers:
        state = "unknown" if c.present is None else "missing" if not c.present else c.status or "?"
        if c.restart_count:
            state += " (restarts %d)" % c.restart_count
        if c.present and not c.logs.read:
            state += " (logs unread)"
        cells.append("%s: %s" % (c.name, state))
    return "\n".join(cells) or "-"


def last_activity(report: HostReport) -> str:
    stamps = [stamp for c in report.containers
              for stamp in [c.logs.last(MarkerKind.RECEIVED, MarkerKind.COMPLETED, MarkerKind.ENQUEUED)] if stamp]
    return max(stamps)[:19].replace("T", " ") if stamps else "-"


def host_rows(result: "AuditResult", colour: bool) -> List[List[str]]:
    rows = []
    for host in result.hosts:
        report, probe = host.report, host.report.probe
        rows.append([
            terminal(report.name), terminal(",".join(report.roles) or "-"),
            "yes" if report.reachable else paint("no: " + report.transport_kind, "error", colour),
            terminal(probe.region("app")) if probe and probe.has_values else "?",
            terminal(probe.credentials.key_id or "-") if probe and probe.has_values else "?",
            terminal(probe.account or probe.identity_error or "-") if probe and probe.ran else "?",
            terminal(queue_cell(probe)), terminal(container_cell(report)), terminal(last_activity(report)),
            paint(host.verdict, host.verdict, colour),
        ])
    return rows


SHOWN_HOSTS = 3         # a grouped finding lists this many hosts, then counts the rest


def grouped_findings(findings: Sequence[Finding]) -> List[Tuple[Finding, List[str]]]:
    """[(finding, hosts)]: findings that say the same thing of different hosts (their own name
    aside) as one, in order of first appearance; 700 unreachable hosts are one row."""
    groups: Dict[tuple, Tuple[Finding, List[str]]] = {}
    for finding in findings:
        names = finding.hosts
        key = (finding.severity, finding.code, _without(finding.message, names), _without(finding.remedy, names))
        groups.setdefault(key, (finding, []))[1].extend(names)
    return list(groups.values())


def _without(text, names):
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "<host>")
    return text


def finding_rows(result: "AuditResult", colour: bool) -> List[List[str]]:
    rows = []
    for finding, hosts in grouped_findings(result.findings):
        if len(hosts) == len(finding.hosts):
            shown, message, remedy = ",".join(hosts), finding.message, finding.remedy
        else:
            shown = ",".join(hosts[:SHOWN_HOSTS]) + (" and %d more" % (len(hosts) - SHOWN_HOSTS)
                                                    if len(hosts) > SHOWN_HOSTS else "")
            message = "(%d hosts) %s" % (len(hosts), _without(finding.message, finding.hosts))
            remedy = _without(finding.remedy, finding.hosts)
        rows.append([paint(finding.severity, finding.severity, colour), finding.code, terminal(shown),
                     terminal(message), terminal(remedy)])
    return rows


def findings_block(result: "AuditResult", colour: bool, width: int) -> str:
    """The findings as a table when it fits the screen, else each finding with its what and fix
    wrapped under it."""
    rows = finding_rows(result, colour)
    text_width = max(20, (width - 40) // 2)
    table = tabulate([row[:3] + [wrap(row[3], text_width), wrap(row[4], text_width)] for row in rows],
                     headers=["severity", "code", "host", "what", "fix"], tablefmt="simple")
    if visible_width(table) <= width:
        return table
    blocks = []
    for severity, code, host, what, fix in rows:
        blocks.append("%s  %s  %s\n%s\n%s" % (severity, code, host, wrap("what: " + what, width, "  ", " " * 8),
                                              wrap("fix:  " + fix, width, "  ", " " * 8)))
    return "\n\n".join(blocks)


def recap(result: "AuditResult", colour: bool) -> str:
    """One line per host, the worst verdicts first (like Ansible's PLAY RECAP), then the totals."""
    rank = {verdict: index for index, verdict in enumerate(VERDICT_PRECEDENCE)}
    hosts = sorted(result.hosts, key=lambda h: (rank.get(h.verdict, len(rank)), h.report.name))
    width = max((len(terminal(h.report.name)) for h in hosts), default=0)
    lines = ["recap:"]
    for h in hosts:
        lines.append("  %s  %s%s" % (terminal(h.report.name).ljust(width), paint(h.verdict, h.verdict, colour),
                                     " (%s)" % ", ".join(h.verdict_because) if h.verdict_because else ""))
        if h.report.name in result.since_ok:        # what changed since it last worked (the history's)
            lines.append("  %s  %s" % (" " * width, terminal(result.since_ok[h.report.name].line())))
    counts = Counter(str(h.verdict) for h in result.hosts)
    lines.append("  %d host(s): %s" % (len(hosts), ", ".join("%d %s" % (counts[str(v)], v)
                                                            for v in VERDICT_PRECEDENCE if counts[str(v)])))
    return "\n".join(lines)


def screen_width() -> int:
    """The terminal's columns (COLUMNS wins, as for `ls`); no limit when writing to a file or a pipe
    with no COLUMNS, so that what a script reads keeps one shape."""
    if not os.environ.get("COLUMNS", "").strip().isdigit() and not sys.stdout.isatty():
        return 10 ** 6
    return max(40, shutil.get_terminal_size(fallback=(10 ** 6, 24)).columns)


def visible_width(text: str) -> int:
    """The widest line of a rendered block, colour codes not counted."""
    return max((len(re.sub(r"\033\[[0-9;]*m", "", line)) for line in text.splitlines()), default=0)


def wrap(text: str, width: int, indent: str = "", hanging: Optional[str] = None) -> str:
    """Wrapped at word boundaries: a value (a URL, an ARN) is never cut, it may overrun instead."""
    return "\n".join(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=hanging or indent,
                                    break_long_words=False, break_on_hyphens=False)) or indent.rstrip()


def matrix_by_attribute(result: "AuditResult", colour: bool, width: int) -> str:
    """The matrix for a narrow screen: one block per attribute, each value with the hosts that have
    it; deviating hosts marked (`!`, red on a terminal)."""
    lines = []
    for row in result.matrix:
        by_value: Dict[str, List[str]] = {}
        for name in (h.report.name for h in result.hosts):
            value = row.cells.get(name)
            by_value.setdefault("?" if value is None else terminal(value), []).append(name)
        lines.append(row.attribute + ":")
        for value, names in by_value.items():
            odd = [n for n in names if n in row.deviating]
            marker = paint("!", "error", colour) if odd else " "
            lines.append(wrap("%s %s  <- %s" % (marker, value, ", ".join(terminal(n) for n in names)), width, "  "))
    return "\n".join(lines)


def matrix_table(result: "AuditResult", colour: bool = False, width: Optional[int] = None) -> str:
    """Attributes by hosts; a deviating cell is red on a terminal, else marked `!`. Wider than the
    screen, it is shown per attribute instead, and says how to see it whole."""
    width = width or screen_width()
    whole = _matrix_grid(result, colour)
    if visible_width(whole) <= width:
        return whole
    header = "comparison matrix, per attribute (%d columns wide as a table; see it whole with a wider COLUMNS, " \
             "-f markdown or --matrix-only -f json):" % visible_width(whole)
    return wrap(header, width) + "\n" + matrix_by_attribute(result, colour, width)


def _matrix_grid(result, colour):
    names = [h.report.name for h in result.hosts]
    rows = []
    for row in result.matrix:
        cells = []
        for name in names:
            value = row.cells.get(name)
            text = "?" if value is None else terminal(value)
            if name in row.deviating:
                text = paint(text + " !", "error", colour) if colour else "! " + text
            cells.append(text)
        rows.append([row.attribute] + cells)
    return tabulate(rows, headers=["attribute"] + [terminal(n) for n in names], tablefmt="simple")


def inventory_table(specs: Sequence["HostSpec"], route: Callable[["HostSpec"], str]) -> str:
    """`fab hosts`: what an audit would visit, before it does; `route(spec)` says how a host is
    reached (its transport and hops, as the transport itself resolves them)."""
    rows = []
    for spec in specs:
        row = [spec.name, spec.target.location(), spec.target.login() or "-", ",".join(spec.roles) or "-",
               ",".join(g for g in spec.groups if g != "all") or "-", spec.app.describe(), route(spec)]
        rows.append([terminal(cell) for cell in row])
    return tabulate(rows, headers=["host", "address", "user", "roles", "groups", "app environment", "reached by"],
                    tablefmt="simple", disable_numparse=True) + "\n\n%d host(s)" % len(specs)


CROSS_CHECK_HEADERS = ["queue", "region", "account", "profile", "waiting", "url"]


def cross_check_rows(check: "QueueLocations") -> List[List[str]]:
    """Where the controller found each queue name; names found nowhere say so."""
    rows = [[terminal(s.name), s.region, s.account or "?", terminal(s.profile or "default"),
             "?" if s.visible is None else str(s.visible), terminal(s.url)] for s in check.sightings]
    rows += [[name, "(nowhere)", "", "", "", ""] for name in check.names if not check.where(name)]
    return rows


ACCOUNT_HEADERS = ["queue", "region", "sent", "received", "deleted", "oldest (s, max)", "retention (s)",
                   "visibility (s)", "dead-letter queue", "AWS's account not read"]


def account_rows(check: "QueueLocations") -> List[List[str]]:
    """AWS's own account of each queue over the window; `?` where it could not be read (never 0)."""
    def shown(value):
        return "?" if value is None else "%g" % value
    return [[terminal(a.name), a.region, shown(a.total("NumberOfMessagesSent")), shown(a.total("NumberOfMessagesReceived")),
             shown(a.total("NumberOfMessagesDeleted")), shown(a.largest("ApproximateAgeOfOldestMessage")),
             terminal(a.attributes.get("MessageRetentionPeriod", "?")), terminal(a.attributes.get("VisibilityTimeout", "?")),
             terminal(a.dead_letter or "-"), terminal(a.unjudged or "")] for a in check.accounts]


def cross_check_summary(check: "QueueLocations") -> str:
    who = ", ".join("%s: %s" % (label, i.get("account") or i.get("error")) for label, i in sorted(check.identities.items()))
    text = "controller cross-check: %d region(s) searched as %s" % (len(check.regions), who)
    if check.failures:
        text += "; not searched: %s" % ", ".join(sorted({"%s (%s)" % (r, code) for _, r, code in check.failures}))
    return text


HOST_HEADERS = ["host", "role", "reachable", "app region", "key id", "account", "queues", "containers",
                "last activity", "verdict"]


def hosts_block(result: "AuditResult", colour: bool, width: int) -> str:
    """The hosts as a table when it fits the screen, else one block per host."""
    rows = host_rows(result, colour)
    table = tabulate(rows, headers=HOST_HEADERS, tablefmt="simple")
    if visible_width(table) <= width:
        return table
    blocks = []
    for row in rows:
        cells = dict(zip(HOST_HEADERS, row))
        head = "%s (%s): %s" % (cells["host"], cells["role"], cells["verdict"])
        detail = "; ".join("%s %s" % (name, " ".join(str(cells[name]).split())) for name in HOST_HEADERS[2:-1])
        blocks.append(head + "\n" + wrap(detail, width, "  "))
    return "\n".join(blocks)


def render_table(result: "AuditResult", colour: bool = False, matrix: bool = True) -> str:
    width = screen_width()
    parts = [hosts_block(result, colour, width)]
    if matrix and result.matrix:
        parts += ["", matrix_table(result, colour, width)]
    if result.cross_check is not None:
        parts += ["", cross_check_summary(result.cross_check),
                  tabulate(cross_check_rows(result.cross_check), headers=CROSS_CHECK_HEADERS, tablefmt="simple")]
        if result.cross_check.accounts:
            parts += ["", "AWS's account of each queue (CloudWatch AWS/SQS, the logs' window):",
                      tabulate(account_rows(result.cross_check), headers=ACCOUNT_HEADERS, tablefmt="simple",
                               disable_numparse=True)]
    if result.findings:
        parts += ["", findings_block(result, colour, width)]
    else:
        parts.append("\nno findings")
    parts += ["", recap(result, colour)]
    errors = sum(f.severity == "error" for f in result.findings)
    parts.append("\n%d host(s), %d finding(s), %d error(s), %.1fs" % (
        len(result.hosts), len(result.findings), errors, result.seconds))
    return "\n".join(parts)
