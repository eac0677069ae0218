"""Ansible-compatible YAML inventory -> validated host specs.

Reads `all`/`children`/`hosts`/`vars` (or an `aws_ec2` plugin file: see
ec2_inventory.py) plus `group_vars/` and `host_vars/` beside the file, in
Ansible's precedence order. The `auditor:` key is deep
merged across levels (Ansible would replace it whole); every other variable
follows Ansible's replace rule. Bad input raises one InventoryError naming the
file, line, key and a fix.
"""
import collections.abc
import contextlib
import copy
import dataclasses
import difflib
import functools
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import yaml

from . import ec2_inventory, files, transports
from .errors import InventoryError
from .render.sanitize import one_line
from .profile import DEFAULT_PROFILE, load_profile, profile_path, shipped_profiles
from .agent.wire import LogSourceKind
from .yamldoc import Located, load_located, shown, yaml_error
from .settings import EVERY_QUEUE, LOG_SOURCES, LogSource, Marker, Role, Settings, duration_seconds, \
    generic_defaults, schema_of


def read_inventory_text(path):
    """The file's text, read once (a pipe such as `-i <(sops -d inventory.yaml)` is empty the
    second time) and with a bound (`-i /dev/zero` must not eat the memory)."""
    try:
        return files.read_text(path)
    except files.Unreadable as error:
        raise InventoryError("%s: cannot read inventory: %s\n  fix: pass an existing file (or a pipe) with -i PATH"
                             % (path, error))
    except UnicodeDecodeError as error:
        raise InventoryError("%s: not UTF-8 text (byte %d)\n  fix: save the inventory as UTF-8" % (path, error.start))


def load_yaml(path, text=None):
    """The YAML document of a file (or of its text, already read), keys located by line."""
    path = Path(path)
    if text is None:
        text = read_inventory_text(path)
    try:
        document = load_located(text, path)
    except yaml.YAMLError as error:
        raise InventoryError("%s: not valid YAML: %s\n  fix: correct the YAML syntax at that line"
                             % yaml_error(error, text, path))
    return document if document is not None else Located()


@dataclass(frozen=True)
class HostSpec:
    """Everything needed to reach one host and audit it."""

    name: str
    target: transports.Target               # where its transport reaches it (that transport's own record)
    connection: str = transports.DEFAULT    # the transport, by Ansible's `ansible_connection` name
    python: str = "python3"
    groups: Tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings, compare=False, hash=False)

    @property
    def address(self):
        """Where the host is, as every transport names it (an address, an instance id)."""
        return self.target.address

    def with_target(self, **changes):
        """This host reached otherwise: its target with `changes` (a key file, a jump host...)."""
        return dataclasses.replace(self, target=dataclasses.replace(self.target, **changes))

    @property
    def roles(self):
        return self.settings.roles

    @property
    def app(self):
        return app_environment(self.settings, self.roles)


@dataclass(frozen=True)
class Workload:
    """What the agent reads for one role: its container, or its plain process's log file or unit."""
    name: str
    role: str
    source: LogSource
    markers: tuple = ()

    @property
    def kind(self):
        return self.source.kind

    def as_json(self):
        return {"name": self.name, "role": self.role, "source": _to_json(self.source),
                "markers": [_to_json(m) for m in self.markers]}


def _to_json(record):
    return {key: value for key, value in dataclasses.asdict(record).items() if value is not None}


@dataclass(frozen=True)
class AppEnvironment:
    """Where the app's environment is read on a host, and the workloads read there: decided once,
    here, for the agent, `hosts` and `check-host` alike."""
    env_from: str               # container | dotenv | shell
    container: Optional[str]    # container mode: the app's container
    workloads: Tuple[Workload, ...]

    def describe(self):
        return "container %s" % self.container if self.env_from == "container" else self.env_from


