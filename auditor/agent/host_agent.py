"""Host agent: the runbook's look at one host, in one run, as one JSON document.

Started by the controller as `python3 -c BOOTSTRAP AGENT CONFIG PROBE` (all
three packed in argv; PROBE is the source run in the app's environment).
Standard library only, Python 3.7+. It only reads: `docker ps`, `docker
inspect`, `docker logs`, the .env file, and the SQS probe (read-only) in the
app's environment. Every subprocess has a timeout; output is bounded.
"""
import base64
import calendar
import collections
import errno
import glob
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

try:
    from .appenv import app_region, first_set, preferred_keys, queue_name, value_problems
    from .redact import describe_credentials, fingerprint, mask_key_id, mask_key_ids_in, strip_url_user, \
        strip_url_users_in
except ImportError:  # shipped: redact.py's and appenv.py's sources are prepended (see agent.program)
    pass

SCHEMA = "host-facts/2"
MAX_JOBS = 100
MAX_ENV = 300
STEP_TIMEOUT = 20
# Free text (log lines, errors, the check script's output) is searched for secret values of at
# least this length. Shorter values are fingerprinted in every structured field, but not searched
# for in text: measured on the sandbox, a 5-letter non-public value (`video`) matched inside
# container names, roles and paths and corrupted the facts themselves.
MIN_SECRET = 8
DEADLINE = [None]           # the agent's time budget: every step ends before it
SECRETS = set()             # every non-public value seen (.env, container env): never sent as is
FACTS = {}                  # what was gathered so far, printed even when the budget runs out
FINISHED = threading.Event()    # the facts are out: from then on the agent exits with its own status


def remaining(timeout):
    """A step's timeout, cut to what is left of the agent's budget."""
    if DEADLINE[0] is None:
        return timeout
    return min(timeout, DEADLINE[0] - time.time())


def scrub_outgoing(text, domain):
    """The last pass over everything that leaves the host: any secret value the agent knows
    (MIN_SECRET characters or more) is replaced by its fingerprint, full key ids are masked,
    URL user info is removed."""
    for value in sorted(SECRETS, key=len, reverse=True):
        text = text.replace(json.dumps(value)[1:-1], "fp:" + fingerprint(domain, value))
    return strip_url_users_in(mask_key_ids_in(text))


def timed(step, function, *args):
    """function(*args), its duration recorded under FACTS["timings"][step] (shown by --debug)."""
    started = time.time()
    try:
        return function(*args)
    finally:
        FACTS.setdefault("timings", {})[step] = round(time.time() - started, 3)


COMPRESSED = "fleet-facts-z1:"      # a compressed facts line (transports with a small output limit: SSM)


def emit_facts(config):
    text = scrub_outgoing(json.dumps(FACTS), config["digest_domain"])
    if config.get("compress_output"):
        text = COMPRESSED + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def stop_when_disconnected():
    """The controller closed the connection (Ctrl-C): the channel's stdin ends. Stop at once,
    with every child (docker logs, the probe), so nothing keeps running on the host."""
    def watch():
        try:        # the raw descriptor: a buffered read would hold stdin's lock at exit (a fatal error)
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        if not FINISHED.is_set():       # at exit, killing the group would lose the real exit status
            os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def unread_reason(code, text):
    """Why a reading could not be taken, from a failed command's exit status and output."""
    lowered = text.lower()
    if code == 124:
        return "timed-out"
    if code == 127:
        return "not-found"
    if "does not support reading" in lowered:
        return "log-driver-unreadable"
    if "permission denied" in lowered:
        return "permission-denied"
    if "cannot connect to the docker daemon" in lowered or "is the docker daemon running" in lowered:
        return "daemon-down"
    return "command-failed"


def unread(code, out, err, limit=300):
    """A reading not taken: the reason and the tail of what the command said."""
    text = (err or out).strip()
    return {"read": False, "reason": unread_reason(code, text), "error": text[-limit:]}


