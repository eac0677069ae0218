"""How the app reads its environment: its region, its preferred keys, its queue
names, and values its libraries would refuse or misread. Pure functions of an
environment mapping, so the SQS probe (on the live environment) and the host
agent (on a .env, when the app is not running) read it alike.

`agent.program()` prepends this file's source to each shipped program.
"""
import re

try:
    from .redact import strip_url_user
except ImportError:  # shipped: redact.py's source comes first (see agent.program)
    pass

REGION_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")    # botocore's own check
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def first_set(env, names):
    for name in names:
        if env.get(name):
            return name, env[name]
    return None, None


def app_region(region_config, env):
    """{value, source} of the region the app itself uses: its first set variable, else its default."""
    name, value = first_set(env, region_config.env)
    if name:
        return {"value": value, "source": "env:" + name}
    return {"value": region_config.default, "source": "app-default"}


def resolved_regions(region_config, env, profile_region=None):
    """The region as the app, boto3 and AWS CLI v2 each resolve it from env, with the source.
    `profile_region`: what boto3's config file says (known only where boto3 runs)."""
    if env.get("AWS_DEFAULT_REGION"):
        boto = {"value": env["AWS_DEFAULT_REGION"], "source": "env:AWS_DEFAULT_REGION"}
    else:
        boto = {"value": profile_region, "source": "config-file" if profile_region else None}
    name, value = first_set(env, ["AWS_REGION", "AWS_DEFAULT_REGION"])
    cli = {"value": value, "source": "env:" + name} if name else \
        {"value": profile_region, "source": "config-file" if profile_region else None}
    return {"app": app_region(region_config, env), "boto3": boto, "cli": cli}


def preferred_keys(pairs, env):
    """(key id, secret, source) of the first preferred pair set in env, else (None, None, None)."""
    for pair in pairs:
        if env.get(pair.key_id) and env.get(pair.secret):
            return env[pair.key_id], env[pair.secret], "env:" + pair.key_id
    return None, None, None


def env_keys(pairs, env):
    """(key id, secret, source) from env alone: a preferred pair, else AWS_ACCESS_KEY_ID's."""
    key_id, secret, source = preferred_keys(pairs, env)
    if not key_id and env.get("AWS_ACCESS_KEY_ID"):
        return env["AWS_ACCESS_KEY_ID"], env.get("AWS_SECRET_ACCESS_KEY"), "env:AWS_ACCESS_KEY_ID"
    return key_id, secret, source


def queue_entries(queues_config, env, region):
    """One entry per configured queue: its key, the name the app resolves, where from, the region."""
    entries = []
    for key, queue in queues_config.items():
        name, source = queue_name(queue, env)
        entries.append({"key": key, "name": name, "name_source": source, "region": region})
    return entries


def queue_name(queue, env):
    """(name, source) of one configured queue: its variable if set, else the profile's name."""
    if queue.env and env.get(queue.env):
        return env[queue.env], "env:" + queue.env
    return queue.name, "profile"


def shape_problems(value):
    """What a loader leaves in a value that the library will not strip: no value is shown."""
    problems = []
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        problems.append("surrounding-quotes")
    if value != value.strip():
        problems.append("surrounding-whitespace")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value.strip()):
        problems.append("control-characters")
    return problems


def value_problems(config, env, known_regions=None, profiles=None):
    """[{variable, public, value (public only), length, problems}] for the variables the app's AWS
    libraries read, when a value would be refused or read otherwise than it looks (`config`: the
    probe's ProbeConfig)."""
    region_variables = list(config.region.env) + ["AWS_DEFAULT_REGION", "AWS_REGION"]
    secret_variables = list(CREDENTIAL_VARIABLES)
    for pair in config.credentials:
        secret_variables += [pair.key_id, pair.secret]
    found = []
    for name in sorted(set(region_variables) | set(secret_variables) | {"AWS_PROFILE"} |
                       {n for n in env if n.startswith("AWS_ENDPOINT_URL")}):
        value = env.get(name)
        if value is None:
            continue
        problems = shape_problems(value)
        if name in region_variables and not problems:
            if not REGION_NAME.match(value):
                problems.append("invalid-region-name")
            elif known_regions and value not in known_regions:
                problems.append("unknown-region")
        if name.startswith("AWS_ENDPOINT_URL") and not problems and \
                not re.match(r"^https?://[^\s/?#]+(/[^\s]*)?$", value):
            problems.append("invalid-endpoint-url")
        if name == "AWS_PROFILE" and not problems and profiles is not None and value not in profiles:
            problems.append("profile-not-found")
        if problems:
            public = name not in secret_variables
            entry = {"variable": name, "public": public, "length": len(value), "problems": problems}
            if public:
                entry["value"] = strip_url_user(value)
            found.append(entry)
    return found