def app_environment(settings, roles):
    """The host's workloads (a role whose log source names nothing is left out) and its app
    environment: the configured container, else the first docker workload's; container mode
    without any container reads the .env instead."""
    workloads = []
    for role in roles:
        definition = settings.role(role)
        source = definition.log_source
        name = {LogSourceKind.DOCKER: definition.container, LogSourceKind.FILE: source.path,
                LogSourceKind.JOURNALD: source.unit}.get(source.kind)
        if name:
            workloads.append(Workload(name, role, source, definition.markers))
    containers = [w.name for w in workloads if w.kind == LogSourceKind.DOCKER]
    container = settings.app_container or (containers[0] if containers else None)
    env_from = settings.env_from if (container or settings.env_from != "container") else "dotenv"
    return AppEnvironment(env_from, container if env_from == "container" else None, tuple(workloads))


# -- the settings schema --------------------------------------------------------




def _wrong_type(value, types):
    if value is None:
        return type(None) not in types
    if bool not in types and isinstance(value, bool):
        return True             # `parallel: true` is not 1
    return not isinstance(value, tuple(t for t in types if t is not type(None)))


def _type_name(types):
    names = {bool: "true/false", int: "a number", float: "a number", dict: "a mapping", list: "a list",
             str: "a string"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types if t is not type(None)))


def _fail(mapping, key, problem, fix):
    where = mapping.where(key) if isinstance(mapping, Located) else "?"
    raise InventoryError("%s: %s\n  fix: %s" % (where, problem, fix))


def validate_settings(settings, path="auditor", record=Settings):
    """Check the keys and types of one `auditor:` mapping (or a profile, or one of their nested
    mappings) against its record in auditor/settings.py: the one schema."""
    if not isinstance(settings, dict):
        raise InventoryError("%s must be a mapping" % path)
    schema = schema_of(record)
    for key, value in settings.items():
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            _fail(settings, key, "unknown key %s.%s" % (path, key),
                  "did you mean %r?" % close[0] if close else "valid keys: %s" % ", ".join(sorted(schema)))
        if value is None:
            continue            # null removes what a profile or an earlier layer set: the default is back
        expected = schema[key]
        if _wrong_type(value, expected.types):
            _fail(settings, key, "%s.%s must be %s, not %s" % (path, key, _type_name(expected.types), shown(value)),
                  "write %s.%s as %s" % (path, key, _type_name(expected.types)))
        if expected.limits and not expected.limits[0] <= value <= expected.limits[1]:
            _fail(settings, key, "%s.%s is %s, out of range" % (path, key, shown(value)),
                  "use a value from %s to %s" % expected.limits)
        if expected.choices and value not in expected.choices:
            _fail(settings, key, "%s.%s is %s" % (path, key, shown(value)),
                  "use one of: %s" % ", ".join(expected.choices))
        if key == "log_source":
            _check_log_source(settings, value, path)
        elif expected.entries is not None:      # user-named entries: queues, role_defs
            for entry, body in value.items():
                if body is None:
                    continue    # removes the entry
                if not isinstance(body, dict):
                    _fail(value, entry, "%s.%s.%s must be a mapping (or null, to remove it)" % (path, key, entry),
                          "see inventory.yaml for an example")
                validate_settings(body, "%s.%s.%s" % (path, key, entry), expected.entries)
        elif expected.record is not None and isinstance(value, dict):
            validate_settings(value, "%s.%s" % (path, key), expected.record)
        elif expected.record is not None and key != "markers":      # a list of records (credentials.prefer)
            for number, item in enumerate(value):
                validate_settings(item, "%s.%s[%d]" % (path, key, number), expected.record)
                missing = [name for name in schema_of(expected.record) if name not in item]
                if missing:
                    _fail(settings, key, "%s.%s[%d] needs %s" % (path, key, number, ", ".join(missing)),
                          "write each entry with %s" % ", ".join(schema_of(expected.record)))
        elif list in expected.types and expected.record is None and \
                not all(isinstance(item, str) and item or item is None and expected.null_items for item in value):
            _fail(settings, key, "%s.%s must list names (strings), not %s" % (path, key, shown(value)),
                  "write %s.%s as a list of names" % (path, key))
    if "log_window" in settings and settings["log_window"] is not None:
        try:
            duration_seconds(settings["log_window"])
        except ValueError:
            _fail(settings, "log_window", "%s.log_window is %s, not a duration" % (path, shown(settings["log_window"])),
                  "write seconds (3600) or a duration such as 90m, 1h or 2h30m")
    if record is Role:
        for marker in settings.get("markers") or []:
            _check_marker(settings, marker, path)


