"""The aws_ec2 inventory subset, on DescribeInstances-shaped data (pure)."""
import pytest

from auditor.ec2_inventory import document_from_instances, instance_vars
from auditor.errors import InventoryError


def instance(name=None, role=None, ip="10.0.1.10", **tags):
    found = {"Name": name, "Role": role, **tags}
    return {"InstanceId": "i-%s" % (name or "x"), "PrivateIpAddress": ip, "Placement": {"AvailabilityZone": "ap-northeast-2a"},
            "Tags": [{"Key": k, "Value": v} for k, v in found.items() if v is not None]}


CONFIG = {"plugin": "amazon.aws.aws_ec2", "regions": ["ap-northeast-2"], "hostnames": ["tag:Name", "instance-id"],
          "keyed_groups": [{"key": "tags.Role", "prefix": "role"}], "compose": {"ansible_host": "tags.SshAddress",
                                                                                "ansible_user": "'ec2-user'"}}


def test_instances_become_hosts_and_keyed_groups():
    document = document_from_instances(CONFIG, [instance("api-1", "api", SshAddress="10.9.9.9"),
                                                instance("video-1", "video-worker"), instance(None, None)], "x.aws_ec2.yml")
    children = document["all"]["children"]
    assert list(children["aws_ec2"]["hosts"]) == ["api-1", "video-1", "i-x"]
    api = children["aws_ec2"]["hosts"]["api-1"]
    assert api["ansible_host"] == "10.9.9.9" and api["ansible_user"] == "ec2-user"
    assert children["aws_ec2"]["hosts"]["video-1"]["ansible_host"] is None     # composed from a missing tag
    assert children["role_api"]["hosts"] == {"api-1": None}
    assert children["role_video_worker"]["hosts"] == {"video-1": None}


def test_without_compose_the_private_ip_is_the_address():
    config = dict(CONFIG, compose={})
    host = document_from_instances(config, [instance("ai-1", "ai-worker")], "x")["all"]["children"]["aws_ec2"]["hosts"]["ai-1"]
    assert host["ansible_host"] == "10.0.1.10"
    assert instance_vars(instance("ai-1"))["placement"] == {"availability_zone": "ap-northeast-2a"}


def test_jinja_is_refused_with_a_fix():
    with pytest.raises(InventoryError, match="not supported"):
        document_from_instances(dict(CONFIG, compose={"ansible_host": "{{ private_ip_address }}"}), [], "x")
