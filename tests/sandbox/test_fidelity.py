"""The sandbox behaves like the real fleet: isolation, strict host keys, job
flow, the runbook's FAIL lines, and a clean `down`."""
import json
import re
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from auditor import audit
from auditor.collect import run_agent
from auditor.inventory import load_inventory
from sandbox import fleet as fleet_module
from sandbox import system
from sandbox.scenarios import REGION, VIDEO_QUEUE
from auditor.transports import Session


def run_on_host(spec, command, timeout, accept_new=False):
    """One command on one host, over its transport, in a session of its own."""
    return Session(accept_new).run(spec, command, timeout, connect_timeout=10)


def ssh(fleet, host, command):
    sandbox = fleet.sandbox
    return subprocess.run(
        ["ssh", "-i", str(sandbox.client_key), "-o", "UserKnownHostsFile=%s" % sandbox.known_hosts,
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(sandbox.ssh_port),
         "root@%s" % fleet.host(host).spec.address, command], capture_output=True, text=True, timeout=60)


def wait_for(predicate, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    return predicate()


def logs(fleet, host):
    runtime = fleet.host(host)
    return runtime.docker("logs", runtime.spec.container, timeout=20)


def test_each_host_sees_only_its_own_containers_with_verified_host_keys(fleet):
    fleet.use("healthy")
    for host, container in (("api-1", "academy-api"), ("video-1", "academy-video-worker"),
                            ("ai-1", "academy-ai-worker-cpu")):
        done = ssh(fleet, host, "docker ps --format '{{.Names}}'")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [container]


def test_healthy_jobs_flow_to_the_right_worker_with_the_same_ids(fleet):
    fleet.use("healthy")

    def followed():
        api = logs(fleet, "api-1")
        video_sent = set(re.findall(r"Video job enqueued: video_id=(\d+)", api))
        excel_sent = set(re.findall(r"EXCEL_PARSING dispatch .*?job_id=(\S+)", api))
        # as in the real app, the video worker's job_id is its job row: the video is followed by video_id
        video_done = set(re.findall(r"SQS_JOB_COMPLETED \|.*?video_id=(\d+)", logs(fleet, "video-1")))
        video_rows = set(re.findall(r"SQS_JOB_COMPLETED \| job_id=(\d+)", logs(fleet, "video-1")))
        excel_done = set(re.findall(r"EXCEL_PARSING processed_by=worker job_id=(\S+)", logs(fleet, "ai-1")))
        return (video_sent & video_done) and (excel_sent & excel_done) and not (excel_sent & video_done) \
            and video_rows and not (video_rows & video_sent)

    assert wait_for(followed)


def test_wrong_region_jobs_pile_up_and_the_worker_receives_nothing(fleet):
    fleet.use("worker-wrong-region")
    sqs = fleet.sandbox.moto.admin_client("sqs", fleet.sandbox.keys(), region=REGION)
    url = sqs.get_queue_url(QueueName=VIDEO_QUEUE)["QueueUrl"]

    def piled_up():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) >= 3

    assert wait_for(piled_up)
    # the worker's own lines, once it has logged them (a loaded machine starts containers slowly)
    video = wait_for(lambda: (lambda text: text if "SQS unavailable, waiting" in text else "")(logs(fleet, "video-1")))
    assert "SQS_MESSAGE_RECEIVED" not in video
    assert "Queue URL unavailable" in video and "SQS unavailable, waiting" in video


