"""The HTML report, opened in headless Chromium with no network at all
(`unshare --net`): it renders, and the cells it paints are the deviating ones."""
import re
import shutil
import subprocess
from html.parser import HTMLParser

from auditor.render import render

CHROMIUM = ["unshare", "--net", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--dump-dom"]
# appended to a copy of the report: records each matrix cell's painted background
PAINT_PROBE = """<script>
for (const td of document.querySelectorAll("#comparison td"))
  td.setAttribute("data-bg", getComputedStyle(td).backgroundColor);
</script>"""
TRANSPARENT = "rgba(0, 0, 0, 0)"


class MatrixCells(HTMLParser):
    """From Chromium's dumped DOM: (attribute, host) -> painted background of the
    comparison table's cells, and every src/href in the page."""

    def __init__(self):
        super().__init__()
        self.hosts, self.cells, self.links = [], {}, []
        self._inside = False
        self._row = self._text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[a] for a in ("src", "href") if a in attrs]
        if tag == "table":
            self._inside = attrs.get("id") == "comparison"
        elif self._inside and tag == "tr":
            self._row = []
        elif self._inside and tag in ("th", "td"):
            self._text = ""
            self._row.append([attrs.get("data-bg"), ""])

    def handle_data(self, data):
        if self._inside and self._row:
            self._row[-1][1] += data

    def handle_endtag(self, tag):
        if tag == "table":
            self._inside = False
        elif self._inside and tag == "tr":
            texts = [text.strip() for _, text in self._row]
            if not self.hosts:
                self.hosts = texts[1:]
            else:
                for host, (bg, _) in zip(self.hosts, self._row[1:]):
                    self.cells[(texts[0], host)] = bg


def open_in_chromium(path):
    done = subprocess.run(CHROMIUM + ["file://%s" % path], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_html_report_renders_offline_and_paints_exactly_the_deviating_cells(fleet, tmp_path):
    assert shutil.which("chromium"), "Debian's chromium is needed (make setup installs it)"
    fleet.use("worker-wrong-region")
    result = fleet.audit_until(lambda r: any(f.code == "region-mismatch" for f in r.findings) and any(
        flow.key == "ai-basic" and flow.counts.get("completed") for flow in r.job_flow))   # jobs have flowed
    report = render(result, "html")
    page = tmp_path / "audit.html"
    page.write_text(report)

    dom = open_in_chromium(page)
    assert "<h2 id=\"matrix\">Comparison</h2>" in dom and "region-mismatch" in dom
    # the job flow of the window, drawn inline by the browser itself: the API's sends and the AI worker's
    # receipts and completions, per minute, from the real agent's counts
    ai_chart = dom.split("queue <code>ai-basic</code>: job lines per minute")[1].split("</figure>")[0]
    assert 'class="job-flow"' in ai_chart and {"flow-sent", "flow-received", "flow-completed"} <= set(
        re.findall(r'class="(flow-\w+)"', ai_chart))
    plain = MatrixCells()
    plain.feed(dom)
    assert plain.links == [], "the report must not reference anything outside itself"

    probe = tmp_path / "painted.html"
    probe.write_text(report.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'")
                     .replace("</body>", PAINT_PROBE + "</body>"))
    painted = MatrixCells()
    painted.feed(open_in_chromium(probe))
    expected = {(row.attribute, host) for row in result.matrix for host in row.deviating}
    assert expected == {("app region", "video-1"), ("aws-cli region", "video-1")}
    highlighted = {cell for cell, bg in painted.cells.items() if bg and bg != TRANSPARENT}
    assert highlighted == expected
    assert len(painted.cells) == len(result.matrix) * len(result.hosts)
