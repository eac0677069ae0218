"""Fault matrix, inputs: every hostile or mistaken input ends in a classified exit (2 for
usage and inventory errors, one line), never a traceback and never an audit that lies."""
import json
import os
import re
import subprocess

import pytest
from faultkit import FAB, ROOT, free_port


def one_error_line(done):
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("settings, words", [
    ({"timeouts": "fast"}, "timeouts must be a mapping"),     # (null restores the defaults)
    ({"parallel": 0}, "out of range"),
    ({"parallel": -1}, "out of range"),
    ({"parallel": True}, "must be a number"),
    ({"log_max_bytes": -1}, "out of range"),
    ({"timeouts": {"connect": -5}}, "out of range"),
    ({"timeouts": {"command": 0}}, "out of range"),
])
def test_settings_out_of_type_or_range_are_inventory_errors(fab, inventory, settings, words):
    done = fab("audit", "-i", str(inventory(auditor=settings)))
    assert done.returncode == 2
    assert words in done.stderr and "fix:" in done.stderr


def test_a_port_out_of_range_is_refused_not_wrapped(fab, inventory):
    done = fab("hosts", "-i", str(inventory(hosts={"api-1": {"ansible_host": "127.0.0.1", "ansible_port": 99999}})))
    assert done.returncode == 2 and "1 to 65535" in one_error_line(done) + done.stderr


def test_a_non_utf8_inventory_is_an_inventory_error(fab, inventory):
    done = fab("audit", "-i", str(inventory(raw=b"all:\n  hosts:\n    caf\xe9: {}\n")))
    assert done.returncode == 2 and "not UTF-8" in done.stderr


@pytest.mark.parametrize("args, words", [
    (["--hosts", ","], "names no host"),
    (["--parallel", "abc"], "--parallel"),
    (["--parallel", "many"], "--parallel"),
    (["--parallel", "0"], "--parallel"),
    (["--format", "yaml"], "unknown format"),
    (["--output", "/nonexistent-dir/report.json"], "cannot write the report"),
])
def test_bad_arguments_exit_2_before_any_host_is_visited(fab, inventory, args, words):
    done = fab("audit", "-i", str(inventory()), *args)
    assert done.returncode == 2, done.stderr
    assert words in one_error_line(done)
    assert "hosts done" not in done.stderr


def test_diff_on_a_json_list_is_a_usage_error(fab, tmp_path):
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([1, 2, 3]))
    done = fab("diff", str(listing), str(listing))
    assert done.returncode == 2 and "not a saved audit" in one_error_line(done)


def test_a_missing_key_file_is_an_inventory_error_before_any_connection(fab, inventory, tmp_path):
    path = inventory(hosts={"api-1": {"ansible_host": "127.0.0.1", "ansible_port": 22,
                                      "ansible_ssh_private_key_file": str(tmp_path / "absent.pem")}})
    done = fab("audit", "-i", str(path))
    assert done.returncode == 2 and "does not exist" in one_error_line(done)
    assert "hosts done" not in done.stderr


def test_unreachable_hosts_print_no_paramiko_tracebacks(fab, inventory):
    hosts = {"h%02d" % n: {"ansible_host": "127.0.0.1", "ansible_port": free_port()} for n in range(40)}
    done = fab("audit", "-i", str(inventory(hosts=hosts)), "--format", "json")
    assert done.returncode == 1
    assert len(done.stderr) < 4000, done.stderr[:2000]
    document = json.loads(done.stdout)
    assert {h["findings"][0]["code"] for h in document["hosts"]} == {"ssh-unreachable"}


def test_report_files_are_created_private(fab, inventory, tmp_path):
    report = tmp_path / "report.json"
    done = fab("audit", "-i", str(inventory()), "--format", "json", "--output", str(report))
    assert done.returncode == 1
    assert report.stat().st_mode & 0o777 == 0o600


def test_a_reader_that_closes_stdout_early_ends_the_audit_quietly(inventory, tmp_path):
    hosts = {"h%02d" % n: {"ansible_host": "127.0.0.1", "ansible_port": free_port()} for n in range(40)}
    # `| head -c 10`: the report is larger than a pipe's buffer, so writing it meets a closed pipe
    done = subprocess.run("%s audit -i %s -f json | head -c 10 >/dev/null; echo ${PIPESTATUS[0]}" % (
        FAB, inventory(hosts=hosts)), shell=True, executable="/bin/bash", capture_output=True, text=True,
        timeout=120, cwd=ROOT, env=dict(os.environ, NO_COLOR="1"))
    assert done.stdout.strip() == "141"
    assert "error" not in done.stderr and "Traceback" not in done.stderr


