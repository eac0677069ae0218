"""Golden facts: the agent's raw output per host, recorded from the sandbox, to
test the whole assessment without SSH, Docker or root (pyinfra-style).

A recorded file is `{"scenario", "recorded", "hosts": [{"name", "address",
"settings", "outcome", "facts"}]}`: what `collect` returned, already redacted
by the agent (masked key ids, keyed fingerprints). A hand-made case is
`{"description", "base", "patches", "expect", "verdicts"}`: a recorded fleet
with some readings replaced, for what the sandbox cannot produce.
"""
import copy
import json
import time
from pathlib import Path

from auditor.transports.ssh import SshTarget
from auditor import audit
from auditor.codes import CODES
from auditor.collect import HostRun
from auditor.errors import SandboxError
from auditor.controller import QueueLocations, Sighting
from auditor.queue_account import QueueAccount
from auditor.render.json_report import audit_dict
from auditor.inventory import HostSpec, host_settings
from auditor.transports import RunOutcome


def dump(scenario, runs, path, cross_check=None):
    hosts = [{"name": run.spec.name, "address": run.spec.address, "settings": run.spec.settings.as_mapping(),
              "outcome": {"kind": run.outcome.kind, "exit_status": run.outcome.exit_status,
                          "detail": run.outcome.detail, "seconds": round(run.outcome.seconds, 2)},
              "facts": run.facts} for run in runs]
    document = {"scenario": scenario, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "hosts": hosts,
                "cross_check": cross_check}
    Path(path).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def runs_of(document):
    """HostRuns from a recorded document, as `collect` would have returned them."""
    runs = []
    for host in document["hosts"]:
        # recorded settings are complete; the profile fills what a newer version added since
        spec = HostSpec(name=host["name"], target=SshTarget(host["address"]), settings=host_settings(host["settings"]))
        outcome = RunOutcome(host["name"], host["outcome"]["kind"], host["outcome"]["exit_status"],
                             detail=host["outcome"]["detail"], seconds=host["outcome"]["seconds"])
        runs.append(HostRun(spec, outcome, host.get("facts")))
    return runs


def apply_patches(document, patches):
    """A copy of a recorded document with readings replaced: each patch names a host and a
    dotted path into its record (`facts.inspected.0.logs`); a value of null deletes the key."""
    document = copy.deepcopy(document)
    hosts = {host["name"]: host for host in document["hosts"]}
    for patch in patches:
        target = hosts[patch["host"]]
        *parents, last = patch["path"].split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = patch["value"]
        elif patch["value"] is None:
            target.pop(last, None)
        else:
            target[last] = patch["value"]
    return document


def cross_check_of(raw):
    """A QueueLocations from its JSON report form (`names`, `regions`, `identities`, `found`,
    `not_searched`, `accounts`)."""
    if raw is None:
        return None
    return QueueLocations(tuple(raw["names"]), tuple(raw["regions"]), raw.get("identities", {}),
                          tuple(Sighting(**s) for s in raw.get("found", [])),
                          tuple((f["profile"], f["region"], f["error"]) for f in raw.get("not_searched", [])),
                          tuple(QueueAccount(a["name"], a["region"], a["account"], a["profile"], a["attributes"],
                                             {metric: tuple(map(tuple, points)) for metric, points in
                                              a["metrics"].items()}, a["unjudged"], a["dead_letter"])
                                for a in raw.get("accounts", [])))


def expected_set(scenario):
    """{(host, code, severity)} a scenario must produce, exactly."""
    return {(host, code, str(CODES[code].severity)) for host, code in scenario.expect}


def matches(scenario, result):
    verdicts = {h.report.name: str(h.verdict) for h in result.hosts}
    return audit.finding_set(result) == expected_set(scenario) and \
        all(verdicts[name] == scenario.verdict(name) for name in verdicts)


def record(sandbox, scenario, directory, timeout=180, settle=20, say=print):
    """Bring the scenario up, let jobs flow for `settle` seconds (so the job-flow rules have
    enqueued, received and settled jobs to judge), audit until it shows exactly what it must,
    save the raw facts (and AWS's account, for a scenario audited with --cross-check)."""
    sandbox.up(scenario.name)
    time.sleep(settle)
    deadline = time.monotonic() + timeout
    while True:
        specs, runs = audit.collect_runs(sandbox.inventory, keep_raw=True)
        check = audit.run_cross_check(specs, runs) if scenario.cross_check else None
        result = audit.assess(runs, check=check)
        if matches(scenario, result):
            path = Path(directory) / ("%s.json" % scenario.name)
            dump(scenario.name, runs, path, audit_dict(result)["cross_check"])
            say("%s: recorded %s" % (scenario.name, path))
            return path
        if time.monotonic() > deadline:
            raise SandboxError("%s: after %ds the audit still shows %s, not %s" % (
                scenario.name, timeout, sorted(audit.finding_set(result)), sorted(expected_set(scenario))))
        time.sleep(3)


def handmade_table(directory):
    """The docs' table of hand-made cases (docs/sandbox.md) (`python -m sandbox.golden`): what each patches into a
    recorded fleet because the sandbox cannot produce it for real, and what it must yield."""
    lines = ["| hand-made case | what the sandbox cannot produce, patched into a recorded fleet | exactly these "
             "findings | verdicts not ok |", "|---|---|---|---|"]
    for path in sorted(Path(directory).glob("*.json")):
        case = json.loads(path.read_text())
        by_host = {}
        for host, code, _ in case["expect"]:
            by_host.setdefault(host, []).append("`%s`" % code)
        found = "; ".join("%s: %s" % (host, ", ".join(codes)) for host, codes in sorted(by_host.items())) or "none"
        verdicts = ", ".join("%s `%s`" % item for item in sorted(case.get("verdicts", {}).items())) or "-"
        lines.append("| `%s` | %s | %s | %s |" % (path.stem, case["description"].replace("|", "/"), found, verdicts))
    return "\n".join(lines)


if __name__ == "__main__":
    print(handmade_table(Path(__file__).resolve().parents[1] / "tests" / "golden" / "handmade"))
