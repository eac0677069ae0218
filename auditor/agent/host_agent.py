"""Host agent: the runbook's look at one host, in one run, as one JSON document.

Started by the controller as `python3 -c BOOTSTRAP AGENT CONFIG PROBE` (all
three packed in argv; PROBE is the source run in the app's environment).
Standard library only, Python 3.7+. It only reads: `docker ps`, `docker
inspect`, `docker logs`, the .env file, the instance metadata service's role
name (only when the app found no credentials), and the SQS probe (read-only)
in the app's environment. Every subprocess has a timeout; output is bounded.

The fact collectors are modules of their own (environment, containers, logs,
with runner and wire beneath them); `agent.program()` ships them as one source.
"""
import base64
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.request
import zlib

try:
    from .containers import container_changed, docker_facts, inspect_container, process_state
    from .environment import describe_env, read_dotenv, scrub_outgoing, static_reading
    from .logs import scan_logs
    from .runner import DEADLINE, run
    from .wire import COMPRESSED, SCHEMA, AgentConfig, ConfigError, LogSourceKind, ProbeFailure, from_wire, to_wire
except ImportError:  # shipped: the sources are concatenated (see agent.program)
    pass

FACTS = {}                  # what was gathered so far, printed even when the budget runs out
FINISHED = threading.Event()    # the facts are out: from then on the agent exits with its own status


def timed(step, function, *args):
    """function(*args), its duration recorded under FACTS["timings"][step] (shown by --debug)."""
    started = time.time()
    try:
        return function(*args)
    finally:
        FACTS.setdefault("timings", {})[step] = round(time.time() - started, 3)


def emit_facts(config):
    text = scrub_outgoing(json.dumps(FACTS), config.probe.fingerprint_domain)
    if config.compress_output:
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


# -- the probe, in the app's environment ----------------------------------------------

# runs the configured python, else python3, else python, and says on stderr when it fell back
PYTHON_FALLBACK = ('for p in "$0" python3 python; do if command -v "$p" >/dev/null 2>&1; then '
                   '[ "$p" = "$0" ] || echo "fleet-agent: $0 not found, ran $p" >&2; exec "$p" - "$1"; fi; done; '
                   'echo "fleet-agent: no python in the container" >&2; exit 127')
CONTAINER_GONE = ("is not running", "is restarting", "no such container", "is paused")


def probe(config, source_code, dotenv_values, dotenv_reason, containers, facts_before=None):
    """The SQS probe (`source_code`) run in the app's environment, with its part of the config."""
    app = config.app
    probe_config = json.dumps(to_wire(config.probe))
    mode = app.env_from
    container = app.container
    running = any(c["name"] == container and c["state"] == "running" for c in containers)
    fallback = mode == "container" and not running
    if fallback:
        mode = "dotenv"
    if mode == "container":
        argv = ["docker", "exec", "-i", container, "sh", "-c", PYTHON_FALLBACK, app.app_python, probe_config]
        env = None
    elif mode == "dotenv":
        if dotenv_values is None:
            kind = ProbeFailure.DOTENV_MISSING if dotenv_reason == "not-found" else ProbeFailure.DOTENV_UNREADABLE
            if fallback:
                kind = ProbeFailure.NOT_RUN
            return {"env_source": "dotenv:%s" % app.dotenv_path,
                    "error": {"kind": kind, "message": "cannot read %s (%s)" % (app.dotenv_path, dotenv_reason)}}
        argv = [app.host_python, "-", probe_config]
        env = dict(os.environ)
        env.update(dotenv_values)
    else:
        argv = [os.environ.get("SHELL") or "/bin/sh", "-lc", 'exec "$0" - "$1"', app.host_python, probe_config]
        env = None
    code, out, err = run(argv, timeout=config.probe_timeout, input_text=source_code, env=env)
    source = {"container": "container:%s" % container, "dotenv": "dotenv:%s" % app.dotenv_path,
              "shell": "login-shell"}[mode]
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lowered = (err + out).lower()       # docker exec says some of its own errors on stdout
        if code == 124:
            kind = ProbeFailure.TIMEOUT
        elif mode == "container" and (any(sign in lowered for sign in CONTAINER_GONE) or
                                      container_changed(container, facts_before)):
            kind = ProbeFailure.CONTAINER_LOST
        elif "oci runtime exec failed" in lowered and "executable file not found" not in lowered:
            kind = ProbeFailure.CRASHED     # docker could not exec into the container at all: say its words
        elif code in (126, 127) or "executable file not found" in lowered or "no python" in lowered:
            kind = ProbeFailure.PYTHON_MISSING
        else:
            kind = ProbeFailure.CRASHED
        result = {"error": {"kind": kind, "message": (err or out).strip()[-400:], "exit_status": code}}
    result["env_source"] = source
    fell_back = re.search(r"fleet-agent: (\S+) not found, ran (\S+)", err)
    if fell_back:
        result["python_fallback"] = {"configured": fell_back.group(1), "ran": fell_back.group(2)}
    if fallback:
        result["note"] = "container %s is not running: read with the .env on disk instead" % container
        if (result.get("error") or {}).get("kind") in (ProbeFailure.BOTO3_MISSING, ProbeFailure.PYTHON_MISSING):
            result["error"] = {"kind": ProbeFailure.NOT_RUN, "message": "the host's %s cannot run the probe (%s): only the "
                               ".env was read" % (app.host_python, result["error"]["message"][:200])}
            result.update(static_reading(config, dotenv_values))
    return result


