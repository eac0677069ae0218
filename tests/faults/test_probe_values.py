"""The SQS probe, run here as the agent ships it, on values the app's libraries refuse or
misread: each becomes one field's problem; every other reading survives; no secret is shown.
No AWS call leaves the machine (the endpoint is a closed loopback port)."""
import json
import os
import random
import string
import subprocess
import sys

import dataclasses

from auditor.transports.ssh import SshTarget
from auditor import agent
from auditor.agent.wire import to_wire
from auditor.collect import agent_config
from auditor.inventory import HostSpec, host_settings

# the reference profile's probe settings, as the controller sends them
CONFIG = to_wire(dataclasses.replace(agent_config(HostSpec("here", SshTarget("127.0.0.1"), settings=host_settings(
    {"timeouts": {"aws": 1}, "settings_module_env": "DJANGO_SETTINGS_MODULE"}))).probe, user_agent="fleet-auditor/test"))
KEY_ID = "AKIA" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(16))  # made here
BASE = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "PATH": os.environ["PATH"]}


def probe(**env):
    done = subprocess.run([sys.executable, "-c", agent.program("sqs_probe.py"), json.dumps(CONFIG)],
                          env=dict(BASE, **env), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def problems(result):
    return {p["variable"]: p for p in result["env_problems"]}


def test_a_broken_profile_an_invalid_endpoint_and_odd_regions_are_each_one_field():
    result = probe(AWS_PROFILE="nope", AWS_ENDPOINT_URL_SQS="not a url", AWS_REGION="ap-northeast-2 ",
                   AWS_DEFAULT_REGION='"us-west-2"')
    found = problems(result)
    assert found["AWS_PROFILE"]["problems"] == ["profile-not-found"]
    assert found["AWS_ENDPOINT_URL_SQS"]["problems"] == ["invalid-endpoint-url"]
    assert found["AWS_REGION"]["problems"] == ["surrounding-whitespace"]
    assert found["AWS_DEFAULT_REGION"] == {"variable": "AWS_DEFAULT_REGION", "public": True, "length": 11,
                                           "problems": ["surrounding-quotes"], "value": '"us-west-2"'}
    assert result["region"]["app"]["value"] == "ap-northeast-2 "        # the other readings survive
    assert "ProfileNotFound" in result["field_errors"]["session"]


def test_secrets_get_structural_facts_only():
    result = probe(AWS_REGION="ap-northeast-2", AWS_ACCESS_KEY_ID=KEY_ID,
                   AWS_SECRET_ACCESS_KEY="canary-secret\t")
    secret = problems(result)["AWS_SECRET_ACCESS_KEY"]
    assert secret == {"variable": "AWS_SECRET_ACCESS_KEY", "public": False, "length": 14,
                      "problems": ["surrounding-whitespace"]}
    assert "canary-secret" not in json.dumps(result)


def test_an_invalid_region_name_and_an_unknown_region():
    bad = probe(AWS_REGION="ap northeast 2", AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY="x" * 40)
    assert problems(bad)["AWS_REGION"]["problems"] == ["invalid-region-name"]
    assert all(q.get("error") for q in bad["queues"])         # each queue says the client was refused
    unknown = probe(AWS_REGION="ap-northeast-9", AWS_ACCESS_KEY_ID=KEY_ID,
                    AWS_SECRET_ACCESS_KEY="x" * 40)
    assert problems(unknown)["AWS_REGION"]["problems"] == ["unknown-region"]
