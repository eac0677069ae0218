"""EC2 as the inventory: instances tagged in the sandbox's EC2 API (moto) are
found with the controller's profile, grouped by tag, given their group_vars and
host_vars, and audited over real SSH."""
import subprocess
import sys
from pathlib import Path

import yaml

PLUGIN_FILE = """\
plugin: amazon.aws.aws_ec2
regions: [ap-northeast-2]
profile: sandbox-production
filters: {tag:Project: academy, instance-state-name: running}
hostnames: [tag:Name]
keyed_groups: [{key: tags.Role, prefix: role}]
compose: {ansible_host: tags.SshAddress}
"""


def test_hosts_come_from_ec2_tags_and_are_audited(fleet, tmp_path, monkeypatch):
    inventory = yaml.safe_load(fleet.use("healthy").read_text())
    sandbox = fleet.sandbox
    ec2 = sandbox.moto.admin_client("ec2", sandbox.keys())
    image = ec2.describe_images()["Images"][0]["ImageId"]
    hosts = {name: spec for group in inventory["all"]["children"].values() for name, spec in group["hosts"].items()}
    roles = {name: group["vars"]["auditor"]["roles"][0]
             for group in inventory["all"]["children"].values() for name in group["hosts"]}
    for name, spec in list(hosts.items()) + [("other-team-box", {"ansible_host": "127.0.0.99"})]:
        tags = {"Name": name, "Role": roles.get(name, "api"), "SshAddress": spec["ansible_host"],
                "Project": "academy" if name in roles else "billing"}
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])

    (tmp_path / "fleet.aws_ec2.yml").write_text(PLUGIN_FILE)
    for sub in ("group_vars", "host_vars"):
        (tmp_path / sub).mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(inventory["all"]["vars"]))
    for role in set(roles.values()):
        (tmp_path / "group_vars" / ("role_" + role.replace("-", "_") + ".yml")).write_text(
            yaml.safe_dump({"auditor": {"roles": [role]}}))
    for name, spec in hosts.items():
        (tmp_path / "host_vars" / (name + ".yml")).write_text(yaml.safe_dump({"auditor": spec["auditor"]}))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(sandbox.client_dir / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(sandbox.client_dir / "aws-credentials"))

    result = fleet.audit_until(lambda r: r.exit_code == 0, inventory_path=tmp_path / "fleet.aws_ec2.yml")
    assert sorted(h.report.name for h in result.hosts) == sorted(hosts)
    assert {h.report.name: h.report.roles for h in result.hosts} == {n: (r,) for n, r in roles.items()}
    assert {h.report.name: h.verdict for h in result.hosts} == {name: "ok" for name in hosts}
    assert all(h.report.address == hosts[h.report.name]["ansible_host"] for h in result.hosts)

    # `fab hosts` (which inherits the AWS_* variables above) lists them before any audit
    listed = subprocess.run([str(Path(sys.executable).parent / "fab"), "hosts", "-i", str(tmp_path / "fleet.aws_ec2.yml")],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "role_video_worker" in listed.stdout and "other-team-box" not in listed.stdout
    assert listed.stdout.rstrip().endswith("%d host(s)" % len(hosts))
