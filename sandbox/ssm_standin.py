"""A stand-in for AWS Systems Manager Run Command that really runs the commands.

moto records SSM commands but never runs them, so it cannot test an SSM transport. This small
server speaks the subset of the SSM API the auditor uses (JSON 1.1, `X-Amz-Target:
AmazonSSM.<Action>`: SendCommand, ListCommandInvocations, GetCommandInvocation, CancelCommand)
and runs each command on the sandbox host its instance id stands for as the real SSM agent runs
it: as root, the commands written to a script file run by `sh` in the invocation's orchestration
directory, in the agent's own environment (no HOME, no USER, PATH
/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin, PWD /usr/bin while the working directory is the
orchestration directory, AWS_SSM_INSTANCE_ID and AWS_SSM_REGION_NAME), nothing of an SSH login's
environment, and Docker at its default socket (/run/docker.sock is the host's daemon, in a mount
namespace of the command's own). It returns the real output, status and exit code: stdout beyond
the inline limit is cut as AWS cuts it (24,000 characters; stderr 8,000; ListCommandInvocations'
Details output 2,500, stdout and stderr together), and uploaded in full to the S3 bucket the
command names (moto's S3, with the sandbox admin's key).

AWS's behaviours that matter at fleet scale are served too: each action has a token bucket per
caller and answers `ThrottlingException` when it is empty (policy `rates`: {action: [per second,
burst]}); GetCommandInvocation answers `InvocationDoesNotExist` for `invocation_delay` seconds
after SendCommand (AWS is eventually consistent there); ListCommandInvocations pages its answer
(`MaxResults` 1-50, at most `page_size` per page, `NextToken`).

Configuration, re-read on every request (tests change it while the server runs):
  instances.json  {instance id: {"host": name, "docker_socket": path or null, "mode": "ok" |
                  "undeliverable" | "slow", "delay": seconds}}
  policy.json     {"allowed_keys": [access key ids], "denied": {key id: [actions]},
                  "inline_limit": 24000, "s3": {"endpoint": url, "key_id": ..., "secret": ...},
                  "rates": {action: [per second, burst]}, "invocation_delay": seconds, "page_size": n}
Every request is appended to requests.jsonl (action, caller's key id, parameters without the
command text, and the error it was answered with). The caller is recognised by the access key id in its SigV4 Authorization header;
signatures are not verified (the stand-in tests the auditor, not AWS's crypto).

    python -m sandbox.ssm_standin DIRECTORY PORT
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox import system

TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable"}
STDERR_LIMIT = 8000
LIST_OUTPUT_LIMIT = 2500        # ListCommandInvocations with Details: stdout and stderr together
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
REGION = "ap-northeast-2"
# the sandbox's throttling (per caller and action: per second, burst) and consistency delay; the
# auditor's default pace (auditor.ssm.api_rate, 20/s for all actions together) stays under them
RATES = {"SendCommand": [10, 20], "ListCommandInvocations": [20, 40], "GetCommandInvocation": [20, 40],
         "CancelCommand": [10, 20]}
INVOCATION_DELAY = 0.5
# in a mount namespace of its own: /run is private, its docker.sock the host's daemon (what `docker`
# finds with no DOCKER_HOST), then the script runs as the agent runs it
AS_THE_AGENT = ('mount -t tmpfs -o mode=755 tmpfs /run && touch /run/docker.sock && '
                '{ [ -z "$1" ] || mount --bind "$1" /run/docker.sock; } && cd "$2" && '
                'exec env -i PATH="$3" PWD=/usr/bin AWS_SSM_INSTANCE_ID="$4" AWS_SSM_REGION_NAME="$5" sh "$2/_script.sh"')


class Invocation:
    def __init__(self, command_id, instance_id):
        self.command_id, self.instance_id = command_id, instance_id
        self.status, self.details = "Pending", "Pending"
        self.code, self.stdout, self.stderr = -1, "", ""
        self.process = None
        self.cancelled = threading.Event()


class TokenBucket:
    """`rate` calls per second with bursts of `burst`, as AWS meters an API per account and region."""

    def __init__(self, rate, burst):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class StandIn:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.lock = threading.Lock()
        self.invocations = {}           # (command id, instance id) -> Invocation
        self.commands = {}              # command id -> its parameters
        self.buckets = {}               # (caller's key id, action, rate, burst) -> TokenBucket

    def admit(self, key_id, action, policy):
        """False when the caller has used up its rate for this action (ThrottlingException)."""
        rate = (policy.get("rates") or {}).get(action)
        if not rate:
            return True
        with self.lock:
            bucket = self.buckets.setdefault((key_id, action, *rate), TokenBucket(*rate))
            return bucket.take()

    def config(self, name):
        try:
            return json.loads((self.directory / name).read_text())
        except (OSError, ValueError):
            return {}

    def record(self, entry):
        with self.lock, open(self.directory / "requests.jsonl", "a") as log:
            log.write(json.dumps(entry) + "\n")

    # -- the API -------------------------------------------------------------------------

    def send_command(self, body):
        instances = self.config("instances.json")
        ids = body.get("InstanceIds") or []
        if not ids or len(ids) > 50:
            raise ApiError("ValidationException", "InstanceIds: between 1 and 50 ids, got %d" % len(ids))
        if body.get("DocumentName") != "AWS-RunShellScript":
            raise ApiError("InvalidDocument", "only AWS-RunShellScript is served here")
        unknown = [i for i in ids if i not in instances]
        if unknown:
            raise ApiError("InvalidInstanceId", "Instances %s not in a valid state for account" % unknown)
        parameters = body.get("Parameters") or {}
        command = "\n".join(parameters.get("commands") or [])
        timeout = int((parameters.get("executionTimeout") or ["3600"])[0])
        command_id = str(uuid.uuid4())
        self.commands[command_id] = {"sent": time.monotonic(), "bucket": body.get("OutputS3BucketName"),
                                     "prefix": body.get("OutputS3KeyPrefix") or "",
                                     "delivery": int(body.get("TimeoutSeconds") or 600)}
        slots = threading.BoundedSemaphore(max(1, int(str(body.get("MaxConcurrency") or "50").rstrip("%"))))
        for instance_id in ids:
            invocation = Invocation(command_id, instance_id)
            with self.lock:
                self.invocations[(command_id, instance_id)] = invocation
            threading.Thread(target=self.run, args=(invocation, instances[instance_id], command, timeout, slots),
                             daemon=True).start()
        return {"Command": {"CommandId": command_id, "DocumentName": "AWS-RunShellScript", "InstanceIds": ids,
                            "Status": "Pending", "TargetCount": len(ids)}}

    def run(self, invocation, instance, command, timeout, slots):
        mode = instance.get("mode", "ok")
        delivery = self.commands[invocation.command_id]["delivery"]
        if mode == "undeliverable":
            time.sleep(0.5)
            invocation.status, invocation.details = "Undeliverable", "Undeliverable"
            return
        if mode == "slow":
            delay = float(instance.get("delay", 30))
            if invocation.cancelled.wait(min(delay, delivery)):
                return
            if delay >= delivery:
                invocation.status, invocation.details = "TimedOut", "DeliveryTimedOut"
                return
        with slots:
            if invocation.cancelled.is_set():
                return
            invocation.status, invocation.details = "InProgress", "InProgress"
            process = subprocess.Popen(self.agent_argv(invocation, instance, command), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                       env={"PATH": AGENT_PATH})
            invocation.process = process
            try:
                out, err = process.communicate(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
                timed_out = True
        if invocation.cancelled.is_set():
            return
        invocation.stdout, invocation.stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        invocation.code = process.returncode
        self.upload(invocation)
        if timed_out:
            invocation.status, invocation.details, invocation.code = "TimedOut", "ExecutionTimedOut", -1
        elif process.returncode == 0:
            invocation.status, invocation.details = "Success", "Success"
        else:
            invocation.status, invocation.details = "Failed", "Failed"

    def agent_argv(self, invocation, instance, command):
        """The command as the SSM agent runs it: a script file in the invocation's orchestration
        directory, `sh` on it there, the agent's environment, the host's Docker at the default socket."""
        orchestration = self.directory / "orchestration" / invocation.command_id / invocation.instance_id / \
            "awsrunShellScript" / "0.awsrunShellScript"
        orchestration.mkdir(parents=True, exist_ok=True)
        (orchestration / "_script.sh").write_text(command + "\n")
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", AS_THE_AGENT, "agent",
                instance.get("docker_socket") or "", str(orchestration), AGENT_PATH, invocation.instance_id, REGION]

    def upload(self, invocation):
        """The full output to S3, where the command asked for it (as the SSM agent does)."""
        target = self.commands[invocation.command_id]
        if not target["bucket"]:
            return
        import boto3
        s3_config = self.config("policy.json").get("s3") or {}
        s3 = boto3.client("s3", region_name="ap-northeast-2", endpoint_url=s3_config.get("endpoint"),
                          aws_access_key_id=s3_config.get("key_id"), aws_secret_access_key=s3_config.get("secret"))
        for stream, text in (("stdout", invocation.stdout), ("stderr", invocation.stderr)):
            key = "/".join(filter(None, (target["prefix"].strip("/"), invocation.command_id, invocation.instance_id,
                                         "awsrunShellScript", "0.awsrunShellScript", stream)))
            s3.put_object(Bucket=target["bucket"], Key=key, Body=text.encode())

    def invocation(self, body):
        with self.lock:
            found = self.invocations.get((body.get("CommandId"), body.get("InstanceId")))
        if found is None:
            raise ApiError("InvocationDoesNotExist", "no invocation %s on %s" % (body.get("CommandId"),
                                                                                 body.get("InstanceId")))
        return found

    def list_command_invocations(self, body):
        with self.lock:
            found = [i for (command_id, _), i in self.invocations.items() if command_id == body.get("CommandId")]
        asked = int(body.get("MaxResults") or 50)
        if not 1 <= asked <= 50:
            raise ApiError("ValidationException", "MaxResults: from 1 to 50, got %d" % asked)
        size = min(asked, int(self.config("policy.json").get("page_size") or 50))
        start = int(body.get("NextToken") or 0)
        page, more = found[start:start + size], start + size < len(found)
        details = bool(body.get("Details"))
        return dict({"NextToken": str(start + size)} if more else {}, CommandInvocations=[dict({"CommandId": i.command_id, "InstanceId": i.instance_id, "Status": i.status,
                                             "StatusDetails": i.details},
                                            **({"CommandPlugins": [{"Name": "aws:runShellScript", "Status": i.status,
                                                                    "Output": (i.stdout + i.stderr)[:LIST_OUTPUT_LIMIT],
                                                                    "ResponseCode": i.code}]} if details else {}))
                                       for i in page])

    def get_command_invocation(self, body):
        invocation = self.invocation(body)
        policy = self.config("policy.json")
        if time.monotonic() < self.commands[invocation.command_id]["sent"] + float(policy.get("invocation_delay") or 0):
            raise ApiError("InvocationDoesNotExist", "no invocation %s on %s yet" % (invocation.command_id,
                                                                                   invocation.instance_id))
        limit = int(policy.get("inline_limit", 24000))
        target = self.commands[invocation.command_id]
        return {"CommandId": invocation.command_id, "InstanceId": invocation.instance_id,
                "Status": invocation.status, "StatusDetails": invocation.details,
                "ResponseCode": invocation.code, "StandardOutputContent": invocation.stdout[:limit],
                "StandardErrorContent": invocation.stderr[:STDERR_LIMIT],
                "StandardOutputUrl": "https://s3.ap-northeast-2.amazonaws.com/%s/%s" % (
                    target["bucket"], invocation.command_id) if target["bucket"] else ""}

    def cancel_command(self, body):
        with self.lock:
            found = [i for (command_id, instance_id), i in self.invocations.items()
                     if command_id == body.get("CommandId") and
                     (not body.get("InstanceIds") or instance_id in body["InstanceIds"])]
        for invocation in found:
            if invocation.status in TERMINAL:
                continue
            invocation.cancelled.set()
            if invocation.process and invocation.process.poll() is None:
                os.killpg(invocation.process.pid, signal.SIGKILL)
            invocation.status, invocation.details = "Cancelled", "Cancelled"
        return {}


class ApiError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.status = code, status


ACTIONS = {"SendCommand": "send_command", "ListCommandInvocations": "list_command_invocations",
           "GetCommandInvocation": "get_command_invocation", "CancelCommand": "cancel_command"}


def handler_for(stand_in):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):      # requests.jsonl is the log
            pass

        def do_POST(self):
            action = (self.headers.get("X-Amz-Target") or "").replace("AmazonSSM.", "")
            key_id = (re.search(r"Credential=([^/]+)/", self.headers.get("Authorization") or "") or [None, None])[1]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            shown = {k: v for k, v in body.items() if k != "Parameters"}
            entry = {"action": action, "key_id": key_id, "at": time.time(), **shown}
            try:
                policy = stand_in.config("policy.json")
                if action not in ACTIONS:
                    raise ApiError("InvalidAction", "%s is not served by the stand-in" % action)
                if key_id not in policy.get("allowed_keys", []) or action in policy.get("denied", {}).get(key_id, []):
                    raise ApiError("AccessDeniedException", "User: %s is not authorized to perform: ssm:%s" % (
                        key_id, action))
                if not stand_in.admit(key_id, action, policy):
                    raise ApiError("ThrottlingException", "Rate exceeded")
                answer, status = getattr(stand_in, ACTIONS[action])(body), 200
            except ApiError as error:
                answer, status = {"__type": error.code, "message": str(error)}, error.status
                entry["error"] = error.code
            stand_in.record(entry)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
    return Handler


class SsmStandIn(system.LoopbackServer):
    """The stand-in as the sandbox runs it: one process per sandbox, its files in `directory`."""

    def __init__(self, directory):
        super().__init__(directory, "standin")
        self.requests = self.directory / "requests.jsonl"

    def start(self):
        if self.pid() and self.port and system.port_open("127.0.0.1", self.port):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        port = system.free_port()
        pid = system.spawn_module("sandbox.ssm_standin", [str(self.directory), str(port)],
                                  self.directory / "standin.log")
        self.pid_file.write_text(str(pid))
        self.port_file.write_text(str(port))
        system.wait_until(lambda: system.port_open("127.0.0.1", port), 20, "the SSM stand-in on port %d" % port)

    def configure(self, instances, allowed_keys, s3):
        """Instances (id -> host, env), the access keys allowed, where output goes in S3; the
        request log starts empty."""
        (self.directory / "instances.json").write_text(json.dumps(instances, indent=1))
        self.set_policy(allowed_keys=allowed_keys, denied={}, inline_limit=24000, s3=s3, rates=RATES,
                        invocation_delay=INVOCATION_DELAY, page_size=50)
        self.requests.write_text("")

    def set_policy(self, **changes):
        path = self.directory / "policy.json"
        policy = json.loads(path.read_text()) if path.exists() else {}
        policy.update(changes)
        path.write_text(json.dumps(policy, indent=1))
        path.chmod(0o600)               # it holds the sandbox admin's S3 key

    def set_mode(self, instance_id, mode, delay=0):
        path = self.directory / "instances.json"
        instances = json.loads(path.read_text())
        instances[instance_id].update(mode=mode, delay=delay)
        path.write_text(json.dumps(instances, indent=1))

    def recorded(self, action=None):
        lines = self.requests.read_text().splitlines() if self.requests.exists() else []
        return [r for r in map(json.loads, lines) if action in (None, r["action"])]


def main():
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(StandIn(directory)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
