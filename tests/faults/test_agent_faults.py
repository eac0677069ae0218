"""Fault matrix, on the host: the real agent program, run here as the controller ships it,
against hostile files (huge logs in long lines, a huge .env value, a BOM). No AWS call
leaves the machine: the app's endpoint is a closed loopback port."""
import dataclasses
import json
import os
import random
import string
import subprocess
import sys

from auditor.transports.ssh import SshTarget
from auditor import agent
from auditor.agent import wire
from auditor.transports import quote
from auditor.collect import agent_config
from auditor.inventory import HostSpec, host_settings


MB = 1024 * 1024


def run_agent_here(tmp_path, env_lines, log_text=None, log_bytes=0):
    """Facts and peak RSS of the agent run here; env_lines None makes the .env a FIFO nobody writes."""
    app = tmp_path / "app"
    app.mkdir()
    if env_lines is None:
        os.mkfifo(app / ".env")
    else:
        (app / ".env").write_bytes(env_lines)
    log = tmp_path / "worker.log"
    with open(log, "wb") as handle:
        for _ in range(log_bytes // MB):            # a few very long lines, as a runaway app writes
            handle.write(b"x" * (MB - 1) + b"\n")
        handle.write((log_text or "").encode())
    settings = host_settings({
        "roles": ["ai-worker"], "env_from": "dotenv", "app_dir": str(app), "log_max_bytes": 2 * MB,
        "timeouts": {"command": 40, "aws": 1},
        "role_defs": {"ai-worker": {"log_source": {"kind": "file", "path": str(log)}}}})
    spec = HostSpec("here", SshTarget("127.0.0.1"), python=sys.executable, settings=settings)
    config = dataclasses.replace(agent_config(spec), watch_stdin=False)
    command = agent.command_line(sys.executable, config, 40, quote)
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1], shell=True, capture_output=True,"
               " stdin=subprocess.DEVNULL); sys.stdout.write(done.stdout.decode()); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", measure, command], capture_output=True, text=True, timeout=120)
    facts_line, peak_kb = done.stdout.strip().splitlines()[-2:]
    return json.loads(facts_line), int(peak_kb) / 1024


KEY_ID = "AKIA" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(16))  # made here
ENV = ("AWS_REGION=ap-northeast-2\nAWS_ENDPOINT_URL=http://127.0.0.1:1\nAWS_ACCESS_KEY_ID=%s\n"
       "AWS_SECRET_ACCESS_KEY=canary-secret-value-123\n" % KEY_ID).encode()
TAIL = "2026-11-26 10:00:00,000 INFO SQS_MESSAGE_RECEIVED | worker=w | request_id=r | job_id=j1 | tier=basic\n"


def test_300_mb_of_long_log_lines_keep_the_agent_small(tmp_path):
    facts, peak_mb = run_agent_here(tmp_path, ENV, TAIL, log_bytes=300 * MB)
    logs = facts["inspected"][0]["logs"]
    assert logs["read"] and logs["truncated_at"] == 2 * MB
    print("agent peak RSS with 300 MB of logs: %.0f MB" % peak_mb)
    assert peak_mb < 120, peak_mb


def test_a_1_mb_env_value_fails_the_probe_alone(tmp_path):
    facts, _ = run_agent_here(tmp_path, ENV + b"HUGE=" + b"v" * MB + b"\n", TAIL)
    assert facts["probe"]["error"]["kind"] == "probe-crashed"
    assert "could not start" in facts["probe"]["error"]["message"]
    assert facts["dotenv"]["read"] and facts["inspected"][0]["logs"]["read"]     # the rest survives


def test_a_env_that_is_a_fifo_is_one_unreadable_reading_not_a_hung_host(tmp_path):
    facts, _ = run_agent_here(tmp_path, None, TAIL)     # a blocked agent would be killed at 40 s: no facts
    assert facts["dotenv"]["read"] is False and facts["dotenv"]["reason"] == "not-a-file"
    assert "is a FIFO" in facts["dotenv"]["error"]
    assert facts["inspected"][0]["logs"]["read"]          # the host's other readings survive


