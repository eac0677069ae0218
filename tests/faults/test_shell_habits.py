"""The operator's shell habits work as with curl, jq and Ansible: reports to `/dev/stdout`, to a
process substitution or a FIFO; inventories from `<(sops -d ...)` or a pipe on `/dev/stdin`; a
file written in place where its directory is not the operator's. Real processes under a real shell:
the shell is the point. Run as root, the plain-user cases run as `nobody`."""
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from auditor import files
from faultkit import free_port

FLEET_AUDIT = str(Path(sys.executable).parent / "fleet-audit")
NOBODY = 65534


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's own is root's only)."""
    with tempfile.TemporaryDirectory(prefix="shell-habits-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.fixture
def fleet(shared_dir):
    """An inventory of one host that refuses connections: every audit ends fast, exit 1."""
    known = shared_dir / "known_hosts"
    known.touch()
    path = shared_dir / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_user": "nobody", "auditor": {"known_hosts": str(known), "roles": ["api"]}},
        "hosts": {"api-1": {"ansible_host": "127.0.0.1", "ansible_port": free_port()}}}}))
    for made in (known, path):
        made.chmod(0o644)
    return path


def shell(script, plain_user=False):
    """`bash -c SCRIPT` with $FA the installed command; as `nobody` when asked and running as root."""
    user = NOBODY if plain_user and os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="shell-habits-home-") as home:     # its own ~/.ansible and state
        if user is not None:
            os.chown(home, user, -1)
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd="/",
                              env=dict(os.environ, NO_COLOR="1", FA=FLEET_AUDIT, HOME=home,
                                       XDG_STATE_HOME=os.path.join(home, ".local", "state")), user=user)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.mark.parametrize("stream", ["/dev/stdout", "/dev/stderr"])
def test_a_report_goes_to_the_callers_own_stream(fleet, stream):
    done = shell('"$FA" audit -i %s -f json -o %s' % (fleet, stream))
    assert done.returncode == 1, done.stderr
    report = done.stdout if stream == "/dev/stdout" else done.stderr[done.stderr.index("{"):done.stderr.rindex("}") + 1]
    assert json.loads(report)["hosts"][0]["name"] == "api-1"


def test_a_report_goes_through_a_process_substitution(fleet, shared_dir):
    caught = shared_dir / "caught.json"
    done = shell('"$FA" audit -i %s -f json -o >(cat > %s); code=$?; wait; exit $code' % (fleet, caught))
    assert done.returncode == 1, done.stderr
    assert json.loads(caught.read_text())["hosts"][0]["name"] == "api-1"


def test_a_report_goes_to_a_fifo_whose_reader_starts_later(fleet, shared_dir):
    fifo = shared_dir / "report.fifo"
    os.mkfifo(fifo)
    done = shell('"$FA" audit -i %s -f json -o %s & sleep 1; cat %s; wait $!' % (fleet, fifo, fifo))
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["hosts"][0]["name"] == "api-1"


def test_a_link_to_a_regular_file_is_still_refused(fleet, shared_dir):
    target = shared_dir / "precious"
    target.write_text("keep me\n")
    (shared_dir / "link").symlink_to(target)
    done = shell('"$FA" audit -i %s -o %s' % (fleet, shared_dir / "link"))
    assert done.returncode == 2 and "symbolic link" in done.stderr and target.read_text() == "keep me\n"


def test_a_plain_user_writes_a_file_they_own_in_a_directory_they_may_not_write(fleet, shared_dir):
    report = shared_dir / "report.json"
    report.write_text("old\n")
    os.chown(report, NOBODY if os.geteuid() == 0 else os.getuid(), -1)
    shared_dir.chmod(0o555)
    done = shell('"$FA" audit -i %s -f json -o %s' % (fleet, report), plain_user=True)
    assert done.returncode == 1, done.stderr
    assert json.loads(report.read_text())["hosts"][0]["name"] == "api-1"
    assert oct(report.stat().st_mode & 0o777) == "0o600"


def test_a_plain_user_is_told_the_file_is_not_theirs_to_write(fleet, shared_dir):
    report = shared_dir / "report.json"
    report.write_text("old\n")
    report.chmod(0o444)
    done = shell('"$FA" audit -i %s -o %s' % (fleet, report), plain_user=True)
    assert done.returncode == 2 and "you may not write it" in done.stderr, done.stderr
    assert "audit:" not in done.stderr              # refused before any host
    new = shared_dir / "sub" / "new.json"
    new.parent.mkdir()
    new.parent.chmod(0o555)
    denied = shell('"$FA" audit -i %s -o %s' % (fleet, new), plain_user=True)
    assert denied.returncode == 2 and "you may not create files in %s" % new.parent in denied.stderr


def test_a_device_that_refuses_the_report_sends_it_to_stdout_as_a_plain_user_too(fleet):
    done = shell('"$FA" audit -i %s -f json -o /dev/full' % fleet, plain_user=True)
    assert done.returncode == 4, done.stderr
    assert "could not be written to /dev/full" in done.stderr
    assert json.loads(done.stdout)["hosts"][0]["name"] == "api-1"


@pytest.mark.parametrize("how", ["-i <(cat {inv})", "-i /dev/stdin < {inv}", "-i /dev/stdin", "-i /dev/fd/3 3< {inv}"])
def test_an_inventory_from_a_pipe_is_read_once(fleet, how):
    command = '"$FA" hosts ' + how.format(inv=shlex.quote(str(fleet)))
    if how == "-i /dev/stdin":
        command = "cat %s | %s" % (shlex.quote(str(fleet)), command)
    done = shell(command)
    assert done.returncode == 0, done.stderr
    assert "api-1" in done.stdout and "1 host(s)" in done.stdout


def test_an_ini_inventory_from_a_pipe_reaches_ansibles_reader(shared_dir):
    ini = "[api]\napi-1 ansible_host=127.0.0.1 ansible_port=%d ansible_user=nobody\n" % free_port()
    (shared_dir / "hosts.ini").write_text(ini)
    done = shell('"$FA" hosts -i <(cat %s)' % (shared_dir / "hosts.ini"))
    assert done.returncode == 0, done.stderr
    assert "api-1" in done.stdout


def test_an_inventory_that_is_not_a_file_or_pipe_is_refused_at_once():
    done = shell('ulimit -v 2000000; "$FA" hosts -i /dev/zero')      # 2 GB of address space at most
    assert done.returncode == 2 and "it is a character device, not a file or a pipe" in done.stderr


def test_every_file_the_auditor_reads_is_bounded(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["bash", "-c", "head -c 100000 /dev/zero > %s" % fifo])
    with pytest.raises(files.Unreadable, match="more than"):
        files.read_bytes(fifo, limit=1000)
    writer.kill()
    writer.wait()


def test_saved_audits_and_baselines_are_read_from_pipes(fleet, shared_dir):
    saved = shared_dir / "a.json"
    shell('"$FA" audit -i %s -f json -o %s' % (fleet, saved))
    done = shell('"$FA" diff <(cat {0}) <(cat {0})'.format(saved))
    assert done.returncode == 0, done.stderr
    baseline = shell('"$FA" preflight -i %s --baseline <(printf "app region: [\\n")' % fleet)
    assert baseline.returncode == 2 and "/dev/fd/" in baseline.stderr and "<unicode string>" not in baseline.stderr