def run(argv, timeout=STEP_TIMEOUT, input_text=None, env=None):
    """(exit status, stdout, stderr); a missing program or a timeout is a result too."""
    timeout = remaining(timeout)
    if timeout < 0.5:
        return 124, "", "%s not run: the agent's time budget ran out" % argv[0]
    try:
        done = subprocess.run(argv, input=input_text, capture_output=True, timeout=timeout, env=env,
                              universal_newlines=True, errors="replace")
        return done.returncode, done.stdout, done.stderr
    except FileNotFoundError:
        return 127, "", "%s: not found" % argv[0]
    except OSError as error:    # e.g. E2BIG: an environment too large to pass on
        return 125, "", "%s could not start: %s" % (argv[0], error.strerror)
    except subprocess.TimeoutExpired:
        return 124, "", "%s timed out after %ss" % (" ".join(argv[:3]), timeout)


# -- .env files: read, never evaluated ---------------------------------------------

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
    python-dotenv drop it; the file is parsed, never evaluated."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            return parse_dotenv(handle.read(), loader), None
    except OSError as error:
        reason = {errno.ENOENT: "not-found", errno.EACCES: "permission-denied",
                  errno.EPERM: "permission-denied"}.get(error.errno, "command-failed")
        return None, (reason, error.strerror)


def describe_env(env, config):
    """Every variable as a fingerprint; public ones also in clear, key ids masked."""
    domain, public, key_ids = config["digest_domain"], set(config["public_env"]), set(config["key_id_env"])
    described = {}
    for name in sorted(env)[:MAX_ENV]:
        value = env[name]
        entry = {"fp": fingerprint(domain, value)}
        if name not in public and len(value) >= MIN_SECRET:
            SECRETS.add(value)
        if name in public:
            entry["value"] = value
        elif name in key_ids:
            entry["masked"] = mask_key_id(value)
        described[name] = entry
    return described


# -- docker ---------------------------------------------------------------------------

def docker_facts():
    code, out, err = run(["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}"])
    if code != 0:
        reading = unread(code, out, err, 400)
        if code == 127:
            reading["reason"] = "docker-missing"
        return dict(reading, available=False), []
    containers = []
    for line in out.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        containers.append({"name": row.get("Names"), "state": row.get("State"), "status": row.get("Status"),
                           "image": row.get("Image")})
    return {"read": True, "available": True}, containers


def inspect_container(name, config):
    code, out, err = run(["docker", "inspect", "--type", "container", name])
    if code != 0:
        if "no such" in (err + out).lower():
            return {"name": name, "present": False}
        return dict(unread(code, out, err), name=name, present=None)
    try:
        data = json.loads(out)[0]
    except (ValueError, IndexError):
        return {"name": name, "present": None, "read": False, "reason": "command-failed",
                "error": "docker inspect printed no JSON: %s" % out[:200]}
    state = data.get("State", {})
    _, finished = stamp_of(state.get("FinishedAt") or "")
    window = window_seconds(config["log_window"])
    env = dict(item.split("=", 1) for item in data.get("Config", {}).get("Env") or [] if "=" in item)
    return {"name": name, "present": True, "status": state.get("Status"), "running": state.get("Running"),
            "restarting": state.get("Restarting"), "restart_count": data.get("RestartCount"),
            "exit_code": state.get("ExitCode"), "started_at": state.get("StartedAt"),
            "finished_at": state.get("FinishedAt"),
            # Docker's restart policy restarted it after it exited, within the log window: it crashed
            "exited_in_window": bool(data.get("RestartCount") and finished and finished > time.time() - window),
            "image": data.get("Config", {}).get("Image"),
            "image_id": data.get("Image"), "env": describe_env(env, config)}


STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?")
MAX_LINE = 16384            # a longer line is cut: its head is kept, the rest skipped
WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def window_seconds(window):
    """'1h', '90m', '2h30m', '3600' -> seconds."""
    text = str(window).strip()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)\s*([smhd])", text)
    return sum(int(n) * WINDOW_UNITS[unit] for n, unit in parts) or 3600


