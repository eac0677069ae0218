import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from auditor.errors import InventoryError
from auditor.inventory import load_inventory, select
from auditor.transports.ssh import ssh_arguments

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text, name="inventory.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_inventory_reads_in_ansible_and_here():
    ansible_inventory = shutil.which("ansible-inventory", path=os.path.dirname(sys.executable)) \
        or shutil.which("ansible-inventory")        # the venv's, installed by `./dev test`
    assert ansible_inventory, "ansible-core is a test dependency (pip install -e '.[test]')"
    out = subprocess.run([ansible_inventory, "-i", str(ROOT / "inventory.yaml"), "--list"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    ansible_hosts = set(json.loads(out)["_meta"]["hostvars"])
    ours = load_inventory(ROOT / "inventory.yaml")
    assert {s.name for s in ours} == ansible_hosts == {"api-1", "video-1", "ai-1"}
    ai = next(s for s in ours if s.name == "ai-1")
    assert ai.target.proxy_jump == "ec2-user@bastion.example.internal"
    assert ai.roles == ("ai-worker",)


def test_precedence_group_vars_host_vars_and_auditor_deep_merge(tmp_path):
    inv = write(tmp_path, """
        all:
          vars:
            ansible_port: 2200
            auditor: {log_window: 2h, timeouts: {connect: 3}}
          children:
            workers:
              vars: {auditor: {roles: [video-worker]}}
              children:
                video:
                  hosts:
                    v1: {ansible_host: 127.0.0.5}
        """)
    write(tmp_path, "auditor: {app_dir: /srv/app}\n", "group_vars/video.yml")
    write(tmp_path, "ansible_port: 2201\nauditor: {timeouts: {command: 9}}\n", "host_vars/v1.yaml")
    (spec,) = load_inventory(inv)
    assert spec.target.port == 2201                                  # host_vars beat group vars
    assert spec.settings.app_dir == "/srv/app"             # group_vars file of the child group
    assert spec.settings.log_window == "2h"                # from all, kept by the deep merge
    assert (spec.settings.timeouts.connect, spec.settings.timeouts.command, spec.settings.timeouts.aws) == (3, 9, 5)
    assert spec.roles == ("video-worker",)
    assert spec.groups == ("all", "workers", "video")


@pytest.mark.parametrize("text, expected", [
    ("all: {hosts: {h1: {ansible_host: 1.2.3.4, auditor: {log_windw: 1h}}}}", ["inventory.yaml:1", "log_windw",
                                                                              "did you mean 'log_window'"]),
    ("all:\n  hosts:\n    h1:\n      ansible_host: 1.2.3.4\n      auditor:\n        parallel: many\n",
     ["inventory.yaml:6", "auditor.parallel must be a number"]),
    ("all:\n  hosts:\n    h1:\n      ansible_port: 22\n", ["h1", "no address", "ansible_host"]),
    ("all:\n  hosts:\n    h1: [oops\n", ["not valid YAML", "inventory.yaml:"]),
    ("all:\n  hosts:\n    h1: {ansible_host: x.example, auditor: {roles: [cook]}}\n", ["role(s) cook", "video-worker"]),
    ("all:\n  hosts:\n    h1: {ansible_host: x.example, auditor: {env_from: docker}}\n", ["env_from", "container"]),
    ("all:\n  children:\n    g:\n      host: {}\n", ["unknown key 'host'", "hosts:"]),
    ("all: {}\n", ["no hosts"]),
])
def test_bad_input_is_one_message_with_file_line_key_and_fix(tmp_path, text, expected):
    with pytest.raises(InventoryError) as raised:
        load_inventory(write(tmp_path, text))
    message = str(raised.value)
    assert "fix:" in message
    for part in expected:
        assert part in message


def test_bad_marker_pattern_is_reported(tmp_path):
    inv = write(tmp_path, """
        all:
          hosts:
            h1:
              ansible_host: h1.example
              auditor:
                role_defs:
                  api:
                    markers: [{name: x, kind: received, pattern: "job_id=(?P<job>"}]
        """)
    with pytest.raises(InventoryError, match="bad pattern"):
        load_inventory(inv)


def test_missing_file_and_selection_errors(tmp_path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "nope.yaml")
    specs = load_inventory(ROOT / "inventory.yaml")
    assert [s.name for s in select(specs, roles="api")] == ["api-1"]
    with pytest.raises(InventoryError, match="no host named zz"):
        select(specs, hosts="zz")


@pytest.mark.parametrize("args, expected", [
    ("-o ProxyJump=bastion", ("bastion", None, ())),
    ("-J user@jump:2222", ("user@jump:2222", None, ())),
    ("-oProxyJump=j2 -o StrictHostKeyChecking=yes", ("j2", None, ("-o", "StrictHostKeyChecking=yes"))),
    ("-o Compression=yes", (None, None, ("-o", "Compression=yes"))),
    ("-o 'ProxyCommand=ssh -W %h:%p bastion' -v", (None, "ssh -W %h:%p bastion", ("-v",))),
    ("-o \"ProxyCommand nc %h %p\"", (None, "nc %h %p", ())),
    ("", (None, None, ())),
])
def test_jump_hosts_and_proxy_commands_from_common_args(args, expected):
    assert ssh_arguments(args) == expected


def test_hosts_that_share_their_groups_settings_share_one_record_and_a_hosts_own_layer_gets_its_own(tmp_path):
    inv = write(tmp_path, """
        all:
          vars: {auditor: {log_window: 30m}}
          children:
            api:
              vars: {auditor: {roles: [api]}}
              hosts:
                a1: {ansible_host: 10.0.0.1}
                a2: {ansible_host: 10.0.0.2}
                a3: {ansible_host: 10.0.0.3, auditor: {log_window: 2h}}
    """)
    a1, a2, a3 = load_inventory(inv)
    assert a1.settings is a2.settings and a1.settings.log_window == "30m"
    assert a3.settings is not a1.settings and a3.settings.log_window == "2h" and a3.roles == ("api",)


def test_choosing_hosts_builds_only_theirs_and_an_error_in_another_hosts_own_variables_waits_for_that_host(tmp_path):
    from auditor.audit import choose
    inv = write(tmp_path, """
        all:
          vars: {auditor: {roles: [video-worker]}}
          hosts:
            good: {ansible_host: 10.0.0.1}
            broken:
              ansible_host: 10.0.0.2
              auditor: {log_window: nonsense}
    """)
    chosen, left_out = choose(inv, hosts="good")
    assert [spec.name for spec in chosen] == ["good"]
    assert [host.name for host in left_out] == []       # its settings cannot be read: not a bystander either
    with pytest.raises(InventoryError, match=r"inventory.yaml:8: auditor.log_window is 'nonsense'"):
        choose(inv, hosts="broken")
    with pytest.raises(InventoryError, match="log_window"):
        load_inventory(inv)             # `hosts` and a whole-fleet audit still say it


def test_an_unknown_host_name_gets_a_did_you_mean_and_a_big_inventory_is_not_listed_in_the_message(tmp_path):
    hosts = "".join("    web-%03d: {ansible_host: 10.0.0.%d}\n" % (n, n % 250 + 1) for n in range(120))
    inv = write(tmp_path, "all:\n  hosts:\n" + hosts)
    with pytest.raises(InventoryError) as error:
        select(load_inventory(inv), "web-1000")
    assert "did you mean 'web-100'?" in str(error.value) and "the 120 hosts `fleet-audit hosts` lists" in str(error.value)
