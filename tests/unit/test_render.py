"""Renderers on a hand-made audit result (pure): HTML escapes what hosts send
and marks exactly the deviating cells; JUnit has one case per host and check."""
import dataclasses
import re
from xml.etree import ElementTree

from auditor.transports.ssh import SshTarget
from auditor.audit import AuditResult
from auditor.crosshost import build_matrix, cross_host_findings
from auditor.inventory import host_settings

DEFAULT_SETTINGS = host_settings({})     # the reference profile, resolved
from auditor.render import render

from test_crosshost import host


def result_of(hosts):
    findings = cross_host_findings(hosts, lambda h: DEFAULT_SETTINGS)
    return AuditResult(hosts=hosts, findings=findings, matrix=build_matrix(hosts), started="2026-11-26T00:00:00Z",
                       seconds=1.0, inventory="inventory.yaml")


def test_html_escapes_host_data_and_marks_the_odd_cell():
    hosts = [host("api-1", "api"), host("video-1", "video-worker"),
             host("<script>alert(1)</script>", "video-worker", account="222222222222")]
    page = render(result_of(hosts), "html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in page
    assert page.count('class="deviates"') == 1
    assert '<span class="mark" title="expected: 111111111111">!</span>222222222222' in page


def test_junit_has_a_case_per_host_and_check_and_fails_the_named_host():
    hosts = [host("api-1", "api"), host("video-1", "video-worker", region="us-east-1")]
    suites = ElementTree.fromstring(render(result_of(hosts), "junit"))
    cases = [(c.get("classname"), c.get("name"), c.find("failure") is not None) for c in suites.iter("testcase")]
    assert len(cases) == 8
    assert [c[:2] for c in cases if c[2]] == [("fleet-audit.video-1", "Step 4 - fleet comparison")]


def test_identical_findings_on_many_hosts_are_one_row_and_every_host_is_in_the_recap():
    from auditor.audit import assess
    from auditor.collect import HostRun
    from auditor.inventory import HostSpec
    SETTINGS = DEFAULT_SETTINGS
    from auditor.render.table import render_table
    from auditor.transports import RunOutcome
    runs = [HostRun(HostSpec("h%03d" % n, SshTarget("10.0.0.%d" % n), settings=dataclasses.replace(SETTINGS, roles=("api",))),
                    RunOutcome("h%03d" % n, "unreachable", detail="connection refused")) for n in range(40)]
    text = render_table(assess(runs), matrix=False)
    rows = [line for line in text.splitlines() if line.startswith("error")]
    assert len(rows) == 1 and "h000,h001,h002 and 37 more" in rows[0] and "(40 hosts) <host>: connection" in rows[0]
    recap = text.split("recap:")[1]
    assert all("h%03d  unreachable" % n in recap for n in range(40)) and "40 host(s): 40 unreachable" in recap


def test_the_table_report_fits_the_terminal_and_never_cuts_a_value(monkeypatch):
    import json as json_module
    from pathlib import Path

    from auditor import audit
    from sandbox import golden
    document = json_module.loads((Path(__file__).resolve().parents[1] / "golden" / "worker-wrong-region.json").read_text())
    result = audit.assess(golden.runs_of(document))
    url = next(q.url for h in result.hosts if h.report.probe for q in h.report.probe.queues if q.url)
    monkeypatch.setenv("COLUMNS", "80")
    narrow = render(result, "table")
    assert "comparison matrix, per attribute" in narrow and "what: " in narrow and "fix: " in narrow
    assert [line for line in narrow.splitlines() if len(line) > 80 and url not in line] == []
    assert url in narrow            # a value longer than the screen overruns: it is never cut
    monkeypatch.setenv("COLUMNS", "300")
    wide = render(result, "table")
    assert "per attribute" not in wide and "severity    code" in wide


def test_the_html_report_draws_each_queues_job_flow_as_inline_svg():
    import json as json_module
    from pathlib import Path

    from auditor import audit
    from sandbox import golden
    document = json_module.loads((Path(__file__).resolve().parents[1] / "golden" / "healthy.json").read_text())
    minutes = {"2026-11-26T23:52": 3, "2026-11-26T23:53": 2, "2026-11-26T23:54": 2}
    patches = [{"host": "api-1", "path": "facts.inspected.0.logs.markers.video-enqueued.minutes", "value": minutes},
               {"host": "video-1", "path": "facts.inspected.0.logs.markers.received.minutes", "value": minutes},
               {"host": "video-1", "path": "facts.inspected.0.logs.markers.completed.minutes",
                "value": dict(minutes, **{"2026-11-26T23:54": 1})}]
    result = audit.assess(golden.runs_of(golden.apply_patches(document, patches)))
    video = next(flow for flow in result.job_flow if flow.key == "video")
    assert video.counts["sent"]["api-1"] == minutes and video.minutes == sorted(minutes)
    html = render(result, "html")
    chart = html.split("queue <code>video</code>: job lines per minute")[1].split("</figure>")[0]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="job-flow"' in chart
    assert {"flow-sent", "flow-received", "flow-completed"} <= set(re.findall(r'class="(flow-\w+)"', chart))
    assert "api-1 7" in chart and "<script" not in html.lower()        # per-host totals in the titles; no script