def stamp_of(line):
    """(sortable UTC text, epoch seconds) of a line's leading timestamp, or (None, None).
    Docker's RFC 3339, journald's short-iso and Python logging's asctime all match."""
    match = STAMP.search(line, 0, 48)
    if not match:
        return None, None
    day, clock, fraction = match.group(1), match.group(2), (match.group(3) or "0")[:6].ljust(6, "0")
    try:
        epoch = calendar.timegm(time.strptime(day + "T" + clock, "%Y-%m-%dT%H:%M:%S")) + int(fraction) / 1e6
    except ValueError:
        return None, None
    return "%sT%s.%sZ" % (day, clock, fraction), epoch


class LineWindow:
    """The newest lines of a stream, never more than max_bytes in all (plus one line)."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.lines = collections.deque()
        self.size = 0
        self.dropped = False

    def feed(self, stream):
        """Read a binary stream line by line, each line capped at MAX_LINE bytes."""
        cut = False
        while True:
            chunk = stream.readline(MAX_LINE)
            if not chunk:
                return
            whole = chunk.endswith(b"\n")
            if not cut:
                self.add(chunk.decode("utf-8", "replace").rstrip("\r\n"))
            cut = not whole

    def add(self, line):
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1
            self.dropped = True


def stream_command(argv, window, timeout):
    """Run argv and keep the newest lines of its output (stdout and stderr merged):
    (exit status, LineWindow), with 124 when it ran past `timeout`."""
    timeout = remaining(timeout)
    if timeout < 0.5:
        window.add("%s not run: the agent's time budget ran out" % argv[0])
        return 124, window
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError:
        return 127, window
    expired = []

    def stop():
        expired.append(True)
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        window.feed(process.stdout)
        code = process.wait()
    finally:
        timer.cancel()
        process.stdout.close()
    return (124 if expired else code), window


def docker_log_lines(name, window, max_bytes, timeout):
    code, lines = stream_command(["docker", "logs", "--timestamps", "--since", window, "--tail", "50000", name],
                                 LineWindow(max_bytes), timeout)
    if code != 0:
        return unread(code, "", "\n".join(list(lines.lines)[-5:])), None
    return None, lines


def journald_log_lines(unit, window, max_bytes, timeout):
    code, lines = stream_command(["journalctl", "-u", unit, "--since", "-%ds" % window_seconds(window),
                                  "-o", "short-iso", "--no-pager", "-q"], LineWindow(max_bytes), timeout)
    if code != 0:
        return unread(code, "", "\n".join(list(lines.lines)[-5:])), None
    return None, lines


def file_log_lines(pattern, window, max_bytes):
    """A log file and its rotations (`PATH`, `PATH.1`, ..., `.gz` too), modified within the
    window; the newest max_bytes of them, newest file last so its lines win."""
    since = time.time() - window_seconds(window)
    try:
        paths = [p for p in glob.glob(pattern) + glob.glob(pattern + ".*") if os.path.isfile(p)]
        dated = sorted(((os.path.getmtime(p), p) for p in set(paths)), reverse=True)
    except OSError as error:
        return {"read": False, "reason": "command-failed", "error": str(error)}, None
    chosen, budget = [], max_bytes
    for mtime, path in dated:
        if mtime < since or budget <= 0:
            break
        chosen.append(path)
        budget -= os.path.getsize(path)
    if not dated:
        return {"read": False, "reason": "not-found", "error": "no file matches %s" % pattern}, None
    lines = LineWindow(max_bytes)
    for path in reversed(chosen):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as handle:
                    lines.feed(handle)
            else:
                with open(path, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    if size > max_bytes:        # only the tail can survive: skip the rest unread
                        handle.seek(size - max_bytes)
                        handle.readline()
                        lines.dropped = True
                    lines.feed(handle)
        except OSError as error:
            reason = "permission-denied" if error.errno in (errno.EACCES, errno.EPERM) else "command-failed"
            return {"read": False, "reason": reason, "error": "%s: %s" % (path, error.strerror)}, None
    return None, lines


def read_logs(source, name, config):
    """(unread reading or None, LineWindow) from the role's log source."""
    window, max_bytes = config["log_window"], config["log_max_bytes"]
    timeout = config["step_timeout"]
    kind = source.get("kind", "docker")
    if kind == "file":
        return file_log_lines(source["path"], window, max_bytes)
    if kind == "journald":
        return journald_log_lines(source["unit"], window, max_bytes, timeout)
    return docker_log_lines(name, window, max_bytes, timeout)


