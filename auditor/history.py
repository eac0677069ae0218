"""The audit history: every audit, check-host and preflight kept in one SQLite file, so that an
operator can ask "since when, and what changed then?".

What is stored is what the JSON report holds (masked key ids, keyed fingerprints, findings,
verdicts, the matrix), never more: the report document itself (compressed), and per host its
verdict, its matrix values, its containers' images and start times and its finding codes, for
the questions asked of many audits at once. The file is the operator's alone (0600, refused if
others may read it, like the fingerprint key), in WAL mode so that two audits may write at
once, versioned (PRAGMA user_version) with its migrations here, and pruned on every write.
"""
import contextlib
import datetime
import json
import os
import sqlite3
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from . import files
from .errors import UsageError

SCHEMA_VERSION = 1
MIGRATIONS = {      # version reached -> its statements, applied in order from the file's version
    1: ["""CREATE TABLE audits (id INTEGER PRIMARY KEY, started TEXT NOT NULL, kind TEXT NOT NULL,
                                inventory TEXT NOT NULL, exit_code INTEGER NOT NULL, all_ok INTEGER NOT NULL,
                                document BLOB NOT NULL)""",
        """CREATE TABLE hosts (audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
                               name TEXT NOT NULL, verdict TEXT NOT NULL, state TEXT NOT NULL)""",
        "CREATE INDEX hosts_by_name ON hosts (name, audit_id)",
        "CREATE INDEX audits_by_started ON audits (started)"],
}
BUSY_SECONDS = 30           # another audit writing: wait this long for its transaction


