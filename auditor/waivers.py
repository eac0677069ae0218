"""Preflight waivers: findings a team has accepted, each with its reason and an expiry date, so a
known difference does not fail every release, and a forgotten one comes back by itself.

    waivers:
      - code: leftover-endpoint
        host: api-1                 # or role: api (every host of the role)
        reason: the staging endpoint stays until the migration (OPS-123)
        expires: 2027-01-31         # from this day on, the finding counts again, and says so

A finding is waived when its code matches and every host it names is covered. A waiver naming a
code, host or role that does not exist is refused before the audit (a typo would waive nothing,
silently); an expired one stops applying, and preflight names it.
"""
import datetime
import difflib
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import yaml

from . import codes, files
from .errors import UsageError
from .yamldoc import load_located, shown, yaml_error


@dataclass(frozen=True)
class Waiver:
    code: str
    host: Optional[str]
    role: Optional[str]
    reason: str
    expires: datetime.date
    where: str                  # file:line, for every message about it

    def covers(self, host: str, roles_of) -> bool:
        return host == self.host if self.host else self.role in roles_of(host)

    def subject(self) -> str:
        return "host %s" % self.host if self.host else "role %s" % self.role


def load_waivers(path: str, hosts: Sequence[str], roles: Iterable[str]) -> List[Waiver]:
    """The waivers of a file, each checked against the finding codes and the inventory."""
    try:
        text = files.read_text(path)
        document = load_located(text, path)
    except (files.Unreadable, UnicodeDecodeError) as error:
        raise UsageError("%s: cannot read the waivers: %s\n  fix: pass a YAML file with a `waivers:` list" % (path, error))
    except yaml.YAMLError as error:
        raise UsageError("%s: not valid YAML: %s\n  fix: correct the YAML syntax at that line" % yaml_error(error, text,
                                                                                                           path))
    entries = document.get("waivers") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise UsageError("%s: waivers must be a list under `waivers:`\n  fix: see `fleet-audit preflight --help`" % path)
    roles = sorted(set(roles))
    return [_waiver(entry, number, path, hosts, roles) for number, entry in enumerate(entries)]


def _waiver(entry, number, path, hosts, roles):
    where = entry.where() if hasattr(entry, "where") else "%s (entry %d)" % (path, number + 1)
    if not isinstance(entry, dict):
        raise UsageError("%s: a waiver is a mapping (code, host or role, reason, expires), not %s" % (where, shown(entry)))
    unknown = sorted(set(map(str, entry)) - {"code", "host", "role", "reason", "expires"})
    missing = [key for key in ("code", "reason", "expires") if not entry.get(key)]
    if unknown or missing or bool(entry.get("host")) == bool(entry.get("role")):
        raise UsageError("%s: a waiver needs code, reason, expires and one of host or role%s\n  fix: e.g. {code: "
                         "leftover-endpoint, host: api-1, reason: OPS-123, expires: 2027-01-31}" % (
                             where, " (unknown: %s)" % ", ".join(unknown) if unknown else ""))
    code = str(entry["code"])
    _known(code, list(codes.CODES), "finding code", where, "`fleet-audit explain all` lists them")
    host = str(entry["host"]) if entry.get("host") else None
    role = str(entry["role"]) if entry.get("role") else None
    if host is not None:
        _known(host, list(hosts), "host", where, "`fleet-audit hosts` lists them")
    else:
        _known(role, roles, "role", where, "the inventory's roles: %s" % ", ".join(roles))
    expires = entry["expires"]
    if isinstance(expires, str):
        try:
            expires = datetime.date.fromisoformat(expires)
        except ValueError:
            expires = None
    if not isinstance(expires, datetime.date) or isinstance(expires, datetime.datetime):
        raise UsageError("%s: expires %s is not a date\n  fix: write it as YYYY-MM-DD" % (where, shown(entry["expires"])))
    return Waiver(code, host, role, str(entry["reason"]), expires, where)


def _known(value, known, what, where, hint):
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        raise UsageError("%s: waiver for unknown %s %s%s\n  fix: %s" % (
            where, what, shown(value), " (did you mean %r?)" % close[0] if close else "", hint))


def apply(findings, waivers: Sequence[Waiver], roles_of, today: datetime.date) -> Tuple[list, list, list]:
    """(the findings that still count, [(finding, waiver)] waived, [(finding, waiver)] whose waiver
    has expired: they count again)."""
    counted, waived, expired = [], [], []
    for finding in findings:
        match = next((w for w in waivers if w.code == finding.code and finding.hosts and
                      all(w.covers(host, roles_of) for host in finding.hosts)), None)
        if match is None:
            counted.append(finding)
        elif match.expires <= today:
            counted.append(finding)
            expired.append((finding, match))
        else:
            waived.append((finding, match))
    return counted, waived, expired