def instance_role(endpoint):
    """Whether the host's instance metadata service answers, and the name of the instance role it
    offers (never its credentials): asked only when the app's container found no credentials, to
    tell "no role" from "a role the container cannot reach" (IMDSv2's hop limit of 1)."""
    if not endpoint:
        return {"read": False, "reason": "not-taken", "error": "no metadata endpoint configured"}
    timeout = 2
    try:
        token = urllib.request.urlopen(urllib.request.Request(
            endpoint + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}),
            timeout=timeout).read().decode()
        names = urllib.request.urlopen(urllib.request.Request(
            endpoint + "/latest/meta-data/iam/security-credentials/", headers={"X-aws-ec2-metadata-token": token}),
            timeout=timeout).read().decode().split()
    except Exception as error:  # no metadata service (not EC2), or no role: both are answers
        code = getattr(error, "code", None)
        if code == 404:
            return {"read": True, "answers": True, "role": None}
        return {"read": True, "answers": False, "error": str(getattr(error, "reason", error))[:200]}
    return {"read": True, "answers": True, "role": names[0][:128] if names else None}


def check_script(app):
    if not app.check_script:
        return {"command": "", "exit_status": None, "output": "no check script is configured (auditor.check_script)"}
    if app.env_from == "container":
        workdir = ["-w", app.workdir] if app.workdir else []
        argv = ["docker", "exec"] + workdir + [app.container, app.app_python, app.check_script]
    else:
        argv = [app.host_python, os.path.join(app.app_dir, app.check_script)]
    code, out, err = run(argv, timeout=60)
    return {"command": " ".join(argv), "exit_status": code, "output": (out + err)[-6000:]}


def main():
    try:
        config = from_wire(AgentConfig, json.loads(zlib.decompress(base64.b64decode(sys.argv[2]))))
    except ConfigError as error:        # a controller of another version: said, never guessed around
        sys.stderr.write("fleet-agent: cannot read the controller's settings (%s): run the same auditor version "
                         "on the controller\n" % error)
        sys.exit(2)
    probe_source = zlib.decompress(base64.b64decode(sys.argv[3])).decode()
    started = time.time()
    DEADLINE[0] = started + config.budget
    if config.watch_stdin:
        stop_when_disconnected()
    facts = FACTS
    facts.update({"schema": SCHEMA, "hostname": socket.gethostname(), "python": sys.version.split()[0],
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "clock": started})

    def out_of_time(signum, frame):     # `timeout` ends us: say what was gathered, and that it is partial
        facts["budget_exceeded"] = True
        emit_facts(config)
        os._exit(0)

    signal.signal(signal.SIGTERM, out_of_time)
    app = config.app
    workloads = config.workloads
    if app.env_from == "container" or any(w.source.kind == LogSourceKind.DOCKER for w in workloads):
        facts["docker"], facts["containers"] = timed("docker", docker_facts)
    else:                   # a host of plain processes: docker is not asked, and not missed
        facts["docker"], facts["containers"] = {"read": True, "available": None, "used": False}, []
    dotenv_values, dotenv_reason = timed("dotenv", read_dotenv, app.dotenv_path, app.dotenv_format)
    if dotenv_values is None:
        facts["dotenv"] = {"read": False, "path": app.dotenv_path, "reason": dotenv_reason[0],
                           "error": dotenv_reason[1]}
        dotenv_reason = dotenv_reason[0]
    else:
        facts["dotenv"] = {"read": True, "path": app.dotenv_path,
                           "env": describe_env(dotenv_values, config.probe.fingerprint_domain, config.public_env,
                                               config.key_id_env)}
    facts["wanted"] = [{"name": w.name, "role": w.role, "kind": w.source.kind} for w in workloads]
    facts["inspected"] = []
    for workload in workloads:
        kind = workload.source.kind
        if kind == LogSourceKind.DOCKER:
            if not facts["docker"]["available"]:
                continue
            entry = timed("inspect %s" % workload.name, inspect_container, workload.name, config)
        else:
            entry = dict(process_state(workload), name=workload.name)
        entry["role"], entry["kind"] = workload.role, kind
        if entry.get("present") or kind != LogSourceKind.DOCKER:
            entry["logs"] = timed("logs %s" % workload.name, scan_logs, workload, config.log_window_seconds,
                                  config.log_max_bytes, config.step_timeout)
        facts["inspected"].append(entry)
    if app.env_from == "container" and not facts["docker"]["available"]:
        facts["probe"] = {"env_source": "container:%s" % app.container,
                          "error": {"kind": ProbeFailure.DOCKER_UNAVAILABLE, "message": facts["docker"]["error"]}}
    else:
        app_entry = next((e for e in facts["inspected"] if e.get("name") == app.container), None)
        facts["probe"] = timed("probe", probe, config, probe_source, dotenv_values, dotenv_reason,
                               facts["containers"], app_entry)
        if app.env_from == "container" and \
                (facts["probe"].get("error") or {}).get("kind") == ProbeFailure.CREDENTIALS_MISSING:
            facts["instance_role"] = timed("instance role", instance_role, config.imds_endpoint)
    if config.run_check_script:
        facts["check_script"] = timed("check script", check_script, app)
    facts["seconds"] = round(time.time() - started, 3)
    emit_facts(config)
    FINISHED.set()


if __name__ == "__main__":
    main()
