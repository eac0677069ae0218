"""EC2 as an inventory source: a subset of Ansible's `amazon.aws.aws_ec2` plugin file.

    plugin: amazon.aws.aws_ec2          # or aws_ec2
    regions: [ap-northeast-2]
    profile: academy-prod               # optional (aliases: aws_profile, boto_profile)
    filters: {tag:Project: academy, instance-state-name: running}
    hostnames: [tag:Name, private-ip-address]
    keyed_groups: [{key: tags.Role, prefix: role}]      # -> group role_api
    compose: {ansible_host: private_ip_address}

The instances become an ordinary inventory document (groups, hosts, host
variables), so `group_vars/` and `host_vars/` beside the file, precedence and
validation work exactly as for a YAML inventory. `compose` takes attribute
paths (`tags.SshAddress`, `placement.availability_zone`) or quoted literals,
not Jinja. Read-only: one paginated DescribeInstances per region.
"""
import re

from .errors import InventoryError, aws_error_code

PLUGINS = ("aws_ec2", "amazon.aws.aws_ec2")
OPTIONS = ("plugin", "regions", "profile", "aws_profile", "boto_profile", "filters", "hostnames",
           "keyed_groups", "compose")
HOSTNAME_SOURCES = {"instance-id": "instance_id", "private-ip-address": "private_ip_address",
                    "ip-address": "public_ip_address", "dns-name": "public_dns_name",
                    "private-dns-name": "private_dns_name"}
DEFAULT_HOSTNAMES = ["tag:Name", "private-ip-address"]


def is_ec2_inventory(document):
    return isinstance(document, dict) and document.get("plugin") in PLUGINS


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def instance_vars(instance):
    """DescribeInstances' CamelCase -> the snake_case variables Ansible's plugin exposes, tags as a dict."""
    def convert(value):
        if isinstance(value, dict):
            return {_snake(k): convert(v) for k, v in value.items()}
        return value
    result = convert({k: v for k, v in instance.items() if k != "Tags"})
    result["tags"] = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    return result


def _lookup(variables, path):
    value = variables
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _expression(path, text, where):
    """A compose/keyed_groups expression: a quoted literal or an attribute path."""
    text = str(text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return lambda variables: text[1:-1]
    if not re.match(r"^[A-Za-z_][\w]*(\.[\w-]+)*$", text):
        raise InventoryError("%s: %s: %r is not supported\n  fix: use an attribute path such as "
                             "private_ip_address or tags.Role, or a quoted string" % (path, where, text))
    return lambda variables: _lookup(variables, text)


def _group_name(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _hostname(variables, hostnames, path):
    for source in hostnames:
        if source.startswith("tag:"):
            value = variables["tags"].get(source[4:])
        elif source in HOSTNAME_SOURCES:
            value = variables.get(HOSTNAME_SOURCES[source])
        else:
            raise InventoryError("%s: hostnames: %r is not supported\n  fix: use tag:NAME or one of %s"
                                 % (path, source, ", ".join(HOSTNAME_SOURCES)))
        if value:
            return str(value)
    return None


def document_from_instances(config, instances, path):
    """Pure: plugin settings + instances -> an inventory document (`all` and its children)."""
    hostnames = config.get("hostnames") or DEFAULT_HOSTNAMES
    compose = {k: _expression(path, v, "compose.%s" % k) for k, v in (config.get("compose") or {}).items()}
    keyed = []
    for index, rule in enumerate(config.get("keyed_groups") or []):
        if not isinstance(rule, dict) or "key" not in rule:
            raise InventoryError("%s: keyed_groups[%d] needs a key\n  fix: e.g. {key: tags.Role, prefix: role}"
                                 % (path, index))
        keyed.append((_expression(path, rule["key"], "keyed_groups[%d].key" % index),
                      str(rule.get("prefix", "")), str(rule.get("separator", "_"))))
    children = {"aws_ec2": {"hosts": {}}}
    for instance in instances:
        variables = instance_vars(instance)
        name = _hostname(variables, hostnames, path)
        if name is None:
            continue                      # as Ansible does: no name, no host
        host = dict(variables, ansible_host=variables.get("private_ip_address"))
        host.update({key: evaluate(variables) for key, evaluate in compose.items()})
        children["aws_ec2"]["hosts"][name] = host
        for evaluate, prefix, separator in keyed:
            value = evaluate(variables)
            if value in (None, ""):
                continue
            group = _group_name(prefix + separator + str(value) if prefix else str(value))
            children.setdefault(group, {"hosts": {}})["hosts"][name] = None
    return {"all": {"children": children}}


def describe_instances(config, path):
    """DescribeInstances in every configured region, with the controller's credentials."""
    import boto3
    from botocore.config import Config

    unknown = [k for k in config if k not in OPTIONS]
    if unknown:
        raise InventoryError("%s: unsupported aws_ec2 option(s) %s\n  fix: the auditor reads %s"
                             % (path, ", ".join(map(str, unknown)), ", ".join(OPTIONS)))
    regions = config.get("regions")
    if not regions:
        raise InventoryError("%s: aws_ec2 needs regions\n  fix: add `regions: [ap-northeast-2]`" % path)
    filters = [{"Name": str(k), "Values": [str(v) for v in (v if isinstance(v, list) else [v])]}
               for k, v in (config.get("filters") or {}).items()]
    profile = config.get("profile") or config.get("aws_profile") or config.get("boto_profile")
    botocore_config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=20)
    instances = []
    try:
        session = boto3.Session(profile_name=profile)
        for region in regions:
            ec2 = session.client("ec2", region_name=region, config=botocore_config)
            for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
                instances += [i for reservation in page["Reservations"] for i in reservation["Instances"]]
    except Exception as error:  # credentials, profile, endpoint: the inventory cannot be read
        raise InventoryError("%s: EC2 DescribeInstances failed: %s (%s)\n  fix: give the controller "
                             "ec2:DescribeInstances, and check profile and regions" % (path, aws_error_code(error), error))
    return instances
