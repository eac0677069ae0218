"""Start, re-scenario, inspect and stop the sandbox fleet.

Layout under the sandbox root (FLEET_SANDBOX_DIR, default
/var/lib/fleet-auditor-sandbox; short, because Docker's unix sockets live there):
  state.json               active scenario, moto port
  client/                  SSH client key, known_hosts, generated inventory.yaml
  moto/                    moto server pid, port, log, request recording
  cache/                   root file system tarball
  hosts/NAME/              sshd config, host key, pids, logs, app/.env
  docker/NAME/             each host's Docker data (on overlayfs roots: an ext4 file system in docker.img)
"""
import json
import os
import secrets
import shutil
import string
import getpass
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from auditor.errors import SandboxError
from . import images, scenarios, system
from .moto_server import ADMIN_USER, MotoServer
from .ssm_standin import SsmStandIn

DEFAULT_ROOT = "/var/lib/fleet-auditor-sandbox"
APP_START_SECONDS = 120             # a bound for a slow machine: an app container to start and log it
DOCKER_DISK_BYTES = 32 << 30        # sparse: only what the images and containers use is written


class SandboxHostRuntime:
    """One simulated host: its sshd, its Docker daemon and its app directory."""

    def __init__(self, root, spec, ssh_port):
        self.spec = spec
        self.ssh_port = ssh_port
        self.dir = Path(root) / "hosts" / spec.name
        self.data_root = Path(root) / "docker" / spec.name
        self.app_dir = self.dir / "app"
        self.socket = self.dir / "docker.sock"
        self.dockerd_pid_file = self.dir / "dockerd.pid"
        self.sshd_pid_file = self.dir / "sshd.pid"
        self.host_key = self.dir / "ssh_host_ed25519_key"
        # a plain-process host: the app's code, its process and its log file
        self.code_dir = self.dir / "code"
        self.process_pid_file = self.dir / "worker.pid"
        self.log_file = self.app_dir / "logs" / "worker.log"

    def docker(self, *args, timeout=60):
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        return system.run(["docker", "-H", "unix://%s" % self.socket, *args], timeout=timeout, env=env)

    def remove_container(self, name, timeout=60):
        """`docker rm -f NAME`, done when the container is gone: a removal the daemon is still
        finishing (from a run that was stopped mid-way) is waited for, not a failure."""
        try:
            self.docker("rm", "-f", name, timeout=timeout)
        except SandboxError as error:
            if "already in progress" not in str(error):
                raise
        system.wait_until(lambda: name not in self.docker("ps", "-a", "--format", "{{.Names}}").split(),
                          timeout, "container %s to be removed" % name)

    def dockerd_pid(self):
        return system.read_pid(self.dockerd_pid_file)

    def sshd_pid(self):
        return system.read_pid(self.sshd_pid_file)

    def docker_ready(self):
        try:
            self.docker("version", "--format", "{{.Server.Version}}", timeout=5)
            return True
        except SandboxError:
            return False

    def start_dockerd(self):
        if self.dockerd_pid() and self.docker_ready():
            return
        for directory in (self.data_root, self.dir / "run"):
            directory.mkdir(parents=True, exist_ok=True)
        system.spawn(["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
                      "--data-root", str(self.data_root), "--exec-root", str(self.dir / "run"),
                      "--pidfile", str(self.dockerd_pid_file), "-H", "unix://%s" % self.socket,
                      "--log-level", "warn"], self.dir / "dockerd.log")
        system.wait_until(self.docker_ready, 60, "dockerd of %s (log: %s)" % (self.spec.name, self.dir / "dockerd.log"))

    def write_sshd_config(self, authorized_keys, host_ca):
        """sshd's config, with a host key certified by the sandbox's host CA (for clients that
        trust `@cert-authority` lines: OpenSSH verifies it, paramiko cannot)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.spec.name, "-f", str(self.host_key)])
        certificate = Path(str(self.host_key) + "-cert.pub")
        if not certificate.exists():
            system.run(["ssh-keygen", "-q", "-s", str(host_ca), "-I", self.spec.name, "-h", "-n", self.spec.address,
                        "-V", "-5m:+3650d", str(self.host_key) + ".pub"])
        config = "\n".join([
            "ListenAddress %s:%d" % (self.spec.address, self.ssh_port),
            "HostKey %s" % self.host_key,
            "HostCertificate %s" % certificate,
            "PidFile %s" % self.sshd_pid_file,
            "AuthorizedKeysFile %s" % authorized_keys,
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 200:30:400",
            "MaxSessions 64",
            "PrintMotd no",
            # each host's sessions see only this host's Docker daemon
            "SetEnv DOCKER_HOST=unix://%s" % self.socket,
            "Subsystem sftp internal-sftp",
            "",
        ])
        (self.dir / "sshd_config").write_text(config)

    def start_sshd(self):
        if self.sshd_pid():
            return
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        system.run(["/usr/sbin/sshd", "-f", str(self.dir / "sshd_config"), "-E", str(self.dir / "sshd.log")])
        system.wait_until(lambda: system.port_open(self.spec.address, self.ssh_port), 15,
                          "sshd of %s on %s" % (self.spec.name, self.spec.address))

    def switch_off(self):
        """No SSH, and no app: its container is removed at once. The app is its container's PID 1,
        which the kernel spares SIGTERM, so `docker stop` or the daemon's own shutdown would wait
        ten seconds for each; a switch to the Celery stack spent half a minute there."""
        self.stop_sshd()
        self.stop_process()
        if self.dockerd_pid():
            try:
                self.remove_container(self.spec.container, timeout=30)
            except SandboxError:
                pass                    # a daemon that does not answer is stopped by its pid

    def stop(self):
        self.switch_off()
        self.stop_dockerd()

    def stop_sshd(self):
        system.stop_pid(self.sshd_pid())
        self.sshd_pid_file.unlink(missing_ok=True)

    def stop_dockerd(self):
        system.stop_pid(self.dockerd_pid(), timeout=30)
        self.dockerd_pid_file.unlink(missing_ok=True)

    def write_env(self, env):
        """Plain KEY=value lines: read alike by docker --env-file, compose and python-dotenv."""
        self.app_dir.mkdir(parents=True, exist_ok=True)
        lines = ["# %s app environment (sandbox, generated)" % self.spec.name]
        lines += ["%s=%s" % item for item in sorted(env.items())]
        path = self.app_dir / ".env"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def run_container(self, image, crashing, log_driver="json-file"):
        name = self.spec.container
        self.remove_container(name)
        restart = "always" if crashing else "unless-stopped"
        self.docker("run", "-d", "--name", name, "--network", "host", "--env-file", str(self.app_dir / ".env"),
                    "--restart", restart, "--log-driver", log_driver, "--label", "fleet-sandbox=1",
                    image, *self.spec.command, timeout=180)     # a loaded 2-core machine needs more than 60 s

    def run_process(self, env):
        """The worker as a plain process on the host, its output appended to a log file; the file
        of its previous run is rotated to .1, as logrotate would."""
        self.stop_process()
        if self.code_dir.exists():
            shutil.rmtree(self.code_dir)
        shutil.copytree(images.APP_DIR, self.code_dir)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        environment = dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin"), PYTHONUNBUFFERED="1")
        pid = system.spawn([sys.executable, str(self.code_dir / "worker.py")], self.log_file, env=environment)
        self.process_pid_file.write_text(str(pid))

    def process_pid(self):
        return system.read_pid(self.process_pid_file)

    def stop_process(self):
        system.stop_pid(self.process_pid())
        self.process_pid_file.unlink(missing_ok=True)

    def containers(self):
        try:
            out = self.docker("ps", "-a", "--format", "{{.Names}}\t{{.State}}\t{{.Status}}", timeout=10)
        except SandboxError as error:
            return "docker: %s" % str(error).splitlines()[0]
        return out.strip().replace("\n", "; ") or "(none)"


class Sandbox:
    """A fleet on this machine. Fleets in other `slot`s run beside it (the test suite's parallel
    workers): each has its own root (the slot's number after the name), SSH port, daemons and
    servers; they share the root file system's cache, built once."""

    def __init__(self, root=None, slot=0):
        first = Path(root or os.environ.get("FLEET_SANDBOX_DIR") or DEFAULT_ROOT)
        self.root = first.with_name("%s-%d" % (first.name, slot)) if slot else first
        self.cache = first / "cache"
        self.ssh_port = scenarios.SSH_PORT + slot
        self.client_dir = self.root / "client"
        self.client_key = self.client_dir / "id_ed25519"
        self.host_ca = self.client_dir / "host_ca"       # signs every host key: for @cert-authority tests
        self.known_hosts = self.client_dir / "known_hosts"
        self.inventory = self.client_dir / "inventory.yaml"
        self.state_file = self.root / "state.json"
        self.docker_data = self.root / "docker"
        self.moto = MotoServer(self.root / "moto")
        self.ssm = SsmStandIn(self.root / "ssm")
        self.hosts = {spec.name: SandboxHostRuntime(self.root, spec, self.ssh_port) for spec in scenarios.HOSTS}

    # -- state ---------------------------------------------------------------
    def state(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def keys(self):
        """The IAM keys of the active scenario (root-only file; for tests and set-up)."""
        return {user: tuple(pair) for user, pair in json.loads((self.root / "keys.json").read_text()).items()}

    # -- up ------------------------------------------------------------------
    def up(self, scenario_name="healthy", progress=None):
        say = progress or (lambda message: None)
        scenario = scenarios.SCENARIOS.get(scenario_name)
        if scenario is None:
            raise SandboxError("unknown scenario %r; choose one of: %s"
                               % (scenario_name, ", ".join(scenarios.SCENARIOS)))
        system.require_system_parts()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        say("moto server")
        self.moto.start()
        self.ssm.start()
        self._client_key()
        active = [self.hosts[name] for name in scenario.hosts]
        left_out = [host for host in self.hosts.values() if host not in active]
        with ThreadPoolExecutor(max_workers=len(left_out) or 1) as pool:
            # unreachable, and their app gone; an idle Docker daemon is kept for the next scenario
            list(pool.map(SandboxHostRuntime.switch_off, left_out))
        self._docker_file_system()
        say("Docker daemons and images (the first run builds a Debian root file system: about a minute)")
        with ThreadPoolExecutor(max_workers=len(active)) as pool:
            image_tags = dict(zip(scenario.hosts, pool.map(self._prepare_host, active)))
        say("scenario %s" % scenario.name)
        self._apply(scenario, active, image_tags)
        self._write_known_hosts(active)
        self._write_inventory(active, scenario)
        self.state_file.write_text(json.dumps({"scenario": scenario.name, "moto_port": self.moto.port,
                                               "hosts": list(scenario.hosts)}))
        return self.inventory

    def _client_key(self):
        self.client_dir.mkdir(parents=True, exist_ok=True)
        if not self.client_key.exists():
            system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-auditor-sandbox",
                        "-f", str(self.client_key)])
        (self.client_dir / "authorized_keys").write_text(Path(str(self.client_key) + ".pub").read_text())
        if not self.host_ca.exists():
            system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-auditor-sandbox host CA",
                        "-f", str(self.host_ca)])

    def _docker_file_system(self):
        """Docker's overlay2 driver cannot stack on overlayfs (a root that is itself a container's,
        or the stock-machine check's): dockerd falls back to vfs, which copies the whole image for
        every container started, minutes of disk writes per scenario. There the daemons' data gets
        an ext4 file system of its own, in a sparse file, loop-mounted (and unmounted by `down`)."""
        self.docker_data.mkdir(parents=True, exist_ok=True)
        if system.file_system_type(self.docker_data) != "overlay":
            return
        disk = self.root / "docker.img"
        if not disk.exists():
            with open(disk, "wb") as sparse:
                sparse.truncate(DOCKER_DISK_BYTES)
            system.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1", str(disk)], timeout=120)
        system.run(["mount", "-o", "loop", str(disk), str(self.docker_data)], timeout=60)

    def _prepare_host(self, host):
        host.write_sshd_config(self.client_dir / "authorized_keys", self.host_ca)
        if host.spec.plain_process:
            return None                     # no Docker on this host
        host.start_dockerd()
        # a daemon that starts again restarts the last scenario's app (--restart unless-stopped): it
        # would enqueue into the fresh queues of this one. Gone before moto is reset.
        host.remove_container(host.spec.container)
        return images.ensure_app_image(host.docker, host.spec.container, self.cache)

    def _apply(self, scenario, active, image_tags):
        keys = self.moto.configure(scenarios.iam_users(scenario), scenarios.queues(scenario),
                                   scenario.second_keys, admin_accounts=(scenarios.STAGING_ACCOUNT,),
                                   admin_denied=scenario.controller_denied)
        key_file = self.root / "keys.json"
        key_file.write_text(json.dumps(keys))
        key_file.chmod(0o600)
        self._write_controller_profiles(keys)
        self._configure_ssm(active, keys)
        r2_keys = (secrets.token_hex(16), secrets.token_hex(32))   # Cloudflare R2's shapes

        def resolve(placeholder):
            if placeholder == scenarios.RANDOM_AWS_KEY_ID:
                return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
            if placeholder == scenarios.RANDOM_SECRET:
                return secrets.token_urlsafe(30)[:40]
            part, _, principal = placeholder.strip("{}").partition(":")
            return keys[principal][0 if part == "key" else 1]

        def apply_host(host):
            spec = host.spec
            env = scenarios.healthy_env(spec, keys, r2_keys, self.moto.endpoint)
            env = scenarios.apply_changes(env, scenario.env.get(spec.name, {}), resolve)
            host.write_env(env)
            if spec.plain_process:
                host.run_process(env)
            else:
                # log driver "none": `docker logs` fails, as it does for drivers that cannot be read back
                host.run_container(image_tags[spec.name], crashing=spec.name in scenario.crashing,
                                   log_driver="none" if spec.name in scenario.unreadable_logs else "json-file")
            if spec.name in scenario.env_on_disk_after_start:
                host.write_env(scenarios.apply_changes(env, scenario.env_on_disk_after_start[spec.name], resolve))
            # the deadlines are a slow machine's (an app imports boto3 before it logs its start);
            # a fast one goes on as soon as the condition holds
            if spec.name in scenario.crashing:     # "up" means it has crashed and been restarted once
                system.wait_until(lambda: host.docker("inspect", "--format", "{{.RestartCount}}", spec.container,
                                                      timeout=10).strip() not in ("", "0"),
                                  APP_START_SECONDS, "%s to crash and be restarted" % spec.container)
            if spec.name in scenario.stopped_containers + scenario.stopped_dockerd:
                # the worker has started and logged it; then its container, or its whole daemon, goes
                system.wait_until(lambda: "started" in host.docker("logs", spec.container, timeout=10).lower(),
                                  APP_START_SECONDS, "%s to log its start" % spec.container)
            if spec.name in scenario.stopped_containers:
                host.docker("stop", "-t", "2", spec.container)
            if spec.name in scenario.stopped_dockerd:
                host.stop_dockerd()
            if spec.name in scenario.stopped_sshd:
                host.stop_sshd()
            else:
                host.start_sshd()

        with ThreadPoolExecutor(max_workers=len(active)) as pool:
            list(pool.map(apply_host, active))

    def _configure_ssm(self, active, keys):
        """The SSM stand-in: an instance id per host (its Docker daemon at the default socket, as on
        an instance), the sandbox admins' keys allowed, output to the moto S3 bucket."""
        instances = {scenarios.instance_id(host.spec): {"host": host.spec.name, "mode": "ok", "docker_socket": None if
                     host.spec.plain_process else str(host.socket)} for host in active}
        admins = [keys[principal][0] for principal in self.controller_profiles().values()]
        key_id, secret = keys[ADMIN_USER]
        self.moto.admin_client("s3", keys).create_bucket(
            Bucket=scenarios.SSM_BUCKET, CreateBucketConfiguration={"LocationConstraint": scenarios.REGION})
        self.ssm.configure(instances, admins, {"endpoint": self.moto.endpoint, "key_id": key_id, "secret": secret})

    def _write_controller_profiles(self, keys):
        """AWS profiles for `fab audit --cross-check`: the admin of each sandbox account."""
        config, credentials = [], []
        for profile, principal in self.controller_profiles().items():
            config += ["[profile %s]" % profile, "region = %s" % scenarios.REGION,
                       "endpoint_url = %s" % self.moto.endpoint, ""]
            credentials += ["[%s]" % profile, "aws_access_key_id = %s" % keys[principal][0],
                            "aws_secret_access_key = %s" % keys[principal][1], ""]
        (self.client_dir / "aws-config").write_text("\n".join(config))
        path = self.client_dir / "aws-credentials"
        path.touch(mode=0o600)
        path.write_text("\n".join(credentials))

    @staticmethod
    def controller_profiles():
        return {"sandbox-production": ADMIN_USER, "sandbox-staging": "%s@%s" % (ADMIN_USER, scenarios.STAGING_ACCOUNT)}

    def _write_known_hosts(self, active):
        lines = []
        for host in active:
            key_type, key = Path(str(host.host_key) + ".pub").read_text().split()[:2]
            lines.append("[%s]:%d %s %s" % (host.spec.address, self.ssh_port, key_type, key))
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _write_inventory(self, active, scenario):
        """An inventory in the product's own format, so `fab audit -i` works on the sandbox."""
        groups = {"api": "api", "video-worker": "video_workers", "ai-worker": "ai_workers", "web": "web",
                  "worker": "workers"}
        children = {}
        for host in active:
            if host.spec.name in scenario.outside_inventory:
                continue
            group = children.setdefault(groups[host.spec.role], {"hosts": {}})
            settings = {"app_dir": str(host.app_dir)}
            if host.spec.plain_process:     # no container: the .env and a log file, read on the host
                settings.update(env_from="dotenv", role_defs={host.spec.role: {"log_source": {
                    "kind": "file", "path": str(host.log_file), "process": str(host.code_dir / "worker.py")}}})
            group["hosts"][host.spec.name] = {"ansible_host": host.spec.address, "auditor": settings}
            if host.spec.name in scenario.over_ssm:
                group["hosts"][host.spec.name].update(ansible_connection="community.aws.aws_ssm",
                                                      instance_id=scenarios.instance_id(host.spec))
            group["vars"] = {"auditor": {"roles": [host.spec.role]}}
        document = {"all": {
            "vars": {
                "ansible_port": self.ssh_port,
                "ansible_user": getpass.getuser(),
                "ansible_ssh_private_key_file": str(self.client_key),
                # the host's own python (not the containers'): used for dotenv-mode probes
                "ansible_python_interpreter": sys.executable,
                "auditor": {"known_hosts": str(self.known_hosts),
                            # no instance metadata service here: a refused loopback port says so at once
                            "imds_endpoint": "http://127.0.0.1:1",
                            # the containers read the .env with docker --env-file: quotes are kept
                            "dotenv_format": "docker",
                            "allowed_endpoints": [self.moto.endpoint],
                            "cross_check": {"profiles": list(self.controller_profiles()),
                                            "config_file": str(self.client_dir / "aws-config"),
                                            "credentials_file": str(self.client_dir / "aws-credentials")},
                            # Run Command through the sandbox's stand-in, with the production admin
                            "ssm": {"region": scenarios.REGION, "profile": "sandbox-production",
                                    "endpoint_url": self.ssm.endpoint, "s3_endpoint_url": self.moto.endpoint,
                                    "config_file": str(self.client_dir / "aws-config"),
                                    "credentials_file": str(self.client_dir / "aws-credentials")}},
            },
            "children": children,
        }}
        if scenario.stack == "celery":      # the second stack: only the profile and the app's Celery object
            document["all"]["vars"]["auditor"].update(profile="celery", celery_app=scenarios.CELERY_APP)
        header = "# Generated by `fab sandbox.up`: the local sandbox fleet. Do not edit.\n"
        self.inventory.write_text(header + yaml.safe_dump(document, sort_keys=False))

    # -- status / down -------------------------------------------------------
    def status(self):
        """Lines that say what runs; no secret in them."""
        state = self.state()
        lines = ["sandbox root: %s" % self.root,
                 "scenario: %s" % state.get("scenario", "(none: run `fab sandbox.up`)"),
                 "moto: %s" % ("pid %s, %s" % (self.moto.pid(), self.moto.endpoint) if self.moto.pid() else "stopped"),
                 "SSM stand-in: %s" % ("pid %s, %s" % (self.ssm.pid(), self.ssm.endpoint) if self.ssm.pid() else
                                       "stopped")]
        for host in self.hosts.values():
            lines.append("%-8s %s:%d  sshd %s  dockerd %s  containers: %s" % (
                host.spec.name, host.spec.address, self.ssh_port,
                "pid %s" % host.sshd_pid() if host.sshd_pid() else "stopped",
                "pid %s" % host.dockerd_pid() if host.dockerd_pid() else "stopped",
                host.containers() if host.dockerd_pid() else "-"))
        if self.inventory.exists():
            lines.append("inventory: %s" % self.inventory)
        return lines

    def running(self):
        return bool(self.moto.pid() or self.ssm.pid() or any(h.sshd_pid() or h.dockerd_pid() or h.process_pid() for h in self.hosts.values()))

    def down(self):
        """Stop everything `up` started, by pid, and unmount what Docker left."""
        with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
            list(pool.map(SandboxHostRuntime.stop, self.hosts.values()))
        self.moto.stop()
        self.ssm.stop()
        for mount in reversed(leftover_mounts(self.root)):
            system.run(["umount", "-l", mount], timeout=30)
        if self.state_file.exists():
            self.state_file.unlink()


def leftover_mounts(root):
    prefix = str(root).rstrip("/") + "/"
    return [point for point, _ in system.mounts() if point.startswith(prefix)]