BOMB = b"".join([b"all:\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"] + [
    b"    %s: &%s [%s]\n" % (name, name, b", ".join([b"*" + previous] * 10))
    for previous, name in zip([bytes([c]) for c in b"abcdefgh"],
                              [bytes([c]) for c in b"bcdefghi"])] + [
    b"    auditor:\n      public_env: *i\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n"])


@pytest.mark.parametrize("raw, words", [
    (BOMB, ":13: auditor.public_env must list names"),
    (b"all:\n  hosts:\n    - api-1\n    - api-2\n", ":2: hosts of group 'all' must be a mapping"),
    (b"all:\n  children:\n    - web\n", ":2: children of group 'all' must be a mapping"),
    (b"all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n    a: {ansible_host: 10.0.0.2}\n",
     ":4: 'a' appears twice in the same mapping (first at line 3)"),
    (b"all:\n  vars:\n    auditor: {log_window: nonsense}\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n",
     ":3: auditor.log_window is 'nonsense', not a duration"),
    (b"all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n    b: {ansible_host: \"x\x00\"}\n", ":4: not valid YAML"),
])
def test_malformed_inventories_are_refused_with_their_line_in_bounded_time_and_memory(fab, inventory, raw, words):
    done = fab("hosts", "-i", str(inventory(raw=raw)), timeout=30)
    assert done.returncode == 2, done.stderr
    assert words in one_error_line(done)
    assert len(done.stderr) < 2000


@pytest.mark.parametrize("baseline, words", [
    ("settings module: {ai-wroker: academy.settings.worker}\n", "unknown role(s) 'ai-wroker' (did you mean 'ai-worker'?)"),
    ("app region: [ap-northeast-2, us-east-1]\n", "app region must be one value, not a list"),
    ("app region: {api: [ap-northeast-2]}\n", "app region for role api must be one value, not a list"),
])
def test_a_baseline_that_would_compare_nothing_is_refused_before_the_audit(fab, inventory, tmp_path, baseline, words):
    path = tmp_path / "baseline.yaml"
    path.write_text(baseline)
    done = fab("preflight", "--baseline", str(path), "-i", str(inventory()))
    assert done.returncode == 2, done.stderr
    assert words in one_error_line(done)
    assert "hosts done" not in done.stderr


