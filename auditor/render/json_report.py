"""JSON report, schema `fleet-audit/2` (documented in docs/reports.md)."""
import dataclasses
import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List

if TYPE_CHECKING:
    from ..audit import AuditResult, HostResult

SCHEMA = "fleet-audit/2"


def host_dict(host: "HostResult") -> Dict[str, Any]:
    report = host.report
    probe = report.probe
    return {
        "name": report.name,
        "role": ",".join(report.roles),
        "roles": list(report.roles),
        "address": report.address,
        "reachable": report.reachable,
        "transport": {"kind": report.transport_kind, "detail": report.transport_detail, "seconds": report.seconds},
        "verdict": host.verdict,
        "verdict_because": list(host.verdict_because),
        "findings": [f.as_dict() for f in host.findings],
        "probe": None if probe is None else {
            "env_source": probe.env_source, "note": probe.note,
            "error": {"kind": probe.failure, "message": probe.error_message} if probe.failure else None,
            "python": probe.python, "boto3": probe.boto3, "botocore": probe.botocore,
            "regions": {who: dataclasses.asdict(r) for who, r in probe.regions.items()},
            "credentials": dataclasses.asdict(probe.credentials),
            "account": probe.account, "arn": probe.arn, "identity_error": probe.identity_error,
            "endpoints": probe.endpoints, "settings_module": probe.settings_module,
            "queues": [{"key": q.key, "name": q.name, "region": q.region, "url": q.url, "error": q.error_code,
                        "attributes": q.attributes} for q in probe.queues],
        },
        "containers": [{"name": c.name, "role": c.role, "present": c.present, "status": c.status,
                        "unread": _missing(c.missing), "restarting": c.restarting, "restart_count": c.restart_count,
                        "started_at": c.started_at, "image": c.image, "logs": _logs(c.logs)}
                       for c in report.containers],
        "docker": {"available": report.docker.available, "unread": _missing(report.docker.missing)},
        "dotenv": {"path": report.dotenv.path, "unread": _missing(report.dotenv.missing)},
        "check_script": None if report.check_script is None else dataclasses.asdict(report.check_script),
    }


def _since(since):
    """What changed since the host was last ok, from the history (None: ok, never seen ok, or no history)."""
    return None if since is None else {"audit": since.audit_id, "started": since.started,
                                       "changes": list(since.changes)}


def _missing(missing):
    """A reading not taken: its reason and detail; None when it was taken."""
    return None if missing is None else {"reason": missing.reason, "detail": missing.detail}


def _logs(logs):
    if not logs.read:
        return {"read": False, "unread": _missing(logs.missing)}
    return {"read": True, "lines": logs.lines, "truncated_at": logs.truncated_at, "oldest": logs.oldest,
            "markers": {m.name: {"kind": m.kind, "queue": m.queue, "count": m.count, "last": m.last,
                                 "jobs": [s.job for s in m.jobs]} for m in logs.markers},
            "repeated_receipts": dict(logs.repeated_receipts)}


def matrix_rows(result: "AuditResult") -> List[Dict[str, Any]]:
    return [{"attribute": row.attribute, "scope": row.scope, "cells": row.cells,
             "deviating": list(row.deviating), "expected": row.expected} for row in result.matrix]


def audit_dict(result: "AuditResult") -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "started": result.started,
        "seconds": result.seconds,
        "inventory": result.inventory,
        "exit_code": result.exit_code,
        "hosts": [dict(host_dict(h), since_last_ok=_since(result.since_ok.get(h.report.name))) for h in result.hosts],
        "findings": [f.as_dict() for f in result.findings],
        "cross_check": None if result.cross_check is None else {
            "names": list(result.cross_check.names), "regions": list(result.cross_check.regions),
            "identities": result.cross_check.identities,
            "found": [dataclasses.asdict(s) for s in result.cross_check.sightings],
            "not_searched": [{"profile": p, "region": r, "error": e} for p, r, e in result.cross_check.failures],
            "accounts": [{"name": a.name, "region": a.region, "account": a.account, "profile": a.profile,
                          "attributes": dict(a.attributes), "dead_letter": a.dead_letter, "unjudged": a.unjudged,
                          "metrics": {metric: [list(point) for point in points] for metric, points in a.series.items()}}
                         for a in result.cross_check.accounts],
        },
        "matrix": matrix_rows(result),
    }


def render_json(result: "AuditResult") -> str:
    return "".join(json_chunks(result))


def json_chunks(result: "AuditResult") -> Iterator[str]:
    """The JSON report piece by piece: written as it is encoded, a 1,000-host report never
    exists twice in memory (as one string and as the encoder's list of pieces)."""
    return json.JSONEncoder(indent=2).iterencode(audit_dict(result))
