"""What runs on the hosts must run on their Python: Amazon Linux 2's python3 is
3.7. vermin reads the shipped programs' syntax and library use; a newer feature
slipping in fails here instead of on a fleet at 2 a.m."""
import subprocess
import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "auditor" / "agent"
VERMIN = str(Path(sys.executable).parent / "vermin")


def test_shipped_programs_need_at_most_python_3_7():
    done = subprocess.run([VERMIN, "--no-tips", "--violations", "-t=3.7-", str(AGENT)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