def _check_log_source(settings, source, path):
    kind = source.get("kind", "docker")
    if kind not in LOG_SOURCES:
        _fail(settings, "log_source", "%s.log_source.kind is %s" % (path, shown(kind)),
              "use one of: %s" % ", ".join(schema_of(LogSource)["kind"].choices))
    missing = [key for key in LOG_SOURCES[kind] if not isinstance(source.get(key), str) or not source.get(key)]
    unknown = sorted(set(source) - {"kind", "path", "unit", "process"})
    if missing or unknown:
        _fail(settings, "log_source", "%s.log_source (%s) %s" % (
            path, kind, "needs %s" % ", ".join(missing) if missing else "has unknown key(s) %s" % ", ".join(unknown)),
            "e.g. {kind: file, path: /var/log/academy/worker.log, process: 'worker.py'} or "
            "{kind: journald, unit: academy-worker}")


def _check_marker(settings, marker, path):
    if not isinstance(marker, dict) or not {"name", "kind", "pattern"} <= set(marker):
        _fail(settings, "markers", "%s.markers entries need name, kind and pattern" % path,
              "e.g. {name: received, kind: received, pattern: 'SQS_MESSAGE_RECEIVED .*job_id=(?P<job>\\S+)'}")
    kinds = schema_of(Marker)["kind"].choices
    if marker["kind"] not in kinds:
        _fail(settings, "markers", "%s marker %s has kind %s" % (path, shown(marker["name"]), shown(marker["kind"])),
              "use one of: %s" % ", ".join(kinds))
    try:
        re.compile(marker["pattern"])
    except re.error as error:
        _fail(settings, "markers", "%s marker %s: bad pattern: %s" % (path, shown(marker["name"]), error),
              "write a Python regular expression; name the job id group (?P<job>...)")


def deep_merge(base, override, remove=False):
    """Mappings merge key by key; anything else (lists included) replaces. With `remove`, a null
    deletes the mapping or list base has under that key (between inventory layers a null is kept,
    so that it still removes the profile's entry at the end); a null scalar is that value, or
    the default where null is no value (Settings.from_mapping)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value, remove)
        elif remove and value is None and isinstance(result.get(key), (dict, list)):
            result.pop(key)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _read_profile(path):
    """A profile file, read and checked like an inventory's `auditor:` mapping."""
    if not path.is_file():
        close = difflib.get_close_matches(path.stem, shipped_profiles(), n=1)
        raise InventoryError("no profile %s (%s)\n  fix: %s" % (
            path.stem, path, "did you mean %r?" % close[0] if close else
            "use one of: %s, none, or the path of a profile file" % ", ".join(shipped_profiles())))
    document = load_yaml(path)
    validate_settings(document, "profile %s" % path.stem)
    if "profile" in document:
        _fail(document, "profile", "a profile cannot choose another profile", "remove `profile:` from %s" % path)
    return document


def host_settings(user):
    """One host's typed settings: the generic defaults, its chosen profile, then its inventory
    layers (`user`, merged already), where null removes an entry. A queue removed is gone from
    the roles and their markers too."""
    choice = user.get("profile") or DEFAULT_PROFILE
    if not isinstance(choice, str):
        raise InventoryError("auditor.profile must be a name or a path, not %s\n  fix: write profile: NAME "
                             "(one of %s), a file's path, or none" % (shown(choice), ", ".join(shipped_profiles())))
    profile = load_profile(choice, lambda path: _read_profile(Path(path)))
    merged = deep_merge(deep_merge(generic_defaults(), profile, remove=True), user, remove=True)
    merged["profile"] = choice if choice == "none" else profile_path(choice).stem
    settings = Settings.from_mapping(merged)
    known = set(settings.queues) | {EVERY_QUEUE}     # a removed queue is gone everywhere: roles, markers, probe
    roles = {name: dataclasses.replace(
        role, produces=tuple(q for q in role.produces if q in known), consumes=tuple(q for q in role.consumes if q in known),
        markers=tuple(m for m in role.markers if m.queue in (None, *known))) for name, role in settings.role_defs.items()}
    return dataclasses.replace(settings, role_defs=roles)