def test_a_symlinked_report_path_is_refused_before_the_audit(fab, inventory, tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    target.chmod(0o644)
    link = tmp_path / "report.json"
    link.symlink_to(target)
    done = fab("audit", "-i", str(inventory()), "--output", str(link))
    assert done.returncode == 2 and "symbolic link" in one_error_line(done)
    assert target.read_text() == "keep me\n" and (target.stat().st_mode & 0o777) == 0o644
    assert "hosts done" not in done.stderr


def test_a_report_that_cannot_be_written_after_the_audit_reaches_stdout_and_exits_4(fab, inventory):
    done = fab("audit", "-i", str(inventory()), "--format", "json", "--output", "/dev/full")
    assert done.returncode == 4, done.stderr
    assert "could not be written to /dev/full" in one_error_line(done)
    assert json.loads(done.stdout)["hosts"][0]["name"] == "api-1"


@pytest.mark.parametrize("variables, words", [
    ({"ansible_connection": "winrm"}, "ansible_connection winrm is not supported: Windows hosts"),
    ({"ansible_connection": "local"}, "ansible_connection local is not supported"),
    ({"ansible_connection": "shh"}, "did you mean 'ssh'?"),
    ({"ansible_password": "hunter2-secret"}, "never logs in with a password"),
    ({"ansible_ssh_common_args": "-o 'ProxyCommand=unbalanced"}, "balance its quotes"),
])
def test_transports_the_auditor_cannot_use_are_refused_with_what_to_do(fab, inventory, variables, words):
    host = dict({"ansible_host": "127.0.0.1", "ansible_port": free_port()}, **variables)
    done = fab("audit", "-i", str(inventory(hosts={"api-1": host})))
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "hunter2-secret" not in done.stderr


def test_the_older_ansible_ssh_names_are_read(fab, inventory):
    host = {"ansible_ssh_host": "127.0.0.9", "ansible_ssh_port": 2200, "ansible_ssh_user": "deploy",
            "ansible_connection": "ssh"}
    done = fab("hosts", "-i", str(inventory(hosts={"api-1": host})))
    assert done.returncode == 0, done.stderr
    assert "127.0.0.9:2200" in done.stdout and "deploy" in done.stdout and "ssh [127.0.0.9]:2200" in done.stdout


def test_connect_timeout_and_known_hosts_flags_win_over_the_inventory(fab, inventory, tmp_path):
    from faultkit import silent_listener
    listener = silent_listener()
    hosts = {"api-1": {"ansible_host": "127.0.0.1", "ansible_port": listener.getsockname()[1]}}
    path = inventory(hosts=hosts, auditor={"timeouts": {"connect": 30}})
    other = tmp_path / "other_known_hosts"
    other.write_text("")
    done = fab("audit", "-i", str(path), "-f", "json", "--connect-timeout", "1", "--known-hosts", str(other),
               "--debug")
    listener.close()
    assert done.returncode == 1, done.stderr
    finding = json.loads(done.stdout)["findings"][0]
    assert finding["code"] == "ssh-timeout" and "within 1.0s" in finding["message"], finding
    assert "host keys %s" % other in done.stderr
    missing = fab("audit", "-i", str(path), "--known-hosts", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


INI = """\
[api]
api-1 ansible_host=127.0.0.1 ansible_port=2201

[video_workers]
video-1 ansible_host=127.0.0.2

[all:vars]
ansible_user=deploy

[video_workers:vars]
auditor={"roles": ["video-worker"], "log_window": "2h"}
"""


def test_ini_files_and_directories_are_read_by_ansibles_own_reader(fab, tmp_path):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.ini").write_text(INI)
    (tmp_path / "inv" / "group_vars").mkdir()
    (tmp_path / "inv" / "group_vars" / "api.yml").write_text("auditor:\n  roles: [api]\n")
    for target in (tmp_path / "inv" / "hosts.ini", tmp_path / "inv"):
        done = fab("hosts", "-i", str(target))
        assert done.returncode == 0, done.stderr
        rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:] if line.strip()[:3] in
                ("api", "vid")}
        assert rows["api-1"][1:4] == ["127.0.0.1:2201", "deploy", "api"]      # group_vars/ applied by Ansible
        assert rows["video-1"][3] == "video-worker"
    # the same validation follows: a typo in an INI group's auditor variables is named
    (tmp_path / "bad.ini").write_text(INI.replace('"log_window"', '"log_windwo"'))
    bad = fab("hosts", "-i", str(tmp_path / "bad.ini"))
    assert bad.returncode == 2 and "did you mean 'log_window'" in bad.stderr


def test_without_ansible_an_ini_inventory_says_how_to_read_it(fab, tmp_path, monkeypatch):
    from auditor import inventory
    from auditor.errors import InventoryError
    (tmp_path / "hosts.ini").write_text(INI)
    monkeypatch.setattr(inventory, "ansible_inventory_program", lambda: None)     # an install without ansible-core
    with pytest.raises(InventoryError, match="install ansible-core"):
        inventory.load_inventory(tmp_path / "hosts.ini")
    (tmp_path / "broken.ini").write_text("[api\napi-1 ansible_host=\n")
    broken = fab("hosts", "-i", str(tmp_path / "broken.ini"))
    assert broken.returncode == 2 and "ansible-inventory" in broken.stderr


