"""The README is read in a minute and points at docs/ for the rest; nothing in either points outside
the repository (an operator who cloned it has nothing else); every link between them resolves."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def test_the_readme_is_short_and_its_first_screen_holds_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    first_screen = "\n".join(lines[:24])
    assert "./dev demo" in first_screen and "./dev test" in first_screen


def test_no_page_points_outside_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text(), page.name


def test_every_link_between_the_pages_resolves():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), "%s links to a missing %s" % (page.name, target)


def test_no_function_of_the_package_is_over_80_lines():
    import ast
    long = []
    for path in sorted((ROOT / "auditor").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append("%s:%d %s" % (path.relative_to(ROOT), node.lineno, node.name))
    assert long == []
