"""The inventory's YAML reader builds documents from the parser's events: it must read every
document exactly as PyYAML's safe loader does, and keep every key's line."""
from pathlib import Path

import pytest
import yaml

from auditor.errors import InventoryError
from auditor.yamldoc import load_located

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTS = [
    "a: 1\nb: [1, 2.5, true, null, ~, '3', 0x10, 0o17, 1_000, .inf, 2026-01-01, 2026-01-01 10:00:00, yes, 'no']\n",
    "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n",
    "one: &one {x: 1}\ntwo: &two {x: 2, z: 1}\nc: {<<: [*one, *two], w: 0}\n",
    "a: !!str 12\nb: !!int '7'\nc: !!float '1'\nd: !!binary aGk=\n",
    "list: &l [a, b]\nagain: *l\nnested: {deep: {deeper: [*l, {k: v}]}}\n",
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "", "# nothing\n", "[1, 2]\n", "just a string\n", "~: null key\n",
]


FILES = sorted(list(ROOT.glob("*.yaml")) + list((ROOT / "auditor" / "profiles").glob("*.yaml")))


@pytest.mark.parametrize("text", DOCUMENTS + [path.read_text() for path in FILES],
                         ids=["inline-%d" % n for n in range(len(DOCUMENTS))] + [path.name for path in FILES])
def test_every_document_reads_as_pyyamls_safe_loader_reads_it(text):
    assert load_located(text, "f.yaml") == yaml.safe_load(text)


def test_merged_keys_come_first_as_in_pyyaml_and_keys_keep_their_lines():
    document = load_located("base: &b\n  x: 1\n  y: 2\nc:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert list(document["c"]) == ["x", "y"] and document["c"]["y"] == 3
    assert document["c"].where("y") == "f.yaml:6" and document["c"].where("x") == "f.yaml:2"
    assert document.where("c") == "f.yaml:4"


@pytest.mark.parametrize("text, error, words", [
    ("a: 1\na: 2\n", InventoryError, "f.yaml:2: 'a' appears twice in the same mapping (first at line 1)"),
    ("? [1]\n: 2\n", InventoryError, "f.yaml:1: a key must be a name, not a list"),
    ("a: b\n---\nc: d\n", yaml.YAMLError, "expected a single document"),
    ("a: *nowhere\n", yaml.YAMLError, "found undefined alias"),
    ("a: !vault |\n  x\n", yaml.YAMLError, "could not determine a constructor for the tag '!vault'"),
    ("a: !!set {x}\n", yaml.YAMLError, "is not supported here"),
    ("<<: 3\n", yaml.YAMLError, "expected a mapping or list of mappings for merging"),
    ("a: [1, 2\n", yaml.YAMLError, "while parsing a flow sequence"),
])
def test_what_pyyaml_refuses_is_refused_with_its_line(text, error, words):
    with pytest.raises(error) as raised:
        load_located(text, "f.yaml")
    assert words in str(raised.value)