def scan_logs(source, name, markers, config):
    """Counts, last time and job ids of each marker in the window, from the newest log_max_bytes,
    with the receive-to-completion time of each job and the receipts per job."""
    missing, window = read_logs(source, name, config)
    if missing:
        return missing
    since = time.time() - window_seconds(config["log_window"])
    compiled = [(m, re.compile(m["pattern"])) for m in markers]
    found = {m["name"]: {"kind": m["kind"], "queue": m.get("queue"), "count": 0, "last": None, "jobs": []}
             for m in markers}
    receipts, received_at, longest = {}, {}, 0.0
    lines, oldest = 0, None
    for line in window.lines:
        stamp, epoch = stamp_of(line)
        if epoch is not None and epoch < since:
            continue                # a rotated file's older lines
        lines += 1
        oldest = oldest or stamp
        for marker, pattern in compiled:
            match = pattern.search(line)
            if not match:
                continue
            entry = found[marker["name"]]
            entry["count"] += 1
            entry["last"] = stamp or entry["last"]
            job = match.groupdict().get("job")
            if not job:
                continue
            entry["jobs"] = [seen for seen in entry["jobs"] if seen[0] != job][-(MAX_JOBS - 1):]
            entry["jobs"].append([job, stamp])
            if marker["kind"] == "received":
                receipts[job] = receipts.get(job, 0) + 1
                if epoch is not None:
                    received_at[job] = epoch        # a redelivery starts the job again
            elif marker["kind"] == "completed" and job in received_at and epoch is not None:
                longest = max(longest, epoch - received_at[job])
    repeated = dict(sorted(((j, n) for j, n in receipts.items() if n > 1), key=lambda item: -item[1])[:20])
    return {"read": True, "lines": lines, "truncated_at": window.max_bytes if window.dropped else None,
            "oldest": oldest, "markers": found, "repeated_receipts": repeated,
            "longest_processing_seconds": round(longest, 3) if longest else None}


# -- the probe, in the app's environment ----------------------------------------------

PROBE_KEYS = ("digest_domain", "region", "credentials", "queues", "user_agent", "aws_timeout", "settings_module_env")
# runs the configured python, else python3, else python, and says on stderr when it fell back
PYTHON_FALLBACK = ('for p in "$0" python3 python; do if command -v "$p" >/dev/null 2>&1; then '
                   '[ "$p" = "$0" ] || echo "fleet-agent: $0 not found, ran $p" >&2; exec "$p" - "$1"; fi; done; '
                   'echo "fleet-agent: no python in the container" >&2; exit 127')
CONTAINER_GONE = ("is not running", "is restarting", "no such container", "is paused")


def static_reading(config, values):
    """What the .env alone says (when the app's container is not running): regions, masked
    key id and fingerprints, queue names; no AWS call behind it."""
    domain = config["digest_domain"]
    key_id, secret, source = preferred_keys(config["credentials"], values)
    if not key_id and values.get("AWS_ACCESS_KEY_ID"):
        key_id, secret, source = values["AWS_ACCESS_KEY_ID"], values.get("AWS_SECRET_ACCESS_KEY"), \
            "env:AWS_ACCESS_KEY_ID"
    region = app_region(config["region"], values)
    name, value = first_set(values, ["AWS_REGION", "AWS_DEFAULT_REGION"])
    queues = []
    for key, queue in config["queues"].items():
        queue_value, queue_source = queue_name(queue, values)
        queues.append({"key": key, "name": queue_value, "name_source": queue_source, "region": region["value"]})
    return {"static": True, "region": {
        "app": region,
        "boto3": {"value": values.get("AWS_DEFAULT_REGION"),
                  "source": "env:AWS_DEFAULT_REGION" if values.get("AWS_DEFAULT_REGION") else None},
        "cli": {"value": value, "source": "env:" + name if name else None}},
        "credentials": describe_credentials(domain, key_id, secret, values.get("AWS_SESSION_TOKEN"), source),
        "queues": queues, "settings_module": values.get(config.get("settings_module_env") or ""),
        "endpoints": {k: strip_url_user(v) for k, v in sorted(values.items()) if k.startswith("AWS_ENDPOINT_URL")},
        "env_problems": value_problems(config, values)}


