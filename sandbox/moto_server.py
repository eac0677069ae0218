"""moto in server mode: the sandbox's SQS/IAM/STS/CloudWatch API, with IAM enforced, and the
`AWS/SQS` metrics AWS would publish (sandbox.sqs_metrics, in the server's process).

Every request is recorded (headers included) to `recording.jsonl`, so tests can
prove which calls the auditor made. A scenario is applied by resetting moto and
recreating users, keys and queues; the server process itself keeps running.
"""
import json
import urllib.request

from auditor.errors import SandboxError

from . import system

ADMIN_USER = "sandbox-admin"
# moto accepts any key while auth is off; these only bootstrap the admin user.
BOOTSTRAP_CREDENTIALS = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}


class MotoServer(system.LoopbackServer):
    def __init__(self, directory):
        super().__init__(directory, "moto")
        self.recording = self.directory / "recording.jsonl"

    def ready(self):
        if self.port is None:
            return False
        try:
            with urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self):
        if self.pid():              # one server per sandbox: a busy one is waited for, a hung one replaced
            try:
                system.wait_until(self.ready, 10, "the running moto server")
                return
            except SandboxError:
                self.stop()
        self.directory.mkdir(parents=True, exist_ok=True)
        port = self.port or system.free_port()
        if system.port_open("127.0.0.1", port):
            port = system.free_port()
        # recording starts in configure(), once set-up calls are done
        # moto's server with the AWS/SQS metrics publisher in its process (sandbox.sqs_metrics)
        pid = system.spawn_module("sandbox.sqs_metrics", ["-H", "127.0.0.1", "-p", str(port)],
                                  self.directory / "moto.log", MOTO_RECORDER_FILEPATH=str(self.recording))
        self.pid_file.write_text(str(pid))
        self.port_file.write_text(str(port))
        system.wait_until(self.ready, 30, "moto server on port %d" % port)

    def _post(self, path, body=b""):
        # text/plain: with urllib's default form type, Flask hides the body from moto
        request = urllib.request.Request(self.endpoint + path, data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def client(self, service, region="ap-northeast-2", account=None, **credentials):
        """A boto3 client on this server; `account` picks a non-default account while auth is off."""
        import boto3                            # here: `fab --list` and every audit would pay its import
        from botocore.config import Config
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=10)
        client = boto3.client(service, region_name=region, endpoint_url=self.endpoint, config=config,
                              **(credentials or BOOTSTRAP_CREDENTIALS))
        if account:
            def select_account(request, **_):
                request.headers["x-moto-account-id"] = account
            client.meta.events.register("before-sign.*.*", select_account)
        return client

    def configure(self, users, queues, second_keys=(), admin_accounts=(), admin_denied=()):
        """Reset all state, create IAM users and queues, then turn IAM enforcement on.

        `users`: principal ("name" or "name@account") -> allowed actions; `queues`:
        (region, name, account or None, attributes), a dead-letter queue before its source; `second_keys`: users given a second key;
        `admin_accounts`: other accounts that get an admin user too; `admin_denied`: actions the
        admins (the controller's profiles) are explicitly denied.
        Returns {principal: (access_key_id, secret)} including the admin users, and
        "name#2" for second keys. moto resolves a request's account from its key."""
        self._post("/moto-api/recorder/stop-recording")
        self._post("/moto-api/reset-auth", b"inf")
        self._post("/moto-api/reset")
        keys = {}
        admins = {"%s@%s" % (ADMIN_USER, account): ["*"] for account in admin_accounts}
        for principal, actions in dict(users, **{ADMIN_USER: ["*"]}, **admins).items():
            user, _, account = principal.partition("@")
            iam = self.client("iam", region="us-east-1", account=account or None)
            iam.create_user(UserName=user)
            statements = [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]
            if admin_denied and user == ADMIN_USER:
                statements.append({"Effect": "Deny", "Action": list(admin_denied), "Resource": "*"})
            policy = {"Version": "2012-10-17", "Statement": statements}
            iam.put_user_policy(UserName=user, PolicyName=user + "-policy", PolicyDocument=json.dumps(policy))
            for label in [principal] + (["%s#2" % principal] if principal in second_keys else []):
                key = iam.create_access_key(UserName=user)["AccessKey"]
                keys[label] = (key["AccessKeyId"], key["SecretAccessKey"])
        for region, name, account, attributes in queues:
            sqs = self.client("sqs", region=region, account=account)
            url = sqs.create_queue(QueueName=name, Attributes={k: v for k, v in attributes.items()
                                                               if k != "RedrivePolicy"})["QueueUrl"]
            redrive = attributes.get("RedrivePolicy")
            if redrive:             # its dead-letter queue was created before it (see scenarios.queues)
                target = sqs.get_queue_url(QueueName=redrive["deadLetterTargetName"])["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": redrive["maxReceiveCount"]})})
        self._post("/moto-api/reset-auth", b"0")
        self.recording.write_text("")
        self._post("/moto-api/recorder/start-recording")
        return keys

    def admin_client(self, service, keys, region="ap-northeast-2"):
        key_id, secret = keys[ADMIN_USER]
        return self.client(service, region=region, aws_access_key_id=key_id, aws_secret_access_key=secret)

    def recorded_requests(self):
        """The requests moto saw since the last configure(), as dicts."""
        if not self.recording.exists():
            return []
        return [json.loads(line) for line in self.recording.read_text().splitlines() if line.strip()]
