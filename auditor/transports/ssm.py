"""The AWS Systems Manager backend (`ansible_connection: community.aws.aws_ssm`): Run Command.

For fleets without SSH (instances managed by the SSM agent), AWS does the fan-out: one
SendCommand (AWS-RunShellScript) reaches up to 50 instances that get the same command, AWS runs
it with its own rate control (MaxConcurrency from --parallel), and the controller only polls
ListCommandInvocations (with backoff, page by page) and reads each result with
GetCommandInvocation. AWS throttles these calls per account and region: every call is paced
(`auditor.ssm.api_rate` per second, shared by the audit's threads), a ThrottlingException is
retried after a jittered, growing pause, and an invocation AWS does not know yet right after
SendCommand (InvocationDoesNotExist: eventual consistency) is asked for again; neither is ever a
host's failure before the host's own deadline.

Hosts arrive one per worker thread, as for SSH; `run` hands its host to a batch of hosts with the
same command and the same AWS target (region, profile, bucket), sent after a short window or at 50
ids, and waits for its own result. The agent's facts come compressed (so they fit Run Command's
24,000 inline characters); larger ones are read from S3 when the inventory names an output bucket,
and are a clear finding otherwise. Ctrl-C cancels what is still running (CancelCommand).

Honesty about writes: SendCommand creates a command record in the account (visible in the SSM
console and CloudTrail). The audit stays read-only toward SQS and the hosts.
"""
import base64
import dataclasses
import logging
import random
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, cast

from ..agent.wire import Word
from ..aws import client_config, session_for
from ..errors import aws_error_code
from .base import Cause, OutcomeKind, RunOutcome, Target, TargetProblem, Transport
from .causes import command_outcome

if TYPE_CHECKING:
    from ..inventory import HostSpec

log = logging.getLogger("auditor.transports.ssm")


# -- what this backend declares: its settings, its target, its own failure kinds -----------------

def _setting(default, text="", limits=None):
    """A field of the `auditor.ssm` settings, with its place in the settings schema."""
    return dataclasses.field(default=default, metadata={"doc": text, "limits": limits, "choices": None})


@dataclass(frozen=True)
class SsmSettings:
    """The inventory's `auditor.ssm`: the controller's AWS side for Run Command hosts."""
    region: Optional[str] = None
    profile: Optional[str] = None
    bucket: Optional[str] = None
    key_prefix: str = "fleet-audit"
    delivery_timeout: float = _setting(60, limits=(30, 2592000))
    endpoint_url: Optional[str] = None
    s3_endpoint_url: Optional[str] = None
    config_file: Optional[str] = None
    credentials_file: Optional[str] = None
    # AWS throttles each SSM action per account and region; staying under it costs less than retries
    api_rate: float = _setting(20, limits=(0.1, 1000))


INSTANCE_ID = re.compile(r"(i|mi)-[0-9a-f]{8,17}")


@dataclass(frozen=True)
class SsmTarget(SsmSettings, Target):
    """Where Run Command reaches a host: its instance id (also its address), and the controller's
    AWS side (the inventory's auditor.ssm, Ansible's ansible_aws_ssm_* winning)."""
    address: str = ""                   # the instance id

    @property
    def instance_id(self) -> str:
        return self.address

    @property
    def aws_side(self) -> "SsmTarget":
        """What hosts must share to be sent one command together: everything but the instance."""
        return dataclasses.replace(self, address="")

    @classmethod
    def from_variables(cls, name: str, variables: Mapping, settings: object,
                       declared: Callable[[str], bool] = lambda key: True) -> "SsmTarget":
        """As Ansible's aws_ssm plugin reads a host: the instance id from `instance_id` (the aws_ec2
        inventory's) or an `i-...` ansible_host; region, profile and bucket from ansible_aws_ssm_*,
        else auditor.ssm."""
        instance_id = str(variables.get("instance_id") or variables.get("ansible_host") or "")
        if not INSTANCE_ID.fullmatch(instance_id):
            raise TargetProblem(None, "host %r is reached by SSM but has no instance id (got %r)" % (
                name, instance_id[:80] or None), "set `instance_id: i-0123456789abcdef0` (or ansible_host to the id)")
        defaults = settings.ssm          # type: ignore[attr-defined]
        return cls(**dict(dataclasses.asdict(defaults), address=instance_id,
                          region=variables.get("ansible_aws_ssm_region") or defaults.region,
                          profile=variables.get("ansible_aws_ssm_profile") or defaults.profile,
                          bucket=variables.get("ansible_aws_ssm_bucket_name") or defaults.bucket))


