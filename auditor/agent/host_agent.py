"""Host agent: the runbook's look at one host, in one run, as one JSON document.

Started by the controller as `python3 -c BOOTSTRAP AGENT CONFIG` (both packed
in argv). Standard library only, Python 3.7+. It only reads: `docker ps`,
`docker inspect`, `docker logs`, the .env file, and the SQS probe (read-only)
in the app's environment. Every subprocess has a timeout; output is bounded.
"""
import base64
import errno
import json
import os
import re
import socket
import subprocess
import sys
import time
import zlib

try:
    from .redact import fingerprint, mask_key_id
except ImportError:  # shipped: redact.py's source is prepended (see agent.program)
    pass

SCHEMA = "host-facts/2"
MAX_JOBS = 100
MAX_ENV = 300
STEP_TIMEOUT = 20


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
    try:
        done = subprocess.run(argv, input=input_text, capture_output=True, timeout=timeout, env=env,
                              universal_newlines=True, errors="replace")
        return done.returncode, done.stdout, done.stderr
    except FileNotFoundError:
        return 127, "", "%s: not found" % argv[0]
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


def describe_env(env, config):
    """Every variable as a salted fingerprint; public ones also in clear, key ids masked."""
    salt, public, key_ids = config["salt"], set(config["public_env"]), set(config["key_id_env"])
    described = {}
    for name in sorted(env)[:MAX_ENV]:
        value = env[name]
        entry = {"fp": fingerprint(salt, value)}
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
    env = dict(item.split("=", 1) for item in data.get("Config", {}).get("Env") or [] if "=" in item)
    return {"name": name, "present": True, "status": state.get("Status"), "running": state.get("Running"),
            "restarting": state.get("Restarting"), "restart_count": data.get("RestartCount"),
            "exit_code": state.get("ExitCode"), "started_at": state.get("StartedAt"),
            "finished_at": state.get("FinishedAt"), "image": data.get("Config", {}).get("Image"),
            "image_id": data.get("Image"), "env": describe_env(env, config)}


def scan_logs(name, markers, window, max_bytes):
    """Counts, last time and job ids of each marker in the window, from the newest max_bytes."""
    code, out, err = run(["docker", "logs", "--timestamps", "--since", window, "--tail", "50000", name])
    if code != 0:
        return unread(code, out, err)
    text = out + err
    truncated = len(text) > max_bytes
    text = text[-max_bytes:]
    if truncated:                   # the first line is cut: drop it
        text = text.split("\n", 1)[-1]
    compiled = [(m, re.compile(m["pattern"])) for m in markers]
    found = {m["name"]: {"kind": m["kind"], "queue": m.get("queue"), "count": 0, "last": None, "jobs": []}
             for m in markers}
    receipts = {}
    lines = 0
    oldest = None
    for line in text.splitlines():
        lines += 1
        stamp = line.split(" ", 1)[0]
        oldest = oldest or stamp
        for marker, pattern in compiled:
            match = pattern.search(line)
            if not match:
                continue
            entry = found[marker["name"]]
            entry["count"] += 1
            entry["last"] = stamp
            job = match.groupdict().get("job")
            if job:
                entry["jobs"] = [seen for seen in entry["jobs"] if seen[0] != job][-(MAX_JOBS - 1):]
                entry["jobs"].append([job, stamp])
                if marker["kind"] == "received":
                    receipts[job] = receipts.get(job, 0) + 1
    repeated = dict(sorted(((j, n) for j, n in receipts.items() if n > 1), key=lambda item: -item[1])[:20])
    return {"read": True, "lines": lines, "truncated_at": max_bytes if truncated else None, "oldest": oldest,
            "markers": found, "repeated_receipts": repeated}


# -- the probe, in the app's environment ----------------------------------------------

def probe(config, app, dotenv_values, dotenv_reason, containers):
    probe_config = json.dumps({k: config[k] for k in ("salt", "region", "credentials", "queues", "user_agent",
                                                      "aws_timeout", "settings_module_env")})
    mode = app["env_from"]
    container = app.get("container")
    running = any(c["name"] == container and c["state"] == "running" for c in containers)
    note = None
    if mode == "container" and not running:
        note = "container %s is not running: probed with the .env on disk instead" % container
        mode = "dotenv"
    if mode == "container":
        argv = ["docker", "exec", "-i", container, app["app_python"], "-", probe_config]
        env = None
    elif mode == "dotenv":
        if dotenv_values is None:
            return {"env_source": "dotenv:%s" % app["dotenv_path"],
                    "error": {"kind": "dotenv-missing" if dotenv_reason == "not-found" else "dotenv-unreadable",
                              "message": "cannot read %s (%s)" % (app["dotenv_path"], dotenv_reason)}}
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
        kind = "timeout" if code == 124 else "python-missing" if code in (126, 127) or \
            "executable file not found" in err else "probe-crashed"
        result = {"error": {"kind": kind, "message": (err or out).strip()[-400:], "exit_status": code}}
    result["env_source"] = source
    if note:
        result["note"] = note
    return result


def check_script(app):
    if app["env_from"] == "container":
        argv = ["docker", "exec", "-w", "/app", app["container"], app["app_python"], app["check_script"]]
    else:
        argv = [app["host_python"], os.path.join(app["app_dir"], app["check_script"])]
    code, out, err = run(argv, timeout=60)
    return {"command": " ".join(argv), "exit_status": code, "output": (out + err)[-6000:]}


def main():
    config = json.loads(zlib.decompress(base64.b64decode(sys.argv[2])))
    started = time.time()
    facts = {"schema": SCHEMA, "hostname": socket.gethostname(), "python": sys.version.split()[0],
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    facts["docker"], facts["containers"] = docker_facts()
    app = config["app"]
    dotenv_values, dotenv_reason = None, None
    try:
        # utf-8-sig: a BOM is dropped, as Docker and python-dotenv drop it
        with open(app["dotenv_path"], encoding="utf-8-sig", errors="replace") as handle:
            dotenv_values = parse_dotenv(handle.read(), app["dotenv_format"])
        facts["dotenv"] = {"read": True, "path": app["dotenv_path"], "env": describe_env(dotenv_values, config)}
    except OSError as error:
        dotenv_reason = {errno.ENOENT: "not-found", errno.EACCES: "permission-denied",
                         errno.EPERM: "permission-denied"}.get(error.errno, "command-failed")
        facts["dotenv"] = {"read": False, "path": app["dotenv_path"], "reason": dotenv_reason,
                           "error": error.strerror}
    facts["wanted"] = [{"name": c["name"], "role": c["role"]} for c in config["containers"]]
    facts["inspected"] = []
    for wanted in config["containers"]:
        if not facts["docker"]["available"]:
            break
        entry = inspect_container(wanted["name"], config)
        entry["role"] = wanted["role"]
        if entry.get("present"):
            entry["logs"] = scan_logs(wanted["name"], wanted["markers"], config["log_window"], config["log_max_bytes"])
        facts["inspected"].append(entry)
    if app["env_from"] == "container" and not facts["docker"]["available"]:
        facts["probe"] = {"env_source": "container:%s" % app.get("container"),
                          "error": {"kind": "docker-unavailable", "message": facts["docker"]["error"]}}
    else:
        facts["probe"] = probe(config, app, dotenv_values, dotenv_reason, facts["containers"])
    if config.get("run_check_script"):
        facts["check_script"] = check_script(app)
    facts["seconds"] = round(time.time() - started, 3)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
