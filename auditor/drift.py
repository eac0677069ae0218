"""Pre-release checks: a baseline of expected values, and the diff of two saved
audits (snapshots are `fab audit --format json --output FILE`). Pure functions
over the result or its JSON form."""
import difflib
import json

import yaml

from . import files
from .codes import program_name
from .crosshost import ATTRIBUTES, is_attribute
from .errors import UsageError
from .yamldoc import yaml_error
from .render.json_report import SCHEMA


def load_baseline(path):
    """attribute -> expected value (or role -> value); attribute names as in the matrix."""
    try:
        text = files.read_text(path)
        data = yaml.safe_load(text)
    except (files.Unreadable, UnicodeDecodeError) as error:
        raise UsageError("%s: cannot read the baseline: %s\n  fix: pass a YAML file of `attribute: value` lines"
                         % (path, error))
    except yaml.YAMLError as error:
        raise UsageError("%s: the baseline is not valid YAML: %s\n  fix: correct the YAML syntax at that line"
                         % yaml_error(error, text, path))
    if not isinstance(data, dict):
        raise UsageError("%s: the baseline must be a mapping of attribute: value\n  fix: e.g. `app region: "
                         "ap-northeast-2`" % path)
    unknown = [str(k) for k in data if not is_attribute(str(k))]
    if unknown:
        hints = ["%r (did you mean %r?)" % (k, close[0]) if close else repr(k)
                 for k in unknown for close in [difflib.get_close_matches(k, ATTRIBUTES, n=1)]]
        raise UsageError("%s: unknown attribute(s) %s\n  fix: use the matrix's names: %s, queue KEY name, "
                         "queue KEY url" % (path, ", ".join(hints), ", ".join(ATTRIBUTES)))
    for attribute, value in data.items():
        for role, expected in (value.items() if isinstance(value, dict) else [(None, value)]):
            if not isinstance(expected, (str, int, float)):
                raise UsageError("%s: %s%s must be one value, not %s\n  fix: write `%s: VALUE` or `%s: {ROLE: "
                                 "VALUE}`" % (path, attribute, " for role %s" % role if role else "",
                                              "a list" if isinstance(expected, list) else
                                              "a mapping" if isinstance(expected, dict) else "empty",
                                              attribute, attribute))
    return {str(k): ({str(role): str(v) for role, v in v.items()} if isinstance(v, dict) else str(v))
            for k, v in data.items()}


def check_roles(baseline, roles, path):
    """Every role a baseline names exists in the inventory: a typo would make its values never
    compared, and the gate pass."""
    unknown = sorted({str(role) for value in baseline.values() if isinstance(value, dict) for role in value
                      if role not in roles})
    if unknown:
        hints = ["%r (did you mean %r?)" % (r, close[0]) if close else repr(r)
                 for r in unknown for close in [difflib.get_close_matches(r, sorted(roles), n=1)]]
        raise UsageError("%s: unknown role(s) %s\n  fix: use the inventory's roles: %s" % (
            path, ", ".join(hints), ", ".join(sorted(roles)) or "(none)"))


def drift(result, baseline):
    """(host, attribute, seen, expected) for every cell that differs from the baseline."""
    return [(host, row.attribute, row.cells.get(host), row.expected.get(host))
            for row in result.matrix if row.attribute in baseline for host in row.deviating]


def load_snapshot(path):
    try:
        document = json.loads(files.read_text(path))
    except (files.Unreadable, ValueError) as error:
        raise UsageError("%s: not a saved audit: %s\n  fix: save one with `%s audit --format json --output FILE`"
                         % (path, error, program_name()))
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema not in ("fleet-audit/1", SCHEMA):     # /1 snapshots: same hosts, matrix, findings
        raise UsageError("%s: not a saved audit (schema %r, expected %s)\n  fix: save one with `%s audit --format "
                         "json --output FILE`" % (path, schema, SCHEMA, program_name()))
    if not all(isinstance(document.get(key), list) for key in ("hosts", "findings", "matrix")):
        raise UsageError("%s: a saved audit without hosts, findings and matrix lists" % path)
    return document


def diff_snapshots(old, new):
    """Lines saying what changed between two saved audits."""
    lines = []
    old_hosts = {h["name"]: h for h in old["hosts"]}
    new_hosts = {h["name"]: h for h in new["hosts"]}
    lines += ["host added: %s" % n for n in sorted(set(new_hosts) - set(old_hosts))]
    lines += ["host gone: %s" % n for n in sorted(set(old_hosts) - set(new_hosts))]
    for name in sorted(set(old_hosts) & set(new_hosts)):
        if old_hosts[name]["verdict"] != new_hosts[name]["verdict"]:
            lines.append("%s: verdict %s -> %s" % (name, old_hosts[name]["verdict"], new_hosts[name]["verdict"]))
    old_rows = {r["attribute"]: r["cells"] for r in old.get("matrix", [])}
    for row in new.get("matrix", []):
        before = old_rows.get(row["attribute"], {})
        for host, value in sorted(row["cells"].items()):
            if host in before and before[host] != value:
                lines.append("%s: %s %s -> %s" % (host, row["attribute"], before[host], value))

    def keyed(document):
        return {(f["code"], tuple(f["hosts"])): f for f in document["findings"]}

    old_findings, new_findings = keyed(old), keyed(new)
    lines += ["new finding: %s %s on %s" % (new_findings[k]["severity"], k[0], ", ".join(k[1]))
              for k in sorted(set(new_findings) - set(old_findings))]
    lines += ["resolved: %s on %s" % (k[0], ", ".join(k[1])) for k in sorted(set(old_findings) - set(new_findings))]
    return lines


def preflight_failure(result, drifted, strict):
    """Why a pre-release audit fails (None: it passes): drift from the baseline, an error-level
    finding, or with `strict` a warning."""
    errors = sum(f.severity == "error" for f in result.findings)
    warnings = sum(f.severity == "warning" for f in result.findings)
    if not (drifted or errors or result.exit_code or (strict and warnings)):
        return None
    return "preflight failed: %d drifted value(s), %d error finding(s)%s" % (
        len(drifted), errors, ", %d warning(s) (--strict)" % warnings if strict else "")
