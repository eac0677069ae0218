"""The seams are typed: every public function of the transports, the pipeline, the facts, the rules
and the reports says what it takes and returns, and the pinned type checker (mypy, configured in
pyproject.toml) passes on them."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPED = ["auditor/transports", "auditor/collect.py", "auditor/audit.py", "auditor/facts.py", "auditor/crosshost.py",
         "auditor/diagnosis.py", "auditor/render"]


def _modules():
    for name in TYPED:
        path = ROOT / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _untyped(tree, owner=""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _untyped(node, node.name + ".")
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            bare = [a.arg for a in arguments if a.annotation is None and a.arg not in ("self", "cls")]
            bare += ["*" + a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None and a.annotation is None]
            if bare or node.returns is None:
                yield "%s%s(%s)%s" % (owner, node.name, ", ".join(bare), "" if node.returns else " -> ?")


def test_every_public_function_of_the_seams_is_annotated():
    missing = ["%s: %s" % (path.relative_to(ROOT), name) for path in _modules()
               for name in _untyped(ast.parse(path.read_text()))]
    assert missing == []


def test_the_type_checker_passes_on_the_seams(tmp_path):
    # its own cache: a checkout's .mypy_cache may be another user's (mypy fails inside on one it cannot write)
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(tmp_path / "mypy-cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