def default_path() -> Path:
    """$XDG_STATE_HOME (or ~/.local/state)/fleet-auditor/history.sqlite."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "fleet-auditor" / "history.sqlite"


class HistoryRefused(UsageError):
    """The history file must not be used as it is (others may read it, a newer schema, not a
    history): the run stops before any host is visited, with what to do."""


class HistoryUnavailable(Exception):
    """The history file cannot be made or opened here (a read-only home, a missing directory):
    the audit runs all the same, unrecorded, and says so."""


@dataclass(frozen=True)
class HostState:
    """One host in one audit, as the history keeps it."""
    audit_id: int
    started: str
    verdict: str
    values: Dict[str, str]              # matrix attribute -> this host's value
    containers: Dict[str, List[str]]    # container -> [image, started_at]
    findings: List[str]                 # finding codes

    def changes_to(self, later: "HostState") -> List[str]:
        """What differs in `later`: "app region ap-northeast-2 -> us-east-1", "new finding X"."""
        changes = ["%s %s -> %s" % (attribute, self.values.get(attribute, "-"), value)
                   for attribute, value in sorted(later.values.items()) if self.values.get(attribute) != value]
        for name, (image, started) in sorted(later.containers.items()):
            before = self.containers.get(name)
            if before is None:
                changes.append("container %s appeared" % name)
                continue
            if before[0] != image:
                changes.append("%s image %s -> %s" % (name, before[0] or "-", image or "-"))
            if before[1] != started:
                changes.append("%s started %s (was %s)" % (name, started or "-", before[1] or "-"))
        changes += ["new finding %s" % code for code in sorted(set(later.findings) - set(self.findings))]
        return changes


@dataclass(frozen=True)
class SinceOk:
    """What changed on a host since the last audit in which it was ok."""
    host: str
    audit_id: int
    started: str
    changes: Tuple[str, ...]

    def line(self) -> str:
        when = self.started.replace("T", " ").rstrip("Z")[:16]
        return "since %s (ok, audit %d): %s" % (when, self.audit_id, "; ".join(self.changes) or "no recorded value "
                                                 "changed (what changed is outside what the audit reads)")


def host_states(document: dict) -> Dict[str, Tuple[str, dict]]:
    """host -> (verdict, state) of a report document."""
    values: Dict[str, Dict[str, str]] = {}
    for row in document.get("matrix") or []:
        for host, value in (row.get("cells") or {}).items():
            values.setdefault(host, {})[row["attribute"]] = value
    states = {}
    for host in document.get("hosts") or []:
        states[host["name"]] = (host["verdict"], {
            "values": values.get(host["name"], {}),
            "containers": {c["name"]: [c.get("image"), c.get("started_at")] for c in host.get("containers") or []
                           if c.get("present")},
            "findings": sorted({f["code"] for f in host.get("findings") or []} |
                               {f["code"] for f in document.get("findings") or [] if host["name"] in f.get("hosts", [])})})
    return states


class History:
    """One history file, opened for one command."""

    def __init__(self, path: Path, keep_days: int = 90, keep_audits: int = 10000):
        self.path = Path(path).expanduser()
        self.keep_days, self.keep_audits = keep_days, keep_audits
        _check_private(self.path)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise HistoryRefused("history %s: not a history file (%s)\n  fix: move it away, or pass --history OTHER "
                                 "(--no-history: record nothing)" % (self.path, error))

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryRefused("history %s: written by a newer fleet-audit (schema %d, this one knows %d)\n  fix: "
                                     "upgrade fleet-audit, or pass --history OTHER" % (self.path, version,
                                                                                       SCHEMA_VERSION))
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                db.execute("PRAGMA user_version = %d" % target)

    # -- writing ---------------------------------------------------------------------------

    def record(self, document: dict, kind: str) -> int:
        """Keep one report document (an audit, check-host or preflight); prune; its audit id."""
        states = host_states(document)
        all_ok = bool(states) and all(verdict == "ok" for verdict, _ in states.values())
        blob = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO audits (started, kind, inventory, exit_code, all_ok, document) "
                                "VALUES (?, ?, ?, ?, ?, ?)", (document.get("started") or _now(), kind,
                                                              document.get("inventory") or "",
                                                              int(document.get("exit_code") or 0), all_ok, blob))
            audit_id = cursor.lastrowid
            db.executemany("INSERT INTO hosts (audit_id, name, verdict, state) VALUES (?, ?, ?, ?)",
                           [(audit_id, name, verdict, json.dumps(state)) for name, (verdict, state) in states.items()])
            self._prune(db)
        return int(audit_id)

    def _prune(self, db: sqlite3.Connection) -> None:
        cutoff = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=self.keep_days))
        db.execute("DELETE FROM audits WHERE started < ?", (cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),))
        db.execute("DELETE FROM audits WHERE id <= (SELECT id FROM audits ORDER BY id DESC LIMIT 1 OFFSET ?)",
                   (self.keep_audits,))

    # -- reading ---------------------------------------------------------------------------

    def last_ok(self, host: str) -> Optional[HostState]:
        row = self.db.execute("SELECT a.id, a.started, h.verdict, h.state FROM hosts h JOIN audits a ON a.id = "
                              "h.audit_id WHERE h.name = ? AND h.verdict = 'ok' ORDER BY a.id DESC LIMIT 1",
                              (host,)).fetchone()
        return _state(row) if row else None

    def since_ok(self, document: dict) -> Dict[str, SinceOk]:
        """For every host of `document` that is not ok: the last audit in which it was, and what
        differs since (a host never seen ok has no entry)."""
        found = {}
        for name, (verdict, state) in host_states(document).items():
            if verdict == "ok":
                continue
            before = self.last_ok(name)
            if before is not None:
                now = HostState(0, "", verdict, state["values"], state["containers"], state["findings"])
                found[name] = SinceOk(name, before.audit_id, before.started, tuple(before.changes_to(now)))
        return found

    def timeline(self, host: Optional[str] = None, attribute_prefix: str = "") -> List[Tuple[str, HostState, List[str]]]:
        """(host, state, what changed) for each audit in which something changed for a host,
        oldest first; the first audit of each host is its starting point."""
        query = "SELECT h.name, a.id, a.started, h.verdict, h.state FROM hosts h JOIN audits a ON a.id = h.audit_id"
        rows = self.db.execute(query + (" WHERE h.name = ?" if host else "") + " ORDER BY a.id",
                               (host,) if host else ()).fetchall()
        previous: Dict[str, HostState] = {}
        changed = []
        for name, *rest in rows:
            state = _state(tuple(rest))
            if attribute_prefix:
                state = HostState(state.audit_id, state.started, state.verdict,
                                  {k: v for k, v in state.values.items() if k.startswith(attribute_prefix)},
                                  {}, [])
            before = previous.get(name)
            if before is None:
                changed.append((name, state, ["first audit: %s" % state.verdict]))
            else:
                changes = (["verdict %s -> %s" % (before.verdict, state.verdict)] if before.verdict != state.verdict
                           else []) + before.changes_to(state)
                changes += ["resolved %s" % code for code in sorted(set(before.findings) - set(state.findings))]
                if changes:
                    changed.append((name, state, changes))
            previous[name] = state
        return changed

    def document(self, reference: str) -> dict:
        """A recorded report: `last`, `last-ok` (the last audit with every host ok), an audit id,
        or a time (the last audit at or before it: 2026-12-01, 2026-12-01T09:14)."""
        if reference == "last":
            row = self.db.execute("SELECT document FROM audits ORDER BY id DESC LIMIT 1").fetchone()
        elif reference == "last-ok":
            row = self.db.execute("SELECT document FROM audits WHERE all_ok ORDER BY id DESC LIMIT 1").fetchone()
        elif reference.isdigit():
            row = self.db.execute("SELECT document FROM audits WHERE id = ?", (int(reference),)).fetchone()
        else:
            moment = _moment(reference)
            row = self.db.execute("SELECT document FROM audits WHERE started <= ? ORDER BY id DESC LIMIT 1",
                                  (moment,)).fetchone() if moment else None
            if moment is None:
                raise UsageError("%r is neither a file nor a history reference\n  fix: give a saved audit's path, "
                                 "last, last-ok, an audit id (`fleet-audit history`), or a time (2026-12-01T09:14)"
                                 % reference)
        if row is None:
            raise UsageError("no recorded audit matches %r in %s\n  fix: list them with `fleet-audit history`" % (
                reference, self.path))
        return json.loads(zlib.decompress(row[0]))

    def incident(self) -> List[Tuple[str, str, str]]:
        """(time, host, what happened) in time order across hosts: the evidence already collected.
        From the history, each host's verdict changes; from the last audit, each container's start
        (and restarts), and the last line of each log marker that was seen (the last job received,
        completed or failed per worker, the last error of each kind). Times as their sources give
        them, to the second (container times are UTC; log lines carry the app's own clock)."""
        events = [(state.started, name, "audit %d: %s" % (state.audit_id, change))
                  for name, state, changes in self.timeline() for change in changes
                  if change.startswith(("verdict", "first audit"))]
        if self.count():
            for host in self.document("last")["hosts"]:
                for container in host.get("containers") or []:
                    if container.get("started_at"):
                        restarts = container.get("restart_count") or 0
                        events.append((container["started_at"], host["name"], "container %s started (%s)%s" % (
                            container["name"], container.get("image") or "image unknown",
                            ", restarted %d time(s)" % restarts if restarts else "")))
                    logs = container.get("logs") or {}
                    for name, marker in sorted((logs.get("markers") or {}).items()):
                        if marker.get("last"):
                            events.append((marker["last"], host["name"], "last %s line of %s (%s, %d in the "
                                           "window)" % (name, container["name"], marker["kind"], marker["count"])))
        return sorted(((_second(when), host, what) for when, host, what in events), key=lambda e: e[:2])

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM audits").fetchone()[0])


def _state(row) -> HostState:
    audit_id, started, verdict, state = row
    state = json.loads(state)
    return HostState(audit_id, started, verdict, state["values"], state["containers"], state["findings"])


def _moment(text: str) -> Optional[str]:
    """An ISO time as the history stores them (UTC, ...Z); None if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.rstrip("Z"))
    except ValueError:
        return None
    if len(text) <= 10:         # a day: up to its end
        moment += datetime.timedelta(days=1, seconds=-1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _second(text: str) -> str:
    """`2026-12-01T09:14:03.123456789Z` and `2026-12-01 09:14:03,123` alike: `2026-12-01 09:14:03`."""
    return str(text).replace("T", " ", 1)[:19]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_private(path: Path) -> None:
    """The file is the user's own and only theirs (made so when it does not exist yet)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        try:
            os.close(files.create_private(path))
        except FileExistsError:
            return _check_private(path)        # another audit made it first
        except OSError as error:
            raise HistoryUnavailable("%s cannot be created (%s)" % (path, error.strerror or error))
        return
    except OSError as error:
        raise HistoryUnavailable("%s: %s" % (path, error.strerror or error))
    if not stat.S_ISREG(info.st_mode):
        raise HistoryRefused("history %s: not a regular file\n  fix: pass --history PATH of a file, or --no-history"
                             % path)
    if files.others_may_read(info):
        raise HistoryRefused("history %s: readable by others or not yours (it holds your fleet's findings)\n  fix: "
                             "chmod 600 %s (as its owner), or pass --history PATH" % (path, path))