TARGET = SsmTarget


def ssm_target(spec: "HostSpec") -> SsmTarget:
    """A host's Run Command target: the registry hands this backend only the hosts it reaches."""
    return cast(SsmTarget, spec.target)
HELP_NOTE = ("Hosts reached by SSM Run Command (only those whose inventory says ansible_connection:\n"
             "community.aws.aws_ssm) leave a command record in the AWS account (SendCommand), as any Run Command "
             "does.")


class SsmOutcome(Word):
    """How a Run Command visit can end besides the common kinds."""
    NOT_MANAGED = "not-managed"             # not an SSM managed instance, or its agent is not connected
    DENIED = "denied"                       # the controller may not send the command or read its result
    DELIVERY_TIMEOUT = "delivery-timeout"
    COMMAND_TIMEOUT = "command-timeout"
    CANCELLED = "cancelled"


FAILURE_CODES = {SsmOutcome.NOT_MANAGED: "ssm-not-managed", SsmOutcome.DENIED: "ssm-access-denied",
                 SsmOutcome.DELIVERY_TIMEOUT: "ssm-delivery-timeout", SsmOutcome.COMMAND_TIMEOUT: "ssm-command-timeout",
                 SsmOutcome.CANCELLED: "ssm-cancelled"}

INLINE_LIMIT = 24000        # characters of stdout GetCommandInvocation returns
BATCH_LIMIT = 50            # instance ids per SendCommand
BATCH_WINDOW = 0.2          # seconds a batch waits for more hosts with the same command
API_TIMEOUT = 10            # seconds for each SSM or S3 call (one attempt each: retries are paced here)
THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
NOT_YET = "InvocationDoesNotExist"
BACKOFF_BASE, BACKOFF_CAP = 1.0, 20.0     # seconds: the first retry 0.5-1 s later, doubling per retry
MIN_RATE = 0.5              # calls per second a throttled pace never goes below
COMPRESSED = "fleet-facts-z1:"
TERMINAL_STATUSES = {"Undeliverable", "TimedOut", "Cancelled", "Failed", "Success", "DeliveryTimedOut",
                   "ExecutionTimedOut", "Terminated", "InvalidPlatform", "AccessDenied"}


def decode_output(text: str) -> Optional[str]:
    """The agent's stdout as the controller reads it: a compressed facts line is expanded; None
    when it is cut (more than the inline limit)."""
    stripped = text.strip()
    if not stripped.startswith(COMPRESSED):
        return text
    try:
        return zlib.decompress(base64.b64decode(stripped[len(COMPRESSED):], validate=True)).decode() + "\n"
    except (ValueError, zlib.error):
        return None


class Pacer:
    """The calls of one audit's threads to one AWS account and region: at most `limit` per second
    (a token bucket), halved at each ThrottlingException and regained slowly on success (as TCP
    and botocore's adaptive mode do), so a fleet of 1,000 settles under AWS's rate instead of
    retrying into it. Counts what it saw."""

    def __init__(self, limit: float):
        self.limit = self.rate = limit
        self.tokens, self.stamp = 1.0, time.monotonic()
        self.lock = threading.Lock()
        self.calls: Counter = Counter()          # action -> calls made
        self.throttled: Counter = Counter()      # action -> ThrottlingExceptions answered

    def wait_turn(self, action: str) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    self.calls[action] += 1
                    return
                pause = (1 - self.tokens) / self.rate
            time.sleep(pause)

    def answered(self, action: str, throttled: bool) -> None:
        with self.lock:
            if throttled:
                self.throttled[action] += 1
                self.rate = max(MIN_RATE, self.rate / 2)
            else:
                self.rate = min(self.limit, self.rate + 1 / max(1.0, self.rate))


def backoff(attempt: int) -> float:
    """Equal jitter: half of a pause that doubles with each retry, plus a random part of the other
    half (retries spread out, yet never come back at once)."""
    half = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) / 2
    return half + random.uniform(0, half)


class Ticket:
    """One host's place in a batch: filled in by the batch's thread, waited for by the host's."""

    def __init__(self, spec):
        self.spec = spec
        self.instance_id = ssm_target(spec).instance_id
        self.done = threading.Event()
        self.outcome = None
        self.started = time.monotonic()

    def resolve(self, kind: Word, detail: str = "") -> None:
        self.settle(RunOutcome(self.spec.name, kind, detail=detail, seconds=time.monotonic() - self.started))

    def settle(self, outcome: RunOutcome) -> None:
        """The host's answer, once: a result racing a Ctrl-C cancel does not overwrite it."""
        if not self.done.is_set():
            self.outcome = outcome
            self.done.set()


