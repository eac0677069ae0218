"""Fuzz: mutated inventories and command lines (types, nulls, ranges, unicode and control
characters, huge values) end in exit 0, 1 or 2 (3 would be the auditor's own bug, caught at
the top) and never in a traceback."""
import random

import pytest
import yaml

from faultkit import free_port

VALUES = [None, True, 0, -1, 2 ** 63, 1.5, "", "x" * 100000, "\x1b[2J\x00", "\u202e名前", [], {}, [None],
          {"a": None}, "1h", "-3", "üñí", "${HOME}", "$(reboot)", "'; rm -rf /; '"]
KEYS = ["parallel", "log_window", "log_max_bytes", "timeouts", "env_from", "app_python", "dotenv_format",
        "roles", "queues", "role_defs", "region", "credentials", "known_hosts", "public_env", "cross_check"]
HOST_KEYS = ["ansible_host", "ansible_port", "ansible_user", "ansible_python_interpreter",
             "ansible_ssh_common_args", "ansible_ssh_private_key_file"]
ARGS = [["--hosts", "\x1b]0;x\x07"], ["--roles", ""], ["--parallel", "1e9"], ["--format", "\u202ehtml"],
        ["--matrix-only", "--format", "html"], ["--output", ""], ["--hosts", "api-1,api-1"], []]


def mutated(seed, tmp_path):
    rng = random.Random(seed)
    known = tmp_path / "known_hosts"
    known.touch()
    host = {"ansible_host": "127.0.0.1", "ansible_port": free_port()}
    auditor = {"known_hosts": str(known), "roles": ["api"], "timeouts": {"connect": 1, "command": 5, "aws": 1}}
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.6:
            auditor[rng.choice(KEYS)] = rng.choice(VALUES)
        else:
            host[rng.choice(HOST_KEYS)] = rng.choice(VALUES)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"vars": {"auditor": auditor}, "hosts": {"api-1": host}}},
                                   allow_unicode=True))
    return path, rng.choice(ARGS)


@pytest.mark.parametrize("seed", range(24))
def test_mutated_inventory_and_arguments_exit_cleanly(fab, tmp_path, seed):
    path, args = mutated(seed, tmp_path)
    for task in (["hosts"], ["audit"]):
        done = fab(*task, "-i", str(path), *(args if task == ["audit"] else []), timeout=90)
        assert done.returncode in (0, 1, 2), (task, args, done.returncode, done.stderr[-500:])
        assert "\x1b[2J" not in done.stderr and "\x1b]0;" not in done.stderr
