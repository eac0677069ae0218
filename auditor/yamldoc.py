"""YAML documents whose mappings remember the line of each key, built straight from the parser's
events.

PyYAML's own path (compose a node graph, then construct) costs about 40 us per host line even
with libyaml's parser: a 100,000-host inventory took 10 s to read before anything was checked.
Building the mappings from libyaml's events, with each plain scalar's type resolved once per
distinct spelling, reads it in a tenth of that and keeps what the inventory's error messages
need: file:line of every key, duplicate keys refused, anchors, aliases and merge keys (`<<`) as
YAML defines them. Without libyaml, PyYAML's pure-Python parser gives the same events, slower.
"""
import reprlib

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (AliasEvent, DocumentStartEvent, MappingEndEvent, MappingStartEvent, ScalarEvent,
                         SequenceEndEvent, SequenceStartEvent)
from yaml.nodes import ScalarNode

from .errors import InventoryError

EventLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"


class Located(dict):
    """A mapping that remembers the file and line of each key."""

    source = "?"
    lines: dict = {}

    def where(self, key=None):
        line = self.lines.get(key) if key is not None else self.lines.get(None)
        return "%s:%s" % (self.source, line) if line else self.source


class _BoundedRepr(reprlib.Repr):
    def repr_Located(self, value, level):      # the loader's mappings are dicts
        return self.repr_dict(value, level)


_SHOWN = _BoundedRepr()
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 4, 80, 80


def shown(value):
    """A value as an error message quotes it: bounded, whatever its size (a YAML alias bomb is
    small on disk and endless when printed)."""
    return _SHOWN.repr(value)


class _Scalars:
    """Plain and tagged scalars -> Python values, each distinct spelling resolved once (an
    inventory repeats the same few thousand words: group names, users, ports)."""

    def __init__(self):
        self.resolver = yaml.SafeLoader("")
        self.tags = {}
        self.values = {}

    def value(self, event):
        tag = event.tag
        if tag is None or tag == "!":
            implicit = event.implicit
            tag = self.tags.get((event.value, implicit))
            if tag is None:
                tag = self.tags[(event.value, implicit)] = self.resolver.resolve(ScalarNode, event.value, implicit)
        if tag == STR_TAG:
            return event.value
        if tag == MERGE_TAG:
            return _MERGE
        known = self.values.get((tag, event.value))
        if known is None:
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            build = SafeConstructor.yaml_constructors.get(tag, SafeConstructor.construct_undefined)
            known = self.values[(tag, event.value)] = (build(self.resolver, node),)
        return known[0]


_MERGE = object()       # the `<<` key


class _Mapping:
    """A mapping being read: its keys' lines, the key waiting for its value, its merge sources."""

    __slots__ = ("value", "key", "key_line", "merges", "start")

    def __init__(self, value, start):
        self.value, self.start = value, start
        self.key, self.key_line = _NO_KEY, None
        self.merges = []


def _located(path, line):
    mapping = Located()
    mapping.source = path
    mapping.lines = {None: line}
    return mapping


def load_located(text, path):
    """The one YAML document of `text` (None if empty); raises yaml.YAMLError (with its mark) or
    InventoryError (a key that is not a name, a key written twice) naming `path` and the line."""
    path = str(path)
    scalars = _Scalars()
    anchors = {}
    stack = []          # open collections: lists, and _Mapping frames
    root = None
    documents = 0
    events = yaml.parse(text, Loader=EventLoader)
    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            value = scalars.value(event)
        elif kind is MappingStartEvent:
            _check_collection_tag(event, MAP_TAG)
            value = _located(path, event.start_mark.line + 1)
        elif kind is SequenceStartEvent:
            _check_collection_tag(event, SEQ_TAG)
            value = []
        elif kind is AliasEvent:
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, "found undefined alias %r" % event.anchor,
                                                  event.start_mark)
            value = anchors[event.anchor]
        elif kind is MappingEndEvent:
            _apply_merges(stack.pop())
            continue
        elif kind is SequenceEndEvent:
            stack.pop()
            continue
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                                  "but found another document", event.start_mark)
            continue
        else:
            continue
        anchor = getattr(event, "anchor", None)
        if anchor is not None and kind is not AliasEvent:
            anchors[anchor] = value
        if not stack:
            root = value
        else:
            _place(stack[-1], value, event, path)
        if kind is MappingStartEvent:
            stack.append(_Mapping(value, event.start_mark))
        elif kind is SequenceStartEvent:
            stack.append(value)
    return root


def _check_collection_tag(event, default):
    if event.tag not in (None, "!", default):
        raise ConstructorError(None, None, "tag %r is not supported here" % event.tag, event.start_mark)


def _place(parent, value, event, path):
    if isinstance(parent, list):
        parent.append(value)
        return
    line = event.start_mark.line + 1
    if parent.key is _NO_KEY:
        if isinstance(value, (dict, list)):
            raise InventoryError("%s:%d: a key must be a name, not %s\n  fix: write KEY: VALUE" % (
                path, line, "a mapping" if isinstance(value, dict) else "a list"))
        try:
            duplicate = value in parent.value
        except TypeError:
            raise InventoryError("%s:%d: a key must be a name, not %s\n  fix: write KEY: VALUE" % (
                path, line, shown(value)))
        if duplicate:           # YAML forbids it; Ansible would keep the last one without a word
            raise InventoryError("%s:%d: %s appears twice in the same mapping (first at line %d)\n  fix: keep one "
                                 "of them" % (path, line, shown(value), parent.value.lines[value]))
        parent.key, parent.key_line = value, line
        return
    key, parent.key = parent.key, _NO_KEY
    if key is _MERGE:
        parent.merges.append((value, event.start_mark))
        return
    parent.value[key] = value
    parent.value.lines[key] = parent.key_line


_NO_KEY = object()      # a mapping waiting for its next key (None is a key: `~: x`)


def _apply_merges(frame):
    """`<<: *base` (or a list of them): the merged mappings' keys the mapping does not set itself,
    the first listed winning, placed first as PyYAML places them."""
    if not frame.merges:
        return
    mapping, merged, lines = frame.value, {}, {}
    for value, mark in frame.merges:
        for source in value if isinstance(value, list) else [value]:
            if not isinstance(source, dict):
                raise ConstructorError("while constructing a mapping", frame.start,
                                       "expected a mapping or list of mappings for merging", mark)
            for key, item in source.items():
                if key not in mapping and key not in merged:
                    merged[key] = item
                    lines[key] = getattr(source, "lines", {}).get(key)
    own = list(mapping.items())
    mapping.clear()
    mapping.update(merged)
    mapping.update(own)
    mapping.lines.update(lines)


def yaml_error(error, text, path):
    """(path:line, problem) of a YAML error, in the file's terms: PyYAML's own wording quotes its
    input as `in "<unicode string>"`, which names nothing the operator has."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark:
        where = "%s:%d" % (path, mark.line + 1)
    elif isinstance(getattr(error, "position", None), int):     # a character YAML refuses (NUL, ...)
        where = "%s:%d" % (path, text.count("\n", 0, error.position) + 1)
    else:
        where = str(path)
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or \
        " ".join(line.strip() for line in str(error).splitlines() if "<unicode string>" not in line)
    context = getattr(error, "context", None)
    return where, ("%s (%s)" % (problem, context) if context and getattr(error, "problem", None) else problem)
