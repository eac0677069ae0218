"""Fault matrix, hostile bytes on every output path: host names, values and arguments carrying
ESC/OSC/C1 controls and bidi overrides reach no terminal raw, whatever the task (audit,
check-host, preflight, diff, hosts, explain) and whichever path it ends on (a report, a
"choose from" error, an inventory error, a drift or diff line)."""
import json
import re

import pytest
import yaml

from faultkit import free_port

EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil"
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_clean(done):
    for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        found = RAW_CONTROL.search(text)
        assert not found, "%s carries %r: %r" % (stream, found.group(0), text[max(0, found.start() - 80):][:200])


@pytest.fixture
def hostile(tmp_path):
    """An inventory whose host and group names carry controls, on closed loopback ports."""
    known = tmp_path / "known_hosts"
    known.touch()
    hosts = {"api-1" + EVIL: {"ansible_host": "127.0.0.1", "ansible_port": free_port()},
             "video-1": {"ansible_host": "127.0.0.1", "ansible_port": free_port(),
                         "auditor": {"roles": ["video-worker"]}}}
    document = {"all": {"vars": {"ansible_user": "nobody", "auditor": {"known_hosts": str(known), "roles": ["api"],
                                                                       "timeouts": {"connect": 1}}},
                        "children": {"web" + EVIL: {"hosts": hosts}}}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


@pytest.mark.parametrize("args", [
    ["hosts"],
    ["audit"],
    ["audit", "--format", "markdown"],
    ["audit", "--format", "json"],
    ["audit", "--matrix-only"],
    ["audit", "--hosts", "nope" + EVIL],            # "choose from" lists the hostile names
    ["audit", "--roles", "nope" + EVIL],
    ["audit", "--format", EVIL],
    ["audit", "--parallel", EVIL],
    ["check-host", "api-1" + EVIL],
    ["check-host", "nope" + EVIL],
    ["explain", EVIL],
    ["preflight", "--baseline", "/nonexistent" + EVIL],
])
def test_every_task_and_error_path_shows_hostile_bytes_escaped(fab, hostile, args):
    done = fab(*args, "-i", str(hostile)) if args[0] != "explain" else fab(*args)
    assert done.returncode in (0, 1, 2), done.stderr
    assert_clean(done)


def test_inventory_errors_show_hostile_keys_escaped(fab, tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"vars": {"auditor": {"bogus" + EVIL: 1}},
                                            "hosts": {"h" + EVIL: {"ansible_host": "127.0.0.1"}}}},
                                   allow_unicode=True))
    done = fab("audit", "-i", str(path))
    assert done.returncode == 2 and "bogus" in done.stderr
    assert_clean(done)


def test_a_preflight_baseline_with_hostile_roles_is_refused_escaped(fab, hostile, tmp_path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(yaml.safe_dump({"app region": {"api" + EVIL: "x" + EVIL}}, allow_unicode=True))
    done = fab("preflight", "--baseline", str(baseline), "-i", str(hostile))
    assert done.returncode == 2 and "unknown role" in done.stderr
    assert_clean(done)


def test_diff_of_hostile_snapshots_is_escaped(fab, tmp_path):
    def snapshot(value, verdict):
        return {"schema": "fleet-audit/2", "hosts": [{"name": "h" + EVIL, "verdict": verdict}],
                "matrix": [{"attribute": "app region", "cells": {"h" + EVIL: value}}],
                "findings": [{"code": "c" + EVIL, "hosts": ["h" + EVIL], "severity": "error"}]}
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(snapshot("a" + EVIL, "ok")))
    new.write_text(json.dumps(dict(snapshot("b" + EVIL, "config" + EVIL), findings=[])))
    done = fab("diff", str(old), str(new))
    assert done.returncode == 1 and "verdict ok" in done.stdout
    assert_clean(done)