@pytest.mark.parametrize("scenario, host, fail_line", [
    ("invalid-key", "api-1", "FAIL: 큐 접근 불가 (자격 증명/권한 문제)"),
    ("wrong-secret", "video-1", "FAIL: 큐 접근 불가 (자격 증명/권한 문제)"),
    ("no-permission", "ai-1", "FAIL: AWS 자격 증명 오류 또는 SQS 권한 없음"),
    ("queue-missing", "api-1", "FAIL: 큐가 존재하지 않습니다"),
])
def test_stand_in_check_script_prints_the_runbook_fail_line(fleet, scenario, host, fail_line):
    fleet.use(scenario)
    runtime = fleet.host(host)
    done = subprocess.run(["docker", "-H", "unix://%s" % runtime.socket, "exec", "-w", "/app", runtime.spec.container,
                           "python", "scripts/check_sqs_worker_connectivity.py"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert fail_line in done.stdout
    assert "결과: SQS 연결 실패" in done.stdout


def test_an_audit_of_the_api_alone_does_not_guess_what_the_left_out_workers_did(fleet):
    """check-host api-1 while a worker is down: the backlog is real, but whether a worker polls it is
    evidence this audit did not gather (the full audit's backlog-no-consumer is the scenario test's)."""
    fleet.use("worker-down")

    def backlog(result):
        probe = result.hosts[0].report.probe
        return probe is not None and any(queue.waiting for queue in probe.queues)
    result = fleet.audit_until(backlog, hosts="api-1")
    assert backlog(result), "no message waited in 60 s"
    assert not {f.code for f in result.findings} & {"backlog-no-consumer", "jobs-not-consumed"}
    notes = [f for f in result.findings if f.evidence.get("reason") == "not-audited"]
    assert notes and all(f.severity == "info" for f in notes), result.findings
    assert result.hosts[0].verdict == "ok"


def test_check_host_shows_the_app_script_beside_the_probe(fleet):
    fleet.use("queue-missing")
    result = audit.run_audit(fleet.sandbox.inventory, hosts="api-1", run_check_script=True)
    (host,) = result.hosts
    assert host.report.check_script.exit_status == 1
    assert "[2] AI(Basic) 큐" in host.report.check_script.output
    assert {"check-script-failed", "sqs-queue-missing"} <= {f.code for f in host.findings}


def test_transport_failures_are_classified_per_host(fleet, tmp_path):
    fleet.use("healthy")
    spec = load_inventory(fleet.sandbox.inventory)[0]
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    unknown = replace(spec, settings=replace(spec.settings, known_hosts=str(empty_known_hosts)))
    assert run_on_host(unknown, "true", timeout=20).kind == "host-key-unknown"
    # a recorded key of another host is a changed key, with the ssh-keygen -R fix
    other_key = (fleet.host("video-1").dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    changed_file = tmp_path / "changed"
    changed_file.write_text("[%s]:%d %s %s\n" % (spec.address, spec.target.port, *other_key))
    changed = replace(spec, settings=replace(spec.settings, known_hosts=str(changed_file)))
    outcome = run_on_host(changed, "true", timeout=20)
    assert outcome.kind == "host-key-changed" and "ssh-keygen -R" in outcome.detail
    # trust on first use only when asked, and it records the key
    tofu = run_on_host(unknown, "true", timeout=20, accept_new=True)
    assert tofu.ok and spec.address in empty_known_hosts.read_text()
    wrong_key = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    refused = spec.with_target(key_file=str(wrong_key))
    assert run_on_host(refused, "true", timeout=20).kind == "auth-failed"
    no_python = replace(spec, python="/nonexistent/python3")
    result = audit.assess([run_agent(no_python, b"test-key", Session())])
    assert [f.code for f in result.findings] == ["agent-python-missing"]
    hung = run_on_host(spec, "timeout -k 1 1 sleep 5", timeout=20)
    assert hung.kind == "timeout"


def test_down_leaves_nothing_behind(fleet):
    fleet.use("healthy")
    sandbox = fleet.sandbox
    active = [sandbox.hosts[name] for name in sandbox.state()["hosts"]]
    pids = [sandbox.moto.pid()] + [p for h in active for p in (h.sshd_pid(), h.dockerd_pid())]
    assert all(pids)
    sandbox.down()
    fleet.scenario = None
    assert not sandbox.running()
    # exited: gone, or a zombie that only its parent (maybe init) has yet to reap
    assert not any(system.pid_alive(pid) for pid in pids)
    assert fleet_module.leftover_mounts(sandbox.root) == []

    def left_behind():
        ps = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
        return [line for line in ps.splitlines() if str(sandbox.root) + "/" in line and " ps -eo" not in line]
    # an SSH session the previous test closed may take a moment to end on a loaded machine: it must end
    assert wait_for(lambda: not left_behind(), timeout=30), left_behind()


def _python_wrapper(path, environment):
    """A host 'python3' that runs the real one in a changed environment."""
    path.write_text("#!/bin/sh\n%s exec %s \"$@\"\n" % (
        " ".join("%s=%s" % item for item in environment.items()), sys.executable))
    path.chmod(0o755)
    return str(path)


def test_missing_docker_and_boto3_are_classified(fleet, tmp_path):
    fleet.use("healthy")
    spec = next(s for s in load_inventory(fleet.sandbox.inventory) if s.name == "video-1")
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    no_docker = replace(spec, name="no-docker", python=_python_wrapper(tmp_path / "py-no-docker", {"PATH": empty_bin}))
    dead_daemon = replace(spec, name="dead-daemon", python=_python_wrapper(tmp_path / "py-dead-daemon",
                                                       {"DOCKER_HOST": "unix://%s/none.sock" % tmp_path}))
    blocker = tmp_path / "block" / "boto3"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    no_boto3 = replace(spec, name="no-boto3", python=_python_wrapper(tmp_path / "py-no-boto3", {"PYTHONPATH": blocker.parent}),
                       settings=replace(spec.settings, env_from="dotenv"))
    result = audit.assess([run_agent(s, b"test-key", Session()) for s in (no_docker, dead_daemon, no_boto3)])
    codes = [[f.code for f in host.findings] for host in result.hosts]
    assert codes[0] == ["docker-missing"] and codes[1] == ["docker-unavailable"]
    assert "probe-boto3-missing" in codes[2]
    # no docker CLI: no worker can run; a daemon that does not answer, or a probe that cannot run: unknown
    assert [h.verdict for h in result.hosts] == ["worker-down", "unknown", "unknown"]
    assert result.hosts[1].report.docker.missing.reason == "daemon-down"


def test_a_crash_loop_is_one_from_its_first_restart(fleet):
    fleet.use("healthy")
    fleet.use("crash-loop")
    result = audit.run_audit(fleet.sandbox.inventory, hosts="ai-1")     # at once, no waiting for restarts
    assert "container-restarting" in {f.code for f in result.findings}
    assert "probe-failed" not in {f.code for f in result.findings}


def test_a_missing_app_python_falls_back_and_says_which_ran(fleet):
    fleet.use("healthy")
    specs = load_inventory(fleet.sandbox.inventory)
    spec = next(s for s in specs if s.name == "api-1")
    spec = replace(spec, settings=replace(spec.settings, app_python="/usr/local/bin/python3.12"))
    # as check-host api-1 would: the workers are left out, so what they did with the jobs is not judged
    result = audit.assess([run_agent(spec, b"test-key", Session())], left_out=[s for s in specs if s.name != "api-1"])
    (host,) = result.hosts
    assert host.report.probe.ran and host.report.probe.python_fallback == ("/usr/local/bin/python3.12", "python3")
    assert [f.code for f in result.findings if f.evidence.get("reason") != "not-audited"] == ["app-python-fallback"]
    assert host.verdict == "ok"


def test_the_apps_check_script_output_leaves_no_secret(fleet):
    """A check script that prints its environment: the key id is masked, the secret fingerprinted."""
    fleet.use("healthy")
    runtime = fleet.host("video-1")
    runtime.docker("exec", runtime.spec.container, "sh", "-c",
                   "printf 'import os\\nfor k, v in sorted(os.environ.items()): print(k, v)\\n' > /tmp/print_env.py")
    spec = next(s for s in load_inventory(fleet.sandbox.inventory) if s.name == "video-1")
    spec = replace(spec, settings=replace(spec.settings, check_script="/tmp/print_env.py", run_check_script=True))
    result = audit.assess([run_agent(spec, b"test-key", Session())])
    output = result.hosts[0].report.check_script.output
    key_id, secret = fleet.sandbox.keys()["academy-video-worker"]
    assert "AWS_SECRET_ACCESS_KEY fp:" in output
    assert secret not in output and key_id not in output
    from auditor.render import render
    for fmt in ("table", "json", "markdown", "html", "junit"):
        assert secret not in render(result, fmt)


def test_a_local_command_timeout_never_shows_the_remote_command(fleet):
    fleet.use("healthy")
    spec = load_inventory(fleet.sandbox.inventory)[0]
    outcome = run_on_host(spec, "sleep 5; echo secret-salt-in-payload", timeout=1)
    assert outcome.kind == "timeout" and "secret-salt" not in outcome.detail and "sleep" not in outcome.detail


class Injected(RuntimeError):
    pass


def _fail_for(victim, matches):
    """A replacement that raises Injected when `matches(*args)` says the call is the victim's."""
    def wrap(original):
        def replacement(*args, **kwargs):
            if matches(victim, *args):
                raise Injected("injected at this stage")
            return original(*args, **kwargs)
        return replacement
    return wrap


class _JsonOf:
    """collect's json module, failing on one host's facts."""
    def __init__(self, victim):
        self.victim = victim

    def loads(self, text, *args, **kwargs):
        if "/hosts/%s/" % self.victim in text:
            raise Injected("injected while parsing")
        return json.loads(text, *args, **kwargs)


@pytest.mark.parametrize("stage", ["key loading", "connect", "exec", "parse", "compact"])
def test_an_exception_at_any_stage_is_that_hosts_error_row_and_the_others_are_audited(fleet, monkeypatch, stage,
                                                                                      tmp_path):
    """A worker thread must never die silently: collect() would wait for its host forever."""
    from auditor import collect, facts
    from auditor.transports import paramiko_ssh
    fleet.use("healthy")
    specs = load_inventory(fleet.sandbox.inventory)
    victim = specs[1]
    own_key = tmp_path / "victim_key"                   # the victim's own copy, to fail its loading alone
    own_key.write_bytes(open(victim.target.key_file, "rb").read())
    own_key.chmod(0o600)
    specs[1] = victim = victim.with_target(key_file=str(own_key))
    if stage == "key loading":
        monkeypatch.setattr(paramiko_ssh.ParamikoSSH, "private_key", _fail_for(
            str(own_key), lambda v, transport, path: path == v)(paramiko_ssh.ParamikoSSH.private_key))
    elif stage == "connect":
        monkeypatch.setattr(paramiko_ssh.socket, "create_connection", _fail_for(
            victim.address, lambda v, address, *a: address[0] == v)(paramiko_ssh.socket.create_connection))
    elif stage == "exec":
        monkeypatch.setattr(paramiko_ssh, "_exec", _fail_for(
            victim.address, lambda v, connection, *a: connection.host == v)(paramiko_ssh._exec))
    elif stage == "parse":
        monkeypatch.setattr(collect, "json", _JsonOf(victim.name))
    else:
        monkeypatch.setattr(facts, "compact", _fail_for(victim.name, lambda v, run: run.spec.name == v)(facts.compact))
    result = audit.run_audit(fleet.sandbox.inventory, specs=specs)
    rows = {host.report.name: host for host in result.hosts}
    assert len(rows) == len(specs)
    assert rows[victim.name].report.transport_kind == "error", rows[victim.name].report
    assert "Injected" in rows[victim.name].report.transport_detail
    assert [f.code for f in rows[victim.name].findings] == ["agent-failed"]
    assert all(rows[s.name].report.reachable for s in specs if s.name != victim.name)


def test_a_jump_hosts_failures_are_blamed_on_the_jump_host(fleet, tmp_path):
    fleet.use("healthy")
    jump, target = load_inventory(fleet.sandbox.inventory)[:2]

    def key_line(spec):
        key = (fleet.host(spec.name).dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        return "[%s]:%d %s %s\n" % (spec.address, spec.target.port, *key)

    known = tmp_path / "known_hosts"
    known.write_text(key_line(target))
    via = replace(target.with_target(proxy_jump="root@%s:%d" % (jump.address, jump.target.port)),
                  settings=replace(target.settings, known_hosts=str(known)))
    outcome = run_on_host(via, "true", timeout=20)
    assert outcome.kind == "host-key-unknown", outcome
    assert "jump host [%s]:%d is not in" % (jump.address, jump.target.port) in outcome.detail
    assert "ssh-keyscan -p %d %s" % (jump.target.port, jump.address) in outcome.detail
    known.write_text(key_line(target) + key_line(jump))
    assert run_on_host(via, "true", timeout=20).ok            # through the jump host, both keys verified
    gone = via.with_target(proxy_jump="root@127.0.0.1:%d" % _free_port())
    outcome = run_on_host(gone, "true", timeout=20)
    assert outcome.kind == "unreachable" and outcome.detail.startswith("jump host [127.0.0.1]:"), outcome
    beyond = via.with_target(address="127.0.0.1", port=_free_port())
    outcome = run_on_host(beyond, "true", timeout=20)
    assert outcome.kind == "unreachable" and "could not open a connection to 127.0.0.1" in outcome.detail, outcome


def _free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("scenario, verdict, words", [
    ("poison-job-crash-loop", "code-suspect", "job-crash-loop"),
    ("startup-missing-env", "config", "Set the DJANGO_SECRET_KEY environment variable"),
])
def test_an_unchanged_fault_gets_one_verdict_in_every_audit_whatever_state_the_worker_is_caught_in(
        fleet, scenario, verdict, words):
    """Five audits a few seconds apart catch the crash-looping worker running, restarting or just
    restarted, with its backlog or without: the verdict stays the cause's."""
    fleet.use(scenario)
    worker = "video-1" if scenario == "poison-job-crash-loop" else "ai-1"
    fleet.audit_until(lambda r: any(words in f.code or words in f.message for f in r.findings))  # the fault shows
    seen = []
    for _ in range(5):
        result = audit.run_audit(fleet.sandbox.inventory)
        host = next(h for h in result.hosts if h.report.name == worker)
        states = [c.status for c in host.report.containers]
        seen.append((str(host.verdict), tuple(states), tuple(sorted(f.code for f in host.findings))))
        time.sleep(1.5)
    assert {verdict_ for verdict_, _, _ in seen} == {verdict}, seen