def container_changed(name, before):
    """Whether the container stopped or restarted since it was inspected (the probe died with it)."""
    if not before or not before.get("present"):
        return False
    code, out, _ = run(["docker", "inspect", "--format", "{{.State.Running}} {{.RestartCount}} {{.State.StartedAt}}",
                        name], timeout=10)
    now = out.split()
    return code != 0 or now != [str(before.get("running")).lower(), str(before.get("restart_count")),
                                str(before.get("started_at"))]


def probe(config, app, dotenv_values, dotenv_reason, containers, facts_before=None):
    probe_config = json.dumps({k: config[k] for k in PROBE_KEYS})
    mode = app["env_from"]
    container = app.get("container")
    running = any(c["name"] == container and c["state"] == "running" for c in containers)
    fallback = mode == "container" and not running
    if fallback:
        mode = "dotenv"
    if mode == "container":
        argv = ["docker", "exec", "-i", container, "sh", "-c", PYTHON_FALLBACK, app["app_python"], probe_config]
        env = None
    elif mode == "dotenv":
        if dotenv_values is None:
            kind = "dotenv-missing" if dotenv_reason == "not-found" else "dotenv-unreadable"
            if fallback:
                kind = "not-run"
            return {"env_source": "dotenv:%s" % app["dotenv_path"],
                    "error": {"kind": kind, "message": "cannot read %s (%s)" % (app["dotenv_path"], dotenv_reason)}}
        argv = [app["host_python"], "-", probe_config]
        env = dict(os.environ)
        env.update(dotenv_values)
    else:
        argv = [os.environ.get("SHELL") or "/bin/sh", "-lc", 'exec "$0" - "$1"', app["host_python"], probe_config]
        env = None
    code, out, err = run(argv, timeout=config["probe_timeout"], input_text=config["probe_source"], env=env)
    source = {"container": "container:%s" % container, "dotenv": "dotenv:%s" % app["dotenv_path"],
              "shell": "login-shell"}[mode]
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lowered = (err + out).lower()       # docker exec says some of its own errors on stdout
        if code == 124:
            kind = "timeout"
        elif mode == "container" and (any(sign in lowered for sign in CONTAINER_GONE) or
                                      container_changed(container, facts_before)):
            kind = "container-lost"
        elif "oci runtime exec failed" in lowered and "executable file not found" not in lowered:
            kind = "probe-crashed"          # docker could not exec into the container at all: say its words
        elif code in (126, 127) or "executable file not found" in lowered or "no python" in lowered:
            kind = "python-missing"
        else:
            kind = "probe-crashed"
        result = {"error": {"kind": kind, "message": (err or out).strip()[-400:], "exit_status": code}}
    result["env_source"] = source
    fell_back = re.search(r"fleet-agent: (\S+) not found, ran (\S+)", err)
    if fell_back:
        result["python_fallback"] = {"configured": fell_back.group(1), "ran": fell_back.group(2)}
    if fallback:
        result["note"] = "container %s is not running: read with the .env on disk instead" % container
        if (result.get("error") or {}).get("kind") in ("boto3-missing", "python-missing"):
            result["error"] = {"kind": "not-run", "message": "the host's %s cannot run the probe (%s): only the "
                               ".env was read" % (app["host_python"], result["error"]["message"][:200])}
            result.update(static_reading(config, dotenv_values))
    return result


def check_script(app):
    if app["env_from"] == "container":
        argv = ["docker", "exec", "-w", "/app", app["container"], app["app_python"], app["check_script"]]
    else:
        argv = [app["host_python"], os.path.join(app["app_dir"], app["check_script"])]
    code, out, err = run(argv, timeout=60)
    return {"command": " ".join(argv), "exit_status": code, "output": (out + err)[-6000:]}


