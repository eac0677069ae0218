"""A new transport is one module and one registry line: the toy `sh -c` backend (local_transport.py)
audits a host through the whole command line, and no transport's name leaks out of its module."""
import io
import json
import re
import tokenize
from pathlib import Path

import yaml

from auditor import transports
from local_transport import REGISTRY_LINE

PACKAGE = Path(transports.__file__).resolve().parents[1]


def test_a_toy_transport_needs_one_module_and_one_registry_line_and_audits_a_host(fab, tmp_path, monkeypatch):
    monkeypatch.setitem(transports.BACKENDS, *REGISTRY_LINE)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"here": {
        "ansible_connection": "local-shell", "ansible_python_interpreter": "python3",
        "auditor": {"roles": ["ai-worker"], "env_from": "dotenv", "app_dir": str(tmp_path), "imds_endpoint": None,
                    "timeouts": {"command": 30, "aws": 1},
                    "role_defs": {"ai-worker": {"log_source": {"kind": "file", "path": str(tmp_path / "w.log")}}}}}}}}))
    listed = fab("hosts", "-i", str(inventory))
    assert listed.returncode == 0 and "local-shell" in listed.stdout, listed.stderr
    done = fab("audit", "-i", str(inventory), "-f", "json")
    (host,) = json.loads(done.stdout)["hosts"]
    assert host["reachable"] and host["transport"]["kind"] == "ok", host["transport"]
    assert host["dotenv"]["unread"]["reason"] == "not-found"     # the agent really ran here, and looked


def _names_in(path):
    """The identifiers and string literals of a module (its comments and docstrings are prose)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    for index, token in enumerate(tokens):
        docstring = token.type == tokenize.STRING and (index == 0 or tokens[index - 1].type in (
            tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT))
        if token.type == tokenize.NAME or token.type == tokenize.STRING and not docstring:
            yield token.start[0], token.string


def test_a_transports_name_stays_in_its_own_module():
    """`ssm`, `openssh` and `paramiko` appear, as code, only in their own modules, the registry line,
    the finding codes' rows (codes.py) and the settings schema's line for the backend's own settings
    sub-record (`auditor.ssm`)."""
    allowed = {"ssm": {"transports/ssm.py", "codes.py"}, "openssh": {"transports/openssh.py"},
               "paramiko": {"transports/paramiko_ssh.py"}}
    registry = PACKAGE / "transports" / "__init__.py"
    registry_lines = {n for n, line in enumerate(registry.read_text().splitlines(), 1) if "Backend(" in line or
                      line.startswith(("ALIASES", "DEFAULT")) or line.lstrip().startswith('"aws_ssm"')}
    leaks = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE))
        for line, text in _names_in(path):
            for name, homes in allowed.items():
                if re.search(r"(?<![a-z])%s(?![a-z])" % name, re.sub(r"([a-z])([A-Z])", r"\1_\2", text).lower()) \
                        and relative not in homes and \
                        not (path == registry and line in registry_lines) and \
                        not (relative == "settings.py" and text in ("ssm", "SsmSettings", "transports.ssm")):
                    leaks.append("%s:%d %s" % (relative, line, text))
    assert leaks == []