@pytest.mark.parametrize("variables, words", [
    ({"ansible_host": "-oProxyCommand=touch /tmp/owned", "ansible_connection": "ssh"}, "starts with '-'"),
    ({"ansible_user": "-oProxyCommand=touch /tmp/owned", "ansible_connection": "ssh"}, "starts with '-'"),
    ({"ansible_user": "deploy;id"}, "holds ';', which ssh refuses"),
    ({"ansible_user": "x'y", "ansible_connection": "ssh"}, "holds \"'\", which ssh refuses"),
    ({"ansible_ssh_common_args": "-o ProxyJump=root@bastion:24o3"}, "its port '24o3' is not a number"),
    ({"ansible_ssh_common_args": "-J -oProxyCommand=id", "ansible_connection": "ssh"}, "starts with '-'"),
])
def test_names_ssh_would_misread_are_inventory_errors_at_their_line(fab, inventory, variables, words):
    host = dict({"ansible_host": "127.0.0.1", "ansible_port": free_port()}, **variables)
    for task in ("hosts", "audit"):
        done = fab(task, "-i", str(inventory(hosts={"api-1": host})))
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and re.search(r"inventory\.yaml:\d+: host 'api-1'", done.stderr), done.stderr
        assert "unexpected" not in done.stderr and "agent-failed" not in done.stdout


def test_a_role_typo_gets_a_did_you_mean(fab, inventory):
    done = fab("audit", "-i", str(inventory()), "--roles", "apii")
    assert done.returncode == 2 and "no host has role apii (did you mean 'api'?)" in done.stderr


def test_yaml_errors_name_the_file_and_line_never_pyyamls_internal_names(fab, inventory, tmp_path):
    broken = inventory(raw=b"all:\n  hosts:\n    api-1: {ansible_host: [\n")
    done = fab("hosts", "-i", str(broken))
    assert done.returncode == 2 and "<unicode string>" not in done.stderr and "inventory.yaml:" in done.stderr
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("app region: 'unclosed\n")
    done = fab("preflight", "-i", str(inventory()), "--baseline", str(baseline))
    assert done.returncode == 2 and "<unicode string>" not in done.stderr and "baseline.yaml:" in done.stderr


def test_waivers_pass_an_accepted_finding_name_an_expired_one_and_refuse_what_does_not_exist(fab, inventory, tmp_path):
    fleet = inventory()             # api-1 on a closed port: unreachable, an error finding
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("app region: ap-northeast-2\n")
    found = json.loads(fab("preflight", "--baseline", str(baseline), "-i", str(fleet), "-f", "json").stdout)
    codes = sorted({f["code"] for f in found["findings"]})
    assert "ssh-unreachable" in codes

    def waive(expires, code=None, subject="host: api-1"):
        path = tmp_path / "waivers.yaml"
        path.write_text("waivers:\n" + "".join("  - {code: %s, %s, reason: 'moved to new racks, OPS-9', expires: %s}\n"
                                               % (c, subject, expires) for c in ([code] if code else codes)))
        return fab("preflight", "--baseline", str(baseline), "-i", str(fleet), "--waivers", str(path))

    done = waive("2999-01-01")
    assert done.returncode == 0, done.stderr
    assert "waived: ssh-unreachable on api-1: moved to new racks, OPS-9 (until 2999-01-01" in done.stderr
    assert "preflight passed (%d finding(s) waived)" % len(codes) in done.stderr
    done = waive("2999-01-01", subject="role: api")
    assert done.returncode == 0, done.stderr
    done = waive("2020-01-01")
    assert done.returncode == 1
    assert "waiver expired: ssh-unreachable on api-1 was accepted until 2020-01-01" in done.stderr
    assert "waiver(s) expired" in done.stderr
    for code, subject, words in (("ssh-unreachabel", "host: api-1", "unknown finding code 'ssh-unreachabel' "
                                                                     "(did you mean 'ssh-unreachable'?)"),
                                 ("ssh-unreachable", "host: api-2", "unknown host 'api-2' (did you mean 'api-1'?)"),
                                 ("ssh-unreachable", "role: apii", "unknown role 'apii' (did you mean 'api'?)")):
        done = waive("2999-01-01", code, subject)
        assert done.returncode == 2 and words in done.stderr and "waivers.yaml:2" in done.stderr, done.stderr


def test_preflight_wait_audits_again_until_its_time_is_up(fab, inventory, tmp_path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("app region: ap-northeast-2\n")
    done = fab("preflight", "--baseline", str(baseline), "-i", str(inventory()), "--wait", "11s", timeout=120)
    assert done.returncode == 1
    assert done.stderr.count("preflight round 1:") == 1 and "again in 10 s" in done.stderr
    assert "preflight round 2:" not in done.stderr        # the second round was the last: its report is the one shown
