"""The app's environment as the host holds it: the .env file (read, never evaluated) and the
variables of a container, each value described by its fingerprint (public ones also in clear).
Every non-public value seen is remembered, so that no copy of it leaves the host."""
import errno
import json
import os
import re
import stat

try:
    from .wire import Unread
    from .appenv import env_keys, queue_entries, resolved_regions, value_problems
    from .redact import describe_credentials, fingerprint, mask_key_id, mask_key_ids_in, scrub_shapes, \
        strip_url_user, strip_url_users_in
except ImportError:  # shipped: the sources are concatenated (see agent.program)
    pass

MAX_ENV = 300
MAX_DOTENV_BYTES = 16 * 1024 * 1024      # a .env is small; a huge value fails the probe alone
# Free text (log lines, errors, the check script's output) is searched for secret values of at
# least this length. Shorter values are fingerprinted in every structured field, but not searched
# for in text: measured on the sandbox, a 5-letter non-public value (`video`) matched inside
# container names, roles and paths and corrupted the facts themselves.
MIN_SECRET = 8
SECRETS = set()             # every non-public value seen (.env, container env): never sent as is
PUBLIC_VALUES = set()       # every public value seen: shown in clear, so never scrubbed from inside
# a region name is no secret, whatever variable holds it (a Celery app's own region variable is not
# known to be public): scrubbing it would erase the region from the probe's own findings
REGION_SHAPE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


def scrub_outgoing(text, domain):
    """The last pass over everything that leaves the host: any secret value the agent knows
    (MIN_SECRET characters or more) is replaced by its fingerprint where it stands as a whole token
    and is not part of a public value (a host `127.0.0.1` in a private variable must not corrupt a
    public endpoint URL); then credentials by their shape (those no .env declared), full key ids
    masked, URL user info removed."""
    for value in sorted(SECRETS, key=len, reverse=True):
        if any(value in shown for shown in PUBLIC_VALUES):
            continue                    # shown in clear anyway: scrubbing it would only corrupt the public one
        text = _whole_token(json.dumps(value)[1:-1]).sub("fp:" + fingerprint(domain, value), text)
    return strip_url_users_in(mask_key_ids_in(scrub_shapes(text)))


def _whole_token(encoded):
    """The value where its ends are not glued to more of a word (an escape such as `\\n` is a break)."""
    starts = r"(?:(?<=\\[nrt\"])|(?<![A-Za-z0-9_]))" if encoded[:1].isalnum() else ""
    ends = r"(?![A-Za-z0-9_])" if encoded[-1:].isalnum() else ""
    return re.compile(starts + re.escape(encoded) + ends)


def parse_dotenv(text, loader="compose"):
    """KEY=VALUE lines as the consumer reads them. docker --env-file takes the
    rest of the line verbatim; compose and python-dotenv strip `export`, quotes
    and (unquoted) inline comments. CRLF endings are dropped by all three."""
    values = {}
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if loader != "docker" and stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        if "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        key = key.strip()
        if loader == "docker":
            values[key] = value
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def read_dotenv(path, loader):
    """(values, None) or (None, (reason, detail)). A BOM is dropped (utf-8-sig), as Docker and
    python-dotenv drop it; the file is parsed, never evaluated. Opened without blocking and read only
    if it is a regular file, with a bound: a FIFO or a device at that path would otherwise hold the
    whole agent until its timeout, and every other reading of the host with it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        return None, _unread(error)
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else \
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
            return None, (Unread.NOT_A_FILE, "%s is %s" % (path, kind))
        try:
            content = handle.read(MAX_DOTENV_BYTES + 1)
        except OSError as error:
            return None, _unread(error)
    if len(content) > MAX_DOTENV_BYTES:
        return None, (Unread.FAILED, "%s holds more than %d bytes: not a .env" % (path, MAX_DOTENV_BYTES))
    return parse_dotenv(content.decode("utf-8-sig", errors="replace"), loader), None


def _unread(error):
    reason = {errno.ENOENT: Unread.NOT_FOUND, errno.EACCES: Unread.PERMISSION_DENIED,
              errno.EPERM: Unread.PERMISSION_DENIED}.get(error.errno, Unread.FAILED)
    return reason, error.strerror


def describe_env(env, domain, public, key_ids):
    """Every variable as a fingerprint (of `domain` and the value); the `public` ones also in clear,
    the `key_ids` masked."""
    public, key_ids = set(public), set(key_ids)
    described = {}
    for name in sorted(env)[:MAX_ENV]:
        value = env[name]
        entry = {"fp": fingerprint(domain, value)}
        if name not in public and len(value) >= MIN_SECRET and not REGION_SHAPE.match(value):
            SECRETS.add(value)
        if name in public:
            entry["value"] = value
            PUBLIC_VALUES.add(value)
        elif name in key_ids:
            entry["masked"] = mask_key_id(value)
        described[name] = entry
    return described


def static_reading(config, values):
    """What the .env alone says (when the app's container is not running), by the same rules the
    probe applies to a live environment: regions, masked key id and fingerprints, queue names;
    no AWS call behind it."""
    probe = config.probe
    key_id, secret, source = env_keys(probe.credentials, values)
    regions = resolved_regions(probe.region, values)
    return {"static": True, "region": regions,
            "credentials": describe_credentials(probe.fingerprint_domain, key_id, secret,
                                                values.get("AWS_SESSION_TOKEN"), source),
            "queues": queue_entries(probe.queues, values, regions["app"]["value"]),
            "settings_module": values.get(probe.settings_module_env or ""),
            "endpoints": {k: strip_url_user(v) for k, v in sorted(values.items()) if k.startswith("AWS_ENDPOINT_URL")},
            "env_problems": value_problems(probe, values)}