def process_state(workload):
    """A plain process's state: systemd's word for a journald unit, pgrep for a file-logging
    process with a `process` pattern; None when the inventory gives no way to tell."""
    source = workload["source"]
    if source.get("kind") == "journald":
        code, out, err = run(["systemctl", "is-active", source["unit"]])
        if code == 127 or not out.strip():
            return dict(unread(code, out, err), present=None)
        state = out.strip()
        return {"present": True, "status": "running" if state == "active" else state}
    if source.get("process"):
        code, out, err = run(["pgrep", "-f", source["process"]])
        if code not in (0, 1):
            return dict(unread(code, out, err), present=None)
        return {"present": True, "status": "running" if code == 0 else "stopped"}
    return {"present": None, "read": True}


def main():
    config = json.loads(zlib.decompress(base64.b64decode(sys.argv[2])))
    config["probe_source"] = zlib.decompress(base64.b64decode(sys.argv[3])).decode()
    started = time.time()
    DEADLINE[0] = started + config.get("budget", 55)
    if config.get("watch_stdin"):
        stop_when_disconnected()
    facts = FACTS
    facts.update({"schema": SCHEMA, "hostname": socket.gethostname(), "python": sys.version.split()[0],
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))})

    def out_of_time(signum, frame):     # `timeout` ends us: say what was gathered, and that it is partial
        facts["budget_exceeded"] = True
        emit_facts(config)
        os._exit(0)

    signal.signal(signal.SIGTERM, out_of_time)
    app = config["app"]
    workloads = config["workloads"]
    if app["env_from"] == "container" or any(w["source"].get("kind", "docker") == "docker" for w in workloads):
        facts["docker"], facts["containers"] = timed("docker", docker_facts)
    else:                   # a host of plain processes: docker is not asked, and not missed
        facts["docker"], facts["containers"] = {"read": True, "available": None, "used": False}, []
    dotenv_values, dotenv_reason = timed("dotenv", read_dotenv, app["dotenv_path"], app["dotenv_format"])
    if dotenv_values is None:
        facts["dotenv"] = {"read": False, "path": app["dotenv_path"], "reason": dotenv_reason[0],
                           "error": dotenv_reason[1]}
        dotenv_reason = dotenv_reason[0]
    else:
        facts["dotenv"] = {"read": True, "path": app["dotenv_path"], "env": describe_env(dotenv_values, config)}
    facts["wanted"] = [{"name": w["name"], "role": w["role"], "kind": w["source"].get("kind", "docker")}
                       for w in workloads]
    facts["inspected"] = []
    for workload in workloads:
        kind = workload["source"].get("kind", "docker")
        if kind == "docker":
            if not facts["docker"]["available"]:
                continue
            entry = timed("inspect %s" % workload["name"], inspect_container, workload["name"], config)
        else:
            entry = dict(process_state(workload), name=workload["name"])
        entry["role"], entry["kind"] = workload["role"], kind
        if entry.get("present") or kind != "docker":
            entry["logs"] = timed("logs %s" % workload["name"], scan_logs, workload["source"], workload["name"],
                                  workload["markers"], config)
        facts["inspected"].append(entry)
    if app["env_from"] == "container" and not facts["docker"]["available"]:
        facts["probe"] = {"env_source": "container:%s" % app.get("container"),
                          "error": {"kind": "docker-unavailable", "message": facts["docker"]["error"]}}
    else:
        app_entry = next((e for e in facts["inspected"] if e.get("name") == app.get("container")), None)
        facts["probe"] = timed("probe", probe, config, app, dotenv_values, dotenv_reason, facts["containers"],
                               app_entry)
    if config.get("run_check_script"):
        facts["check_script"] = timed("check script", check_script, app)
    facts["seconds"] = round(time.time() - started, 3)
    emit_facts(config)
    FINISHED.set()


if __name__ == "__main__":
    main()