class Batch:
    def __init__(self, target, command, timeout):
        self.target, self.command, self.timeout = target, command, timeout
        self.tickets = []
        self.full = threading.Event()


class SSM(Transport):
    name = "community.aws.aws_ssm"
    keeps_stdin_open = False    # Run Command gives no stdin: the agent must not stop when it is empty
    compact_output = True       # the facts travel compressed, to fit the inline output

    def __init__(self, session):
        super().__init__(session)
        self._lock = threading.Lock()
        self._clients = {}
        self._pacers = {}               # the AWS side's (region, profile, endpoint) -> Pacer
        self._open_batches = {}         # (target's AWS side, command, timeout) -> Batch still taking hosts
        self._running = {}              # command id -> (client, Batch)

    def describe(self, spec: "HostSpec") -> str:
        target = ssm_target(spec)
        return "ssm %s (%s%s)" % (target.instance_id, target.region or "default region",
                                  ", profile %s" % target.profile if target.profile else "")

    # -- AWS clients, made once per target ---------------------------------------------------

    @staticmethod
    def _aws_side(target: SsmTarget, service: str) -> tuple:
        """What a client (and the pace of its calls) is shared by: one AWS account and region."""
        return (service, target.region, target.profile, target.endpoint_url, target.s3_endpoint_url,
                target.config_file, target.credentials_file)

    def client(self, target: SsmTarget, service: str) -> Any:
        key = self._aws_side(target, service)
        with self._lock:
            if key not in self._clients:
                session = session_for(target.profile, target.config_file, target.credentials_file)
                endpoint = target.endpoint_url if service == "ssm" else target.s3_endpoint_url
                self._clients[key] = session.client(service, region_name=target.region, endpoint_url=endpoint,
                                                    config=client_config(API_TIMEOUT, attempts=1 if service == "ssm" else 2))
            return self._clients[key]

    def pacer(self, target: SsmTarget) -> Pacer:
        key = self._aws_side(target, "ssm")
        with self._lock:
            if key not in self._pacers:
                self._pacers[key] = Pacer(target.api_rate)
            return self._pacers[key]

    def call(self, target: SsmTarget, action: str, deadline: float, retry_not_yet: bool = False,
             **request: Any) -> Any:
        """One SSM API call, paced; throttled (and, where asked, not-yet-known) answers are asked
        again after a jittered pause until `deadline`, then raised as they came."""
        pacer, attempt = self.pacer(target), 0
        method = getattr(self.client(target, "ssm"), action)
        while True:
            pacer.wait_turn(action)
            try:
                answer = method(**request)
            except Exception as error:  # classified: throttled and not-yet are retried, the rest raised
                code = aws_error_code(error)
                pacer.answered(action, throttled=code in THROTTLED)
                if code not in THROTTLED and not (retry_not_yet and code == NOT_YET):
                    raise
                pause = backoff(attempt)
                attempt += 1
                if time.monotonic() + pause > deadline or self.session.closing.wait(pause):
                    raise
            else:
                pacer.answered(action, throttled=False)
                return answer

    def api_calls(self) -> dict:
        """{action: (calls, throttled)} over every AWS side this audit used: for benchmarks and --debug."""
        totals: dict = {}
        for pacer in list(self._pacers.values()):
            for action, count in pacer.calls.items():
                made, throttled = totals.get(action, (0, 0))
                totals[action] = (made + count, throttled + pacer.throttled[action])
        return totals

    # -- one host -------------------------------------------------------------------------------

    def run(self, spec: "HostSpec", command: str, timeout: float, connect_timeout: float) -> RunOutcome:
        ticket = Ticket(spec)
        self._join(ticket, command, timeout)
        limit = ssm_target(spec).delivery_timeout + timeout + 30
        if not ticket.done.wait(limit):
            ticket.resolve(SsmOutcome.COMMAND_TIMEOUT, "no result from Run Command within %ss (delivery and execution)" % limit)
        return ticket.outcome

    def _join(self, ticket, command, timeout):
        target = ssm_target(ticket.spec)
        key = (target.aws_side, command, timeout)
        with self._lock:
            batch = self._open_batches.get(key)
            if batch is None:
                batch = self._open_batches[key] = Batch(target, command, timeout)
                threading.Thread(target=self._dispatch, args=(key, batch), daemon=True,
                                 name="fleet-audit-ssm").start()
            batch.tickets.append(ticket)
            if len(batch.tickets) >= BATCH_LIMIT:
                del self._open_batches[key]
                batch.full.set()

    def _dispatch(self, key, batch):
        batch.full.wait(BATCH_WINDOW)
        with self._lock:
            if self._open_batches.get(key) is batch:
                del self._open_batches[key]
        try:
            self._send(batch, batch.tickets)
        except Exception as error:  # the auditor's own failure: every host of the batch says so
            log.debug("ssm batch failed", exc_info=True)
            for ticket in batch.tickets:
                ticket.resolve(OutcomeKind.ERROR, "the SSM batch failed in the auditor (%s: %s)" % (type(error).__name__, error))

    def _send(self, batch, tickets):
        target = batch.target
        request = {"DocumentName": "AWS-RunShellScript", "InstanceIds": [t.instance_id for t in tickets],
                   "Parameters": {"commands": [batch.command], "executionTimeout": [str(int(batch.timeout))]},
                   "TimeoutSeconds": max(30, int(target.delivery_timeout)),
                   "MaxConcurrency": str(max(1, self.session.parallel)), "MaxErrors": "100%",
                   "Comment": "fleet-audit (read-only audit)"}
        if target.bucket:
            request.update(OutputS3BucketName=target.bucket, OutputS3KeyPrefix=target.key_prefix)
        deadline = time.monotonic() + target.delivery_timeout
        try:
            command_id = self.call(target, "send_command", deadline, **request)["Command"]["CommandId"]
        except Exception as error:  # classified below, for every host of the batch
            code = aws_error_code(error)
            if code == "InvalidInstanceId" and len(tickets) > 1:
                for ticket in tickets:          # AWS refuses the whole call: find which, one by one
                    self._send(batch, [ticket])
                return
            for ticket in tickets:
                ticket.resolve(*send_failure(code, error, target, ticket.instance_id))
            return
        log.debug("ssm: command %s to %d instance(s)", command_id, len(tickets))
        with self._lock:
            self._running[command_id] = (target, tickets)
        try:
            self._poll(command_id, batch, tickets)
        finally:
            if not self.session.closing.is_set():      # on Ctrl-C, close_all cancels what it finds here
                with self._lock:
                    self._running.pop(command_id, None)

    def _poll(self, command_id, batch, tickets):
        waiting = {t.instance_id: t for t in tickets}
        deadline = time.monotonic() + batch.target.delivery_timeout + batch.timeout + 30
        pause = 0.5
        while waiting and time.monotonic() < deadline and not self.session.closing.is_set():
            time.sleep(pause)
            pause = min(pause * 1.5, 5)
            try:
                statuses = self._invocations(batch.target, command_id, deadline)
            except Exception as error:  # a denied or failed poll is every waiting host's answer
                code = aws_error_code(error)
                for ticket in waiting.values():
                    ticket.resolve(*poll_failure(code, error, "ListCommandInvocations"))
                return
            for instance_id, invocation in statuses.items():
                ticket = waiting.get(instance_id)
                if ticket is None or invocation["Status"] not in TERMINAL_STATUSES:
                    continue
                del waiting[instance_id]
                self._finish(command_id, batch, ticket, invocation, deadline)
        if self.session.closing.is_set():
            return              # Ctrl-C: close_all cancels the unfinished and says so (not a timeout)
        for ticket in waiting.values():
            ticket.resolve(SsmOutcome.COMMAND_TIMEOUT, "Run Command did not finish on %s within %ss" % (
                ticket.instance_id, round(deadline - ticket.started)))

    def _invocations(self, target, command_id, deadline):
        """{instance id: invocation} of one command, every page of ListCommandInvocations."""
        found, token = {}, None
        while True:
            request = dict(CommandId=command_id, MaxResults=BATCH_LIMIT, **({"NextToken": token} if token else {}))
            page = self.call(target, "list_command_invocations", deadline, **request)
            found.update((i["InstanceId"], i) for i in page["CommandInvocations"])
            token = page.get("NextToken")
            if not token:
                return found

    def _finish(self, command_id, batch, ticket, invocation, deadline):
        status, details = invocation["Status"], invocation.get("StatusDetails", "")
        if status == "Undeliverable" or details == "Undeliverable":
            return ticket.resolve(SsmOutcome.NOT_MANAGED, "Run Command could not deliver to %s: its SSM agent is not "
                                                 "connected (stopped, no network route to SSM, or no instance "
                                                 "profile)" % ticket.instance_id)
        if details == "DeliveryTimedOut":
            return ticket.resolve(SsmOutcome.DELIVERY_TIMEOUT, "Run Command was not delivered to %s within %ss" % (
                ticket.instance_id, batch.target.delivery_timeout))
        if details == "ExecutionTimedOut":
            return ticket.resolve(SsmOutcome.COMMAND_TIMEOUT, "the agent ran past %ss on %s and Run Command stopped it" % (
                batch.timeout, ticket.instance_id))
        if status == "Cancelled":
            return ticket.resolve(SsmOutcome.CANCELLED, "the command was cancelled on %s (%s)" % (ticket.instance_id, details))
        try:
            result = self.call(batch.target, "get_command_invocation", deadline, retry_not_yet=True,
                               CommandId=command_id, InstanceId=ticket.instance_id)
        except Exception as error:  # denied, or still throttled at the host's deadline: this host's answer
            return ticket.resolve(*poll_failure(aws_error_code(error), error, "GetCommandInvocation"))
        stdout = self._full_output(batch.target, command_id, ticket, result)
        if isinstance(stdout, tuple):
            return ticket.resolve(*stdout)
        code = result.get("ResponseCode")
        ticket.settle(command_outcome(ticket.spec.name, code, stdout, result.get("StandardErrorContent", ""),
                                      batch.timeout, time.monotonic() - ticket.started))

    def _full_output(self, target, command_id, ticket, result):
        """The agent's stdout, expanded; from S3 when the inline copy is cut; else (kind, detail)."""
        inline = result.get("StandardOutputContent", "")
        decoded = decode_output(inline)
        if decoded is not None and len(inline) < INLINE_LIMIT:
            return decoded
        if not target.bucket:
            return (OutcomeKind.OUTPUT_TOO_LARGE, "the agent's facts on %s are larger than Run Command's inline output "
                                        "(%d characters, cut): name an S3 bucket for the output "
                                        "(ansible_aws_ssm_bucket_name, or auditor.ssm.bucket)" % (
                                            ticket.instance_id, INLINE_LIMIT))
        key = "/".join(filter(None, (target.key_prefix.strip("/"), command_id, ticket.instance_id,
                                     "awsrunShellScript", "0.awsrunShellScript", "stdout")))
        try:
            body = self.client(target, "s3").get_object(Bucket=target.bucket, Key=key)["Body"].read()
        except Exception as error:  # denied or missing: this host's answer, with the object named
                return (OutcomeKind.ERROR, "the facts of %s could not be read from s3://%s/%s (%s): the controller needs "
                             "s3:GetObject on it" % (ticket.instance_id, target.bucket, key, aws_error_code(error)))
        decoded = decode_output(body.decode("utf-8", "replace"))
        if decoded is None:
            return (OutcomeKind.OUTPUT_TOO_LARGE, "the agent's facts in s3://%s/%s are not complete" % (target.bucket, key))
        return decoded

    def close_all(self) -> None:
        """Ctrl-C: cancel every command still running, for the instances that have not finished."""
        with self._lock:
            running = list(self._running.items())
        for command_id, (target, tickets) in running:
            unfinished = [t.instance_id for t in tickets if not t.done.is_set()]
            if not unfinished:
                continue
            try:
                self.client(target, "ssm").cancel_command(CommandId=command_id, InstanceIds=unfinished)
            except Exception:  # nothing more can be done on the way out; the report says not audited
                log.debug("ssm: CancelCommand %s failed", command_id, exc_info=True)
            for ticket in tickets:
                ticket.resolve(SsmOutcome.CANCELLED, "interrupted: the command was cancelled (CancelCommand)")


def send_failure(code: str, error: Exception, target: SsmTarget, instance_id: str) -> Cause:
    """(kind, detail) when SendCommand itself was refused."""
    if code == "InvalidInstanceId":
        return SsmOutcome.NOT_MANAGED, "%s is not a managed instance in %s (not registered with SSM, stopped, or another " \
            "region or account)" % (instance_id, target.region or "the default region")
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        return SsmOutcome.DENIED, "ssm:SendCommand was denied (%s): the controller's principal needs ssm:SendCommand on " \
            "document AWS-RunShellScript and on the instance" % str(error)[:200]
    return OutcomeKind.ERROR, "SendCommand failed (%s): %s" % (code, str(error)[:200])


def poll_failure(code: str, error: Exception, action: str) -> Cause:
    if code in ("AccessDeniedException", "AccessDenied"):
        return SsmOutcome.DENIED, "ssm:%s was denied (%s): the controller's principal needs it to read results" % (
            action, str(error)[:200])
    return OutcomeKind.ERROR, "%s failed (%s): %s" % (action, code, str(error)[:200])
