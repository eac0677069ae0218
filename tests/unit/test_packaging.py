"""An operator's `pip install .` ships every package of the auditor (the list in pyproject.toml is
explicit, so that the checkout-only sandbox stays out): a new subpackage must be listed."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_auditor_package_is_listed_for_installation():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "auditor").rglob("__init__.py")}
    assert found == listed


def test_every_shipped_profile_is_package_data():
    import fnmatch
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["auditor"]
    shipped = [p.relative_to(ROOT / "auditor").as_posix() for p in (ROOT / "auditor" / "profiles").iterdir()]
    assert shipped and all(any(fnmatch.fnmatch(path, pattern) for pattern in patterns) for path in shipped)


def test_the_installed_commands_never_import_the_sandbox():
    """The sandbox's tasks are added by the checkout's fabfile.py; the package's tasks stand alone."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "import sys; from auditor.cli import namespace; names = "
                           "namespace().task_names; print(sorted(m for m in sys.modules if m.split('.')[0] == "
                           "'sandbox'), any(n.startswith('sandbox') for n in names))"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.stdout.split() == ["[]", "False"], done.stderr