def merge_vars(layers):
    """(the host's variables by Ansible's precedence, later layers winning; its `auditor:` layers
    in order, deep merged into its settings once per distinct chain: Inventory._host_settings)."""
    merged, chain = {}, []
    for layer in layers:
        for older, newer in OLDER_NAMES.items():    # an older name counts at its own layer
            if older in layer and newer not in layer:
                layer = dict(layer, **{newer: layer[older]})
        for key, value in layer.items():
            if key == "auditor":
                chain.append(value if value is not None else _NO_SETTINGS)
            else:
                merged[key] = value
    return merged, chain


_NO_SETTINGS = Located()        # `auditor:` written with nothing under it


# -- groups and hosts -------------------------------------------------------------

@dataclass
class _Group:
    name: str
    depth: int = 0
    vars: list = field(default_factory=list)
    parents: set = field(default_factory=set)


class _VarsDirectory:
    """group_vars/ or host_vars/ beside the inventory: listed once, so that 100,000 hosts without
    a file of their own cost no 100,000 x 3 failed stat() calls."""

    def __init__(self, directory):
        self.directory = directory
        try:
            self.entries = set(os.listdir(directory))
        except OSError:
            self.entries = set()

    def layers(self, name):
        """NAME(.yml|.yaml) or every file in NAME/, in name order."""
        found = []
        for candidate in (name, name + ".yml", name + ".yaml"):
            if candidate not in self.entries:
                continue
            path = self.directory / candidate
            if path.is_file():
                found.append(path)
            elif path.is_dir():
                found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml")))
        layers = []
        for path in found:
            document = load_yaml(path)
            if not isinstance(document, dict):
                raise InventoryError("%s: must be a mapping of variables\n  fix: write KEY: VALUE lines" % path)
            layers.append(document)
        return layers


def _ansible_reads(path, text):
    """An inventory only Ansible's own reader understands: an INI file, a dynamic inventory plugin
    other than aws_ec2 (which the auditor reads itself); directories are checked before reading."""
    head = text[:4096]
    first = next((line.strip() for line in head.splitlines() if line.strip() and line.strip()[0] not in "#;"), "")
    return path.suffix in (".ini", ".cfg") or (first.startswith("[") and first.endswith("]") and " " not in first) \
        or (first.startswith("plugin:") and "aws_ec2" not in first)


def ansible_inventory_program():
    """`ansible-inventory` on PATH, else beside this Python (ansible-core installed in the same venv)."""
    beside = Path(sys.executable).parent / "ansible-inventory"
    return shutil.which("ansible-inventory") or (str(beside) if os.access(beside, os.X_OK) else None)


def document_from_ansible(path, text=None):
    """`ansible-inventory --list --export` (group vars kept apart, so the auditor's deep merge of
    `auditor:` still applies) turned into the YAML inventory's shape: the same validation follows.
    Ansible reads INI files, directories, plugins and vault-encrypted variables. A pipe already read
    (`-i <(...)`) is handed to it as a private temporary copy: it cannot be read twice."""
    program = ansible_inventory_program()
    if program is None:
        raise InventoryError("%s: an INI file, a directory or a dynamic inventory plugin needs Ansible's own reader\n"
                             "  fix: install ansible-core (pip install ansible-core: `ansible-inventory` is then "
                             "used), or write the inventory as YAML" % path)
    with tempfile.TemporaryDirectory(prefix="fleet-audit-") as private:
        source = path
        if text is not None and not path.is_file():
            source = Path(private) / ("inventory" + (path.suffix if path.suffix in (".ini", ".cfg", ".yml", ".yaml")
                                                     else ".ini"))
            source.write_text(text, encoding="utf-8")
        return _ansible_document(program, path, source)


