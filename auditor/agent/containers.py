"""The workloads' state: Docker's containers (`docker ps`, `docker inspect`) and plain processes
(a systemd unit's state, or a pgrep pattern)."""
import json
import time

try:
    from .environment import describe_env
    from .logs import stamp_of
    from .runner import run, unread
    from .wire import LogSourceKind, Unread
except ImportError:  # shipped: the sources are concatenated (see agent.program)
    pass


def docker_facts():
    code, out, err = run(["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}"])
    if code != 0:
        reading = unread(code, out, err, 400)
        if code == 127:
            reading["reason"] = Unread.DOCKER_MISSING
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
        return {"name": name, "present": None, "read": False, "reason": Unread.FAILED,
                "error": "docker inspect printed no JSON: %s" % out[:200]}
    state = data.get("State", {})
    _, finished = stamp_of(state.get("FinishedAt") or "")
    window = config.log_window_seconds
    env = dict(item.split("=", 1) for item in data.get("Config", {}).get("Env") or [] if "=" in item)
    return {"name": name, "present": True, "status": state.get("Status"), "running": state.get("Running"),
            "restarting": state.get("Restarting"), "restart_count": data.get("RestartCount"),
            "exit_code": state.get("ExitCode"), "started_at": state.get("StartedAt"),
            "finished_at": state.get("FinishedAt"),
            # Docker's restart policy restarted it after it exited, within the log window: it crashed
            "exited_in_window": bool(data.get("RestartCount") and finished and finished > time.time() - window),
            "image": data.get("Config", {}).get("Image"),
            # what it runs (a Celery worker's -Q says which queues it polls); scrubbed on the way out
            "command": [str(word)[:200] for word in ([data.get("Path")] + list(data.get("Args") or []))[:40] if word],
            "image_id": data.get("Image"), "env": describe_env(env, config.probe.fingerprint_domain, config.public_env,
                                                                config.key_id_env)}


def container_changed(name, before):
    """Whether the container stopped or restarted since it was inspected (the probe died with it)."""
    if not before or not before.get("present"):
        return False
    code, out, _ = run(["docker", "inspect", "--format", "{{.State.Running}} {{.RestartCount}} {{.State.StartedAt}}",
                        name], timeout=10)
    now = out.split()
    return code != 0 or now != [str(before.get("running")).lower(), str(before.get("restart_count")),
                                str(before.get("started_at"))]


def process_state(workload):
    """A plain process's state: systemd's word for a journald unit, pgrep for a file-logging
    process with a `process` pattern; None when the inventory gives no way to tell."""
    source = workload.source
    if source.kind == LogSourceKind.JOURNALD:
        code, out, err = run(["systemctl", "is-active", source.unit])
        state = out.strip()
        if code == 127 or not state or "\n" in state or " " in state:     # no systemd answered: a sentence
            return dict(unread(code, "", err or out), present=None)
        return {"present": True, "status": "running" if state == "active" else state}
    if source.process:
        code, out, err = run(["pgrep", "-f", source.process])
        if code not in (0, 1):
            return dict(unread(code, out, err), present=None)
        return {"present": True, "status": "running" if code == 0 else "stopped"}
    return {"present": None, "read": True}