def test_a_bom_before_the_first_variable_is_dropped_like_docker_does(tmp_path):
    facts, _ = run_agent_here(tmp_path, b"\xef\xbb\xbf" + ENV, TAIL)
    assert "AWS_REGION" in facts["dotenv"]["env"]
    assert facts["probe"]["region"]["app"] == {"value": "ap-northeast-2", "source": "env:AWS_REGION"}


def test_no_secret_value_leaves_the_host(tmp_path):
    facts, _ = run_agent_here(tmp_path, ENV + b"AWS_ENDPOINT_URL_SQS=http://user:canary-url-pass@127.0.0.1:1\n", TAIL)
    text = json.dumps(facts)
    assert "canary-secret-value-123" not in text and "canary-url-pass" not in text
    assert KEY_ID not in text and "AKIA************" + KEY_ID[-4:] in text


def test_a_credential_no_env_declared_never_leaves_the_host(tmp_path):
    secret = "Zq8vN2mLx4Rt7YbW1cKp9Hs3Df6Gj0UaEoTiQwPy"          # made up; in no .env
    token = "IQoJb3JpZ2luX2VjEHoaDmFwLW5vcnRoZWFzdC0yIkcwRQIhAK7" * 3
    traceback = ("%s ERROR job failed | job_id=j1\nTraceback (most recent call last):\n"
                 '  File "/app/worker.py", line 10, in run\n'
                 "ValueError: signing failed key=%s sess=%s\n" % (TAIL[:23], secret, token))
    facts, _ = run_agent_here(tmp_path, ENV, TAIL + traceback)
    text = json.dumps(facts)
    assert "signing failed" in text                     # the line came through, its credentials did not
    assert secret not in text and token[:40] not in text and "[secret removed]" in text


def test_the_agent_exits_0_with_its_stdin_open_as_over_ssh(tmp_path):
    """Over SSH the agent watches stdin to stop when the connection closes; at its normal end it
    must not kill its own process group (that lost the real status: --debug said exit -1)."""
    (tmp_path / "app").mkdir()
    settings = host_settings({
        "roles": ["ai-worker"], "env_from": "dotenv", "app_dir": str(tmp_path / "app"), "timeouts": {"aws": 1},
        "role_defs": {"ai-worker": {"log_source": {"kind": "file", "path": str(tmp_path / "none.log")}}}})
    spec = HostSpec("here", SshTarget("127.0.0.1"), python=sys.executable, settings=settings)
    command = agent.command_line(sys.executable, agent_config(spec), 40, quote)
    process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               start_new_session=True)
    out = process.stdout.read()             # stdin stays open, as the SSH channel keeps it
    status = process.wait(timeout=60)
    process.stdin.close()
    assert json.loads(out.decode().splitlines()[-1])["schema"] == wire.SCHEMA
    assert status == 0, status


def test_a_command_timeout_is_said_in_the_operators_number(tmp_path, monkeypatch):
    """`timeouts.command: 8`: the host's own `timeout 8` ends an agent that hangs; the finding says
    8 s, the setting the operator wrote, not the transport's wait with its grace (18 s)."""
    from auditor import transports
    from auditor.collect import run_agent
    from auditor.transports import Session
    from local_transport import REGISTRY_LINE
    monkeypatch.setitem(transports.BACKENDS, *REGISTRY_LINE)
    hanging = tmp_path / "python3"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    settings = host_settings({"roles": ["ai-worker"], "timeouts": {"command": 8}})
    spec = HostSpec("slow", SshTarget("127.0.0.1"), python=str(hanging), settings=settings, connection="local-shell")
    run = run_agent(spec, b"k" * 32, Session())
    assert run.outcome.kind == "timeout", run.outcome
    assert run.outcome.detail == "the remote command ran past 8s and was stopped", run.outcome.detail
