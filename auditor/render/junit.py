"""JUnit XML: one test case per host and check, so CI systems show the audit
natively. A check fails when it has an error-level finding; warnings are
reported as system-out of a passing case."""
from xml.etree import ElementTree

from ..diagnosis import ERROR
from .steps import STEPS


def render_junit(result):
    suites = ElementTree.Element("testsuites", name="fleet-audit")
    for host in result.hosts:
        steps = [0] if not host.report.reachable else [1, 2, 3]
        suite = ElementTree.SubElement(suites, "testsuite", name=host.report.name, tests=str(len(steps)))
        failures = 0
        for step in steps:
            case = ElementTree.SubElement(suite, "testcase", classname="fleet-audit.%s" % host.report.name,
                                          name=STEPS[step])
            found = [f for f in host.findings if f.step == step]
            errors = [f for f in found if f.severity == ERROR]
            if errors:
                failures += 1
                failure = ElementTree.SubElement(case, "failure", message="; ".join(f.code for f in errors),
                                                 type=errors[0].code)
                failure.text = "\n".join("%s: %s\nfix: %s" % (f.code, f.message, f.remedy) for f in errors)
            others = [f for f in found if f.severity != ERROR]
            if others:
                ElementTree.SubElement(case, "system-out").text = "\n".join(
                    "%s %s: %s" % (f.severity, f.code, f.message) for f in others)
        suite.set("failures", str(failures))
    fleet = [f for f in result.findings if f.step == 4]
    suite = ElementTree.SubElement(suites, "testsuite", name="fleet", tests="1",
                                   failures=str(int(any(f.severity == ERROR for f in fleet))))
    case = ElementTree.SubElement(suite, "testcase", classname="fleet-audit.fleet", name="cross-host comparison")
    errors = [f for f in fleet if f.severity == ERROR]
    if errors:
        ElementTree.SubElement(case, "failure", message="; ".join(f.code for f in errors)).text = "\n".join(
            "%s: %s\nfix: %s" % (f.code, f.message, f.remedy) for f in errors)
    return ElementTree.tostring(suites, encoding="unicode")
