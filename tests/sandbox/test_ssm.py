"""SSM Run Command against the sandbox's stand-in, which really runs the agent on the host each
instance id stands for: a mixed fleet, an undeliverable or unknown instance, a denied call, facts
over the inline limit without and with S3, and Ctrl-C cancelling what still runs."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from auditor import audit
from auditor.inventory import load_inventory
from sandbox import scenarios
from sandbox.moto_server import ADMIN_USER

FAB = str(Path(sys.executable).parent / "fab")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mixed(fleet):
    """The ssm-mixed fleet, its stand-in's policy and modes restored after each test."""
    inventory = fleet.use("ssm-mixed")
    stand_in = fleet.sandbox.ssm
    policy = json.loads((stand_in.directory / "policy.json").read_text())
    instances = json.loads((stand_in.directory / "instances.json").read_text())
    yield inventory, stand_in
    (stand_in.directory / "policy.json").write_text(json.dumps(policy))
    (stand_in.directory / "instances.json").write_text(json.dumps(instances))


def answers_of_many_instances(fleet, mixed, count, first_id, timeout):
    """(outcomes, session, specs) of `count` instances, all standing for api-1, each running the same
    small command through one Session, all at once."""
    from concurrent.futures import ThreadPoolExecutor
    from auditor.transports import Session
    inventory, stand_in = mixed
    instances = json.loads((stand_in.directory / "instances.json").read_text())
    api = instances[scenarios.instance_id(fleet.host("api-1").spec)]
    ids = ["i-%017x" % (first_id + n) for n in range(count)]
    (stand_in.directory / "instances.json").write_text(json.dumps(dict(instances, **{i: api for i in ids})))
    template = next(s for s in load_inventory(inventory) if s.name == "video-1")
    specs = [replace(template.with_target(address=i), name="i%04d" % n) for n, i in enumerate(ids)]
    session = Session(parallel=count)
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda spec: session.run(spec, "echo $((6 * 7))", timeout, 5), specs)), session, specs


def camel_to_snake(action):
    return "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")


def codes_by_host(result):
    return {h.report.name: sorted(f.code for f in h.findings) for h in result.hosts}