def _ansible_document(program, path, source):
    try:
        done = subprocess.run([program, "-i", str(source), "--list", "--export"], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InventoryError("%s: ansible-inventory did not answer in 120 s\n  fix: run `ansible-inventory -i %s "
                             "--list` and see what it waits for" % (path, path))
    if done.returncode != 0:
        raise InventoryError("%s: ansible-inventory could not read it: %s\n  fix: run `ansible-inventory -i %s "
                             "--list` and correct what it says" % (path, one_line(done.stderr.strip()[-400:]), path))
    try:
        listed = json.loads(done.stdout)
    except ValueError:
        raise InventoryError("%s: ansible-inventory printed no JSON\n  fix: run `ansible-inventory -i %s --list`"
                             % (path, path))
    host_vars = (listed.get("_meta") or {}).get("hostvars") or {}
    placed = set()

    def group(name, seen=()):
        body = listed.get(name) or {}
        converted = {}
        if body.get("vars"):
            converted["vars"] = body["vars"]
        hosts = {}
        for host in body.get("hosts") or []:
            hosts[host] = host_vars.get(host) if host not in placed else None
            placed.add(host)
        if hosts:
            converted["hosts"] = hosts
        children = {child: group(child, seen + (name,)) for child in body.get("children") or [] if child not in seen}
        if children:
            converted["children"] = children
        return converted

    document = {"all": group("all")}
    if not placed:          # Ansible only warns about a source it cannot parse: say what it said
        raise InventoryError("%s: ansible-inventory found no hosts%s\n  fix: run `ansible-inventory -i %s --list` "
                             "and correct what it says" % (path, ": " + one_line(done.stderr.strip()[-400:])
                                                           if done.stderr.strip() else "", path))
    return document


def load_inventory(path):
    """Parse the inventory and return every host's spec in file order."""
    return Inventory(path).specs()


class Inventory:
    """One inventory, read: its hosts in file order, each one's spec built when first asked for.

    Hosts that share their groups' `auditor:` layers (almost all of them) share one settings
    record, built and validated once; a host's spec is checked when it is built, so choosing a
    few hosts of 100,000 pays for those few (an error in another host's own variables is raised
    when that host is chosen, never hidden)."""

    def __init__(self, path):
        self.path = path = Path(path)
        with gc_paused():
            self._read(path)

    def _read(self, path):
        document, from_ansible = _read_document(path)
        self.tree = tree = _GroupTree(path)
        for top, body in document.items():
            tree.walk(top, body, 0 if top == "all" else 1, None if top == "all" else "all")
        if not tree.order:
            raise InventoryError("%s: no hosts\n  fix: list hosts under all.hosts or all.children.GROUP.hosts" % path)
        self.names = tree.order
        self._files = not from_ansible      # (Ansible's reader has applied group_vars/ and host_vars/ already)
        group_files, self._host_files = (_VarsDirectory(path.parent / kind) for kind in ("group_vars", "host_vars"))
        self._group_layers = {name: g.vars + (group_files.layers(name) if self._files else [])
                              for name, g in tree.groups.items()}
        self._specs = {}
        self._settings = {}         # ids of a host's `auditor:` layers, in order -> its Settings
        self._validated = set()     # ids of the `auditor:` layers already checked

    def specs(self, names=None):
        """The specs of `names` (default: every host), in file order, each built and checked once."""
        with gc_paused():
            return [self.spec(name) for name in (self.names if names is None else names)]

    def spec(self, name):
        if name not in self._specs:
            ranked, layers = self._layers(name)
            variables, chain = merge_vars(layers)
            self._specs[name] = _host_spec(name, variables, self._host_settings(chain), ranked,
                                           self.tree.host_vars[name], self.path, layers)
        return self._specs[name]

    def bystanders(self, chosen):
        """The hosts not in `chosen`, for rules about a whole queue: each one's name, roles and
        settings, computed when first read (after the audit has connected). A host whose own
        variables are wrong is left out here: its error is raised when it is audited."""
        chosen = set(chosen)
        return _Bystanders(self, [name for name in self.names if name not in chosen])

    def _layers(self, name):
        ranked = self.tree.ranked_groups(name)
        layers = [layer for group in ranked for layer in self._group_layers[group]]
        layers += self.tree.host_vars[name] + (self._host_files.layers(name) if self._files else [])
        return ranked, layers

    def _host_settings(self, chain):
        """The settings of one chain of `auditor:` layers, validated and built once per distinct chain."""
        key = tuple(map(id, chain))
        if key not in self._settings:
            merged = {}
            for layer in chain:
                if id(layer) not in self._validated:
                    validate_settings(layer)
                    self._validated.add(id(layer))
                merged = deep_merge(merged, layer)
            self._settings[key] = host_settings(merged)
        return self._settings[key]


@contextlib.contextmanager
def gc_paused():
    """No cycle collection while an inventory's objects are built: they hold no cycles, and with
    100,000 hosts the collector's passes over the growing heap took half the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Bystanders(collections.abc.Sequence):
    """The inventory's hosts an audit does not visit, as HostSpec-like (name, roles, settings)
    records computed on first use."""

    def __init__(self, inventory, names):
        self._inventory, self._names = inventory, names

    @functools.cached_property
    def _hosts(self):
        with gc_paused():
            return self._settings_of_each()

    def _settings_of_each(self):
        found = []
        for name in self._names:
            try:
                _, layers = self._inventory._layers(name)
                found.append(Bystander(name, self._inventory._host_settings(merge_vars(layers)[1])))
            except InventoryError:
                continue
        return found

    def __getitem__(self, index):
        return self._hosts[index]

    def __len__(self):
        return len(self._hosts)


@dataclass(frozen=True)
class Bystander:
    """A host of the inventory an audit does not visit: what rules about a whole queue read of it."""
    name: str
    settings: Settings

    @property
    def roles(self):
        return self.settings.roles


def _read_document(path):
    """(the inventory's document, whether Ansible's reader made it): YAML read here, INI files,
    directories and plugins by Ansible, an aws_ec2 plugin file by describing the instances."""
    text = None if path.is_dir() else read_inventory_text(path)
    from_ansible = text is None or _ansible_reads(path, text)
    document = document_from_ansible(path, text) if from_ansible else load_yaml(path, text)
    if ec2_inventory.is_ec2_inventory(document):
        instances = ec2_inventory.describe_instances(document, path)
        document = ec2_inventory.document_from_instances(document, instances, path)
        if not document["all"]["children"]["aws_ec2"]["hosts"]:
            raise InventoryError("%s: no EC2 instance matched (%d described)\n  fix: check regions, filters "
                                 "and hostnames" % (path, len(instances)))
    if not isinstance(document, dict) or not document:
        raise InventoryError("%s: empty or not a mapping\n  fix: start with `all:` and list hosts "
                             "under `hosts:` or `children:`" % path)
    return document, from_ansible


class _GroupTree:
    """The groups and hosts of one inventory document, as Ansible nests them."""

    def __init__(self, path):
        self.path = path
        self.groups = {"all": _Group("all")}
        self.host_vars, self.host_groups, self.order = {}, {}, []
        self._ranked = {}

    def walk(self, name, body, depth, parent):
        group = self.groups.setdefault(name, _Group(name))
        group.depth = max(group.depth, depth)
        if parent:
            group.parents.add(parent)
        if body is None:
            return
        _check_group(body, name, self.path)
        if body.get("vars"):
            group.vars.append(body["vars"])
        for host, hvars in (body.get("hosts") or {}).items():
            if hvars is not None and not isinstance(hvars, dict):
                _fail(body["hosts"], host, "host %r must map to variables or be empty" % host,
                      "write `%s:` followed by indented KEY: VALUE lines" % host)
            if host not in self.host_vars:
                self.order.append(host)
                self.host_vars[host] = []
            self.host_groups.setdefault(host, set()).add(name)
            if hvars:
                self.host_vars[host].append(hvars)
        for child, child_body in (body.get("children") or {}).items():
            self.walk(child, child_body, depth + 1, name)

    def ancestors(self, name):
        seen, stack = set(), [name]
        while stack:
            for parent in self.groups[stack.pop()].parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def ranked_groups(self, host):
        """The host's groups in Ansible's precedence order: all, then by depth, then by name (once
        per distinct set of groups the hosts are listed in)."""
        listed_in = frozenset(self.host_groups[host])
        if listed_in not in self._ranked:
            self._ranked[listed_in] = self._rank(listed_in)
        return self._ranked[listed_in]

    def _rank(self, listed_in):
        member_of = set(listed_in)
        for name in list(member_of):
            member_of |= self.ancestors(name)
        member_of.add("all")
        return tuple(sorted(member_of, key=lambda n: (n != "all", self.groups[n].depth, n)))


def _check_group(body, name, path):
    if not isinstance(body, dict):
        raise InventoryError("%s: group %r must be a mapping\n  fix: give it hosts:, vars: or children:" % (path, name))
    for key in body:
        if key not in ("hosts", "vars", "children"):
            _fail(body, key, "unknown key %r in group %r" % (key, name), "use hosts:, vars: or children:")
    for key, example in (("hosts", "web-1: {ansible_host: 10.0.0.5}"), ("children", "workers: {hosts: ...}"),
                         ("vars", "ansible_user: ubuntu")):
        if body.get(key) is not None and not isinstance(body[key], dict):
            _fail(body, key, "%s of group %r must be a mapping (names with their variables), not %s" % (
                key, name, type(body[key]).__name__), "write `%s:` with indented lines such as `%s`" % (key, example))


HOST_STRINGS = ("ansible_host", "ansible_user", "ansible_ssh_private_key_file", "ansible_python_interpreter",
                "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_connection", "ansible_ssh_host",
                "ansible_ssh_user")
OLDER_NAMES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_user": "ansible_user",
               "ansible_ssh_port": "ansible_port"}      # Ansible still reads them; the newer name wins
PASSWORDS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")


def _host_spec(name, variables, settings, groups, own_layers, path, layers=()):
    for key in PASSWORDS:
        if variables.get(key):
            raise InventoryError("%s: host %r sets %s: the audit never logs in with a password (it would have to "
                                 "send it, and it never prompts)\n  fix: use a key (ansible_ssh_private_key_file) "
                                 "or an ssh-agent, and remove %s" % (path, name, key, key))
    for key in HOST_STRINGS:
        if variables.get(key) is not None and not isinstance(variables[key], (str, int)) or \
                isinstance(variables.get(key), bool):
            raise InventoryError("%s: host %r: %s must be a string, not %s\n  fix: write %s as text"
                                 % (path, name, key, shown(variables[key]), key))
    try:
        connection = transports.canonical(str(variables.get("ansible_connection") or transports.DEFAULT))
    except ValueError as error:
        close = difflib.get_close_matches(str(variables["ansible_connection"]), list(transports.BACKENDS), n=1)
        raise InventoryError("%s: host %r: %s\n  fix: %s" % (path, name, error, "did you mean %r?" % close[0] if close
                                                            else "set ansible_connection to one of: %s" %
                                                            ", ".join(sorted(transports.BACKENDS))))
    unknown_roles = [r for r in settings.roles if r not in settings.role_defs]
    if unknown_roles:
        raise InventoryError("%s: host %r has role(s) %s not defined in auditor.role_defs\n  fix: use one of: %s"
                             % (path, name, ", ".join(unknown_roles), ", ".join(settings.role_defs) or
                                "define them under auditor.role_defs, or choose a profile that does"))
    try:
        target = transports.target_class(connection).from_variables(
            name, variables, settings, lambda key: _located(layers, key, None) is not None)
    except transports.TargetProblem as problem:
        where = _located(layers, problem.key, None) if problem.key else None
        if where is None:
            where = own_layers[0].where() if own_layers and isinstance(own_layers[0], Located) else str(path)
        raise InventoryError("%s: %s\n  fix: %s" % (where, problem.message, problem.fix))
    return HostSpec(name=name, target=target, connection=connection,
                    python=variables.get("ansible_python_interpreter") or "python3", groups=groups, settings=settings)


def _located(layers, key, path):
    """file:line where the highest-precedence layer sets `key`, else `path`."""
    for layer in reversed(list(layers)):
        if isinstance(layer, Located) and key in layer:
            return layer.where(key)
    return str(path) if path is not None else None


def host_names(hosts):
    """`--hosts`: comma-separated names, or @FILE with one name per line (# comments, blank lines and
    commas allowed), as --write-failed writes it."""
    if hosts is None or not hosts.startswith("@"):
        return hosts
    path = Path(hosts[1:]).expanduser()
    try:
        text = files.read_text(path)
    except (files.Unreadable, UnicodeDecodeError) as error:
        raise InventoryError("--hosts %s: cannot read %s (%s)\n  fix: pass @FILE of host names, one per line" % (
            shown(hosts), path, error))
    names = [word for line in text.splitlines() for word in line.split("#", 1)[0].replace(",", " ").split()]
    if not names:
        raise InventoryError("--hosts %s names no host (the file is empty: every host was ok?)\n  fix: give a file "
                             "with host names, one per line" % shown(hosts))
    return ",".join(names)


def select(specs, hosts=None, roles=None):
    """Hosts by name and/or role; unknown names are a usage error, not an empty audit."""
    names = select_names([s.name for s in specs], hosts)
    named = set(names or ())
    chosen = list(specs) if names is None else [s for s in specs if s.name in named]
    return select_roles(specs, roles, hosts, chosen) if roles else chosen


def select_names(names, hosts=None):
    """The names `--hosts` asks for, in inventory order (None: every host); unknown ones are a
    usage error, with the closest known name."""
    hosts = host_names(hosts)
    if hosts is None:
        return None
    wanted = [h.strip() for h in hosts.split(",") if h.strip()]
    if not wanted:
        raise InventoryError("--hosts names no host\n  fix: give host names separated by commas")
    known = set(names)
    missing = [h for h in wanted if h not in known]
    if missing:
        hints = ["%s (did you mean %r?)" % (h, close[0]) if close else h
                 for h in missing for close in [difflib.get_close_matches(h, names, n=1)]]
        choices = ", ".join(sorted(known)) if len(known) <= 50 else "the %d hosts `fleet-audit hosts` lists" % len(known)
        raise InventoryError("no host named %s in the inventory\n  fix: choose from %s" % (", ".join(hints), choices))
    wanted = set(wanted)
    return [name for name in names if name in wanted]


def select_roles(specs, roles, hosts=None, among=None):
    """The hosts among `among` (default: `specs`, the inventory's) that have one of `roles`
    (comma-separated)."""
    wanted_roles = {r.strip() for r in roles.split(",") if r.strip()}
    known_roles = sorted({role for spec in specs for role in spec.roles})
    unknown = sorted(wanted_roles - set(known_roles))
    if unknown:
        hints = ["%s (did you mean %r?)" % (r, close[0]) if close else r
                 for r in unknown for close in [difflib.get_close_matches(r, known_roles, n=1)]]
        raise InventoryError("no host has role %s\n  fix: choose from %s" % (
            ", ".join(hints), ", ".join(known_roles) or "(no host has a role)"))
    chosen = [s for s in (specs if among is None else among) if wanted_roles & set(s.roles)]
    if not chosen:
        raise InventoryError("no host named %s has role %s\n  fix: check --hosts and --roles" % (
            hosts, ", ".join(sorted(wanted_roles))))
    return chosen


def check_key_files(specs):
    """Every private key an audit will use exists and is readable: before any connection, since
    a missing key would otherwise look like an unreachable host."""
    for spec in specs:
        for key_file in spec.target.key_files():
            path = os.path.expanduser(key_file)
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise InventoryError("host %r: private key %s %s\n  fix: point ansible_ssh_private_key_file at a "
                                     "key this user can read" % (spec.name, path,
                                                                 "cannot be read" if os.path.exists(path)
                                                                 else "does not exist"))
