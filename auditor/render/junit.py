"""JUnit XML: one test case per host and check, so CI systems show the audit
natively. A check fails when it has an error-level finding; warnings are
reported as system-out of a passing case. Fleet-wide findings are each named
host's "fleet comparison" case; those naming no audited host (the controller's
cross-check) form a `fleet` suite of their own."""
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from ..codes import Severity
from .sanitize import xml
from .steps import STEPS

if TYPE_CHECKING:
    from ..audit import AuditResult

FLEET_CHECK = "Step 4 - fleet comparison"


def _case(suite, classname, name, found):
    """One test case; returns 1 when it failed."""
    case = ElementTree.SubElement(suite, "testcase", classname=xml(classname), name=name)
    errors = [f for f in found if f.severity == Severity.ERROR]
    if errors:
        failure = ElementTree.SubElement(case, "failure", message="; ".join(f.code for f in errors),
                                         type=errors[0].code)
        failure.text = xml("\n".join("%s: %s\nfix: %s" % (f.code, f.message, f.remedy) for f in errors))
    others = [f for f in found if f.severity != Severity.ERROR]
    if others:
        ElementTree.SubElement(case, "system-out").text = xml("\n".join(
            "%s %s: %s" % (f.severity, f.code, f.message) for f in others))
    return int(bool(errors))


def render_junit(result: "AuditResult") -> str:
    suites = ElementTree.Element("testsuites", name="fleet-audit")
    fleet = [f for f in result.findings if f.step == 4]
    names = {h.report.name for h in result.hosts}
    for host in result.hosts:
        name = host.report.name
        checks = [(STEPS[0], [f for f in host.findings if f.step == 0])]
        if host.report.reachable:
            checks = [(STEPS[step], [f for f in host.findings if f.step == step]) for step in (1, 2, 3)]
            checks.append((FLEET_CHECK, [f for f in fleet if name in f.hosts]))
        suite = ElementTree.SubElement(suites, "testsuite", name=xml(name), tests=str(len(checks)))
        failures = sum(_case(suite, "fleet-audit.%s" % name, check, found) for check, found in checks)
        suite.set("failures", str(failures))
        if name in result.since_ok:
            ElementTree.SubElement(suite, "system-out").text = xml(result.since_ok[name].line())
    orphans = [f for f in fleet if not names & set(f.hosts)]
    if orphans:
        suite = ElementTree.SubElement(suites, "testsuite", name="fleet", tests="1")
        suite.set("failures", str(_case(suite, "fleet-audit.fleet", "fleet-wide findings", orphans)))
    return ElementTree.tostring(suites, encoding="unicode")
