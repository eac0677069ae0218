"""Container images built here, with no registry: a Debian root file system from
debootstrap (plus a current boto3, which honours AWS_ENDPOINT_URL, and Celery with
kombu's SQS transport), imported
once per Docker daemon, and one small app image per role on top of it.

The root file system is cached as a tarball keyed by its recipe, so only the
first `sandbox.up` on a machine pays for debootstrap (about 40 s)."""
import fcntl
import hashlib
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from . import system

SUITE = "bookworm"
PACKAGES = ("python3", "python-is-python3", "ca-certificates")
BOTO3_VERSION = "1.40.0"
CELERY_VERSION = "5.7.0"          # with kombu's SQS transport (pycurl has binary wheels): the second stack
APP_DIR = Path(__file__).parent / "app"
_build_lock = threading.Lock()     # hosts are prepared in parallel; the root is built once
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")


def base_tag():
    recipe = "%s|%s|boto3==%s|celery[sqs]==%s" % (SUITE, ",".join(PACKAGES), BOTO3_VERSION, CELERY_VERSION)
    return "fleet-sandbox/base:" + hashlib.sha256(recipe.encode()).hexdigest()[:12]


def app_tag(container):
    digest = hashlib.sha256(base_tag().encode())
    for path in sorted(APP_DIR.rglob("*.py")):
        digest.update(path.relative_to(APP_DIR).as_posix().encode() + path.read_bytes())
    return "%s:sandbox-%s" % (container, digest.hexdigest()[:12])


def rootfs_tarball(cache_dir):
    """Build (once) and return the cached root file system tarball. Fleets in other processes
    share the cache: a file lock makes them wait for one build."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / (base_tag().split(":")[1] + ".tar")
    with _build_lock, open(cache_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            _build_rootfs(cache_dir, tarball)
    return tarball


def _build_rootfs(cache_dir, tarball):
    cache_dir.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir))
    try:
        system.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(build)],
                   timeout=900)
        site = build / "usr/local/lib/python3.11/dist-packages"
        system.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                    "--target", str(site), "--python-version", "3.11", "--only-binary=:all:",
                    "boto3==" + BOTO3_VERSION, "celery[sqs]==" + CELERY_VERSION], timeout=600)
        for relative in TRIM:
            shutil.rmtree(build / relative, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        system.run(["tar", "-C", str(build), "-cf", str(partial), "."], timeout=300)
        partial.rename(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def image_present(docker, tag):
    try:
        docker("image", "inspect", tag)
        return True
    except system.SandboxError:
        return False


def ensure_app_image(docker, container, cache_dir):
    """Import the base (if this daemon lacks it) and build the role's app image."""
    tag = app_tag(container)
    if image_present(docker, tag):
        return tag
    if not image_present(docker, base_tag()):
        docker("import", str(rootfs_tarball(cache_dir)), base_tag(), timeout=300)
    with tempfile.TemporaryDirectory() as context:
        shutil.copytree(APP_DIR, Path(context) / "app", ignore=shutil.ignore_patterns("__pycache__"))
        (Path(context) / "Dockerfile").write_text(
            "FROM %s\nCOPY app /app\nWORKDIR /app\nENV PYTHONUNBUFFERED=1\n" % base_tag())
        docker("build", "-q", "-t", tag, context, timeout=300)
    return tag