def test_a_mixed_fleet_is_audited_over_ssh_and_ssm_with_real_execution(fleet, mixed):
    inventory, stand_in = mixed
    specs = load_inventory(inventory)
    assert {s.name: s.connection for s in specs} == {"api-1": "paramiko", "video-1": "community.aws.aws_ssm",
                                                   "ai-1": "community.aws.aws_ssm"}
    result = fleet.audit_until(lambda r: not r.findings)
    assert codes_by_host(result) == {"api-1": [], "video-1": [], "ai-1": []}
    sent = stand_in.recorded("SendCommand")
    assert sorted(i for r in sent for i in r["InstanceIds"]) == sorted(
        [scenarios.instance_id(fleet.host("video-1").spec), scenarios.instance_id(fleet.host("ai-1").spec)] *
        (len(sent) // 2))
    video = next(h for h in result.hosts if h.report.name == "video-1")
    assert video.report.probe.env_source == "container:academy-video-worker"    # really read on the host
    listed = subprocess.run([FAB, "hosts", "-i", str(inventory)], capture_output=True, text=True, cwd=ROOT)
    assert "ssm %s" % scenarios.instance_id(fleet.host("video-1").spec) in listed.stdout


def test_an_undeliverable_or_unknown_instance_is_named_and_the_others_are_audited(fleet, mixed):
    inventory, stand_in = mixed
    stand_in.set_mode(scenarios.instance_id(fleet.host("video-1").spec), "undeliverable")
    specs = [s.with_target(address="i-0123456789abcdef0") if s.name == "ai-1" else s
             for s in load_inventory(inventory)]
    result = audit.run_audit(inventory, specs=specs)
    found = codes_by_host(result)
    assert found["video-1"] == ["ssm-not-managed"] and found["ai-1"] == ["ssm-not-managed"]
    assert "agent is not connected" in result.hosts[1].report.transport_detail
    assert "i-0123456789abcdef0 is not a managed instance" in result.hosts[2].report.transport_detail
    assert not [f for f in result.findings if "api-1" in f.hosts and f.severity == "error"]


def test_a_denied_send_command_is_ssm_access_denied(fleet, mixed):
    inventory, stand_in = mixed
    admin_key = fleet.sandbox.keys()[ADMIN_USER][0]
    stand_in.set_policy(denied={admin_key: ["SendCommand"]})
    result = audit.run_audit(inventory, hosts="video-1")
    assert codes_by_host(result) == {"video-1": ["ssm-access-denied"]}
    assert "ssm:SendCommand" in result.findings[0].remedy


def test_facts_over_the_inline_limit_need_s3_and_are_read_from_it(fleet, mixed):
    inventory, stand_in = mixed
    stand_in.set_policy(inline_limit=2000)      # the agent's compressed facts are larger than this
    alone = audit.run_audit(inventory, hosts="ai-1")
    assert codes_by_host(alone) == {"ai-1": ["agent-output-too-large"]}
    assert "S3 bucket" in alone.hosts[0].report.transport_detail
    specs = [s.with_target(bucket=scenarios.SSM_BUCKET) for s in load_inventory(inventory)
             if s.name == "ai-1"]
    with_s3 = audit.run_audit(inventory, specs=specs)
    assert codes_by_host(with_s3) == {"ai-1": []}, with_s3.findings
    assert with_s3.hosts[0].report.probe.queues             # the whole document, read back from S3


POLLS = ("ListCommandInvocations", "GetCommandInvocation")


def test_ctrl_c_cancels_the_commands_still_running(fleet, mixed):
    inventory, stand_in = mixed
    video = scenarios.instance_id(fleet.host("video-1").spec)
    stand_in.set_mode(video, "slow", delay=60)
    earlier = len(stand_in.recorded())         # the request log holds the earlier tests' commands too
    process = subprocess.Popen([FAB, "audit", "-i", str(inventory), "-f", "json"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, NO_COLOR="1"))
    deadline = time.monotonic() + 60

    def polled_after_sending():
        recorded = stand_in.recorded()[earlier:]
        sent = next((n for n, r in enumerate(recorded) if r["action"] == "SendCommand" and video in r["InstanceIds"]),
                    None)
        return sent is not None and any(r["action"] in POLLS for r in recorded[sent + 1:])
    while not polled_after_sending():       # Ctrl-C lands while the audit waits for the command
        assert time.monotonic() < deadline and process.poll() is None, "the command was never sent and polled"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    cancelled = {i for r in stand_in.recorded()[earlier:] if r["action"] == "CancelCommand" for i in r["InstanceIds"]}
    assert video in cancelled           # ai-1 too, if its agent had not finished yet
    assert cancelled <= {video, scenarios.instance_id(fleet.host("ai-1").spec)}
    hosts = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert hosts["video-1"]["verdict"] == "unknown"


def test_hosts_with_the_same_command_share_send_commands_of_at_most_50(fleet, mixed):
    """120 instances (all standing for api-1) running the same command: a few SendCommands of at
    most 50 ids (hosts arrive over time, so a batch may close before it is full), every host its
    own answer."""
    _, stand_in = mixed
    before = len(stand_in.recorded("SendCommand"))
    outcomes, _, _ = answers_of_many_instances(fleet, mixed, 120, 0x100, timeout=30)
    assert [(o.kind, o.stdout.strip()) for o in outcomes] == [("ok", "42")] * 120
    sent = stand_in.recorded("SendCommand")[before:]
    sizes = [len(r["InstanceIds"]) for r in sent]
    assert sum(sizes) == 120 and max(sizes) <= 50 and len(sizes) <= 4, sizes      # batched, never one per host
    assert {r["MaxConcurrency"] for r in sent} == {"120"}


def test_150_throttled_instances_are_all_audited_in_few_calls_each(fleet, mixed):
    """AWS's limits at scale, served by the stand-in: buckets far below what 150 instances ask at
    once, invocations unknown for 5 s after SendCommand (the first commands finish sooner than that
    even on a loaded machine, so their GetCommandInvocation meets it), pages of 25. Every host answers,
    none fails because of it, the pace adapts (few throttled calls, each retried), and the calls
    per instance stay at most 3 on average."""
    _, stand_in = mixed
    stand_in.set_policy(rates={"SendCommand": [1, 2], "ListCommandInvocations": [4, 4],
                               "GetCommandInvocation": [10, 10]}, invocation_delay=5.0, page_size=25)
    before = len(stand_in.recorded())
    outcomes, session, specs = answers_of_many_instances(fleet, mixed, 150, 0x1000, timeout=60)
    assert specs[0].target.api_rate == 20           # the default pace: above this stand-in's buckets
    assert [(o.kind, o.stdout.strip()) for o in outcomes] == [("ok", "42")] * 150
    answered = stand_in.recorded()[before:]
    errors = {code: sum(1 for r in answered if r.get("error") == code)
              for code in ("ThrottlingException", "InvocationDoesNotExist")}
    assert errors["ThrottlingException"] > 0 and errors["InvocationDoesNotExist"] > 0, errors     # really met
    assert any(r.get("NextToken") for r in answered if r["action"] == "ListCommandInvocations")   # pages followed
    assert len(answered) / 150 <= 3, (len(answered), errors)
    counted = session.transport("community.aws.aws_ssm").api_calls()
    recorded = {action: (sum(1 for r in answered if r["action"] == action),
                         sum(1 for r in answered if r["action"] == action and r.get("error") == "ThrottlingException"))
                for action in ("SendCommand", "ListCommandInvocations", "GetCommandInvocation")}
    assert {action: counted.get(camel_to_snake(action)) for action in recorded} == recorded


def test_the_stand_in_runs_a_command_as_the_real_ssm_agent_does(fleet, mixed):
    """Root, `sh` on a script file in an orchestration directory, the agent's own environment: no
    HOME or USER, a minimal PATH, PWD that is not the working directory, nothing of an SSH login
    (no DOCKER_HOST), and the host's Docker at the default socket; Details output cut at 2,500."""
    import boto3
    inventory, stand_in = mixed
    key_id, secret = fleet.sandbox.keys()[ADMIN_USER]
    ssm = boto3.client("ssm", region_name=scenarios.REGION, endpoint_url=stand_in.endpoint,
                       aws_access_key_id=key_id, aws_secret_access_key=secret)
    instance = scenarios.instance_id(fleet.host("video-1").spec)
    script = ['echo "uid=$(id -u)"', 'echo "cwd=$(pwd -P)"', "tr '\\0' '\\n' < /proc/$$/environ",  # as exec'd
              'docker ps --format "{{.Names}}"', 'head -c 3000 /dev/zero | tr "\\0" x >&2']
    command_id = ssm.send_command(InstanceIds=[instance], DocumentName="AWS-RunShellScript",
                                  Parameters={"commands": script})["Command"]["CommandId"]
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ssm.exceptions.InvocationDoesNotExist:       # as AWS, just after SendCommand
            answer = {"Status": "Pending"}
        if answer["Status"] not in ("Pending", "InProgress") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer["Status"] == "Success", answer
    out = answer["StandardOutputContent"]
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["uid"] == "0" and "HOME" not in env and "USER" not in env and "DOCKER_HOST" not in env
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
    # the environment sh was started with says PWD /usr/bin; the working directory is elsewhere
    assert env["PWD"] == "/usr/bin" and env["cwd"] != "/usr/bin" and "orchestration" in env["cwd"]
    assert env["AWS_SSM_INSTANCE_ID"] == instance
    assert "academy-video-worker" in out                        # the host's daemon, at the default socket
    listed = ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"][0]
    assert len(listed["CommandPlugins"][0]["Output"]) == 2500
