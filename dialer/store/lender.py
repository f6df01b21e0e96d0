"""Queries behind the lender REST API (dialer/api/): a debtor's contact history, promises, campaigns' state, and
holds (cease, dispute) written with their outbox event in one transaction."""
from __future__ import annotations

import json
import time
from typing import Any

from common.log import mask_phone
from dialer.campaign.imports import SuppressionRow
from dialer.store import Conn, Store, conn_of, tx
from dialer.store.core import add_contact_request
from dialer.store.outbox import outbox_add
from dialer.store.suppression import import_suppressions, list_suppressions, remove_suppression


def debtor_exists(store: Store | Conn, debtor_id: str) -> bool:
    return conn_of(store).execute("SELECT 1 FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone() is not None


def contact_history(store: Store | Conn, debtor_id: str) -> dict[str, Any]:
    """Every attempt (phones masked) with its disposition, the promises, the requests and holds of one debtor."""
    c = conn_of(store)
    attempts = [{
        "call_id": r["id"], "campaign": r["campaign"], "phone": mask_phone(r["phone"]),
        "third_party": bool(r["third_party"]), "inbound": bool(r["inbound"]), "placed_at": r["placed_at"],
        "answered_at": r["answered_at"], "ended_at": r["ended_at"], "state": r["state"], "outcome": r["outcome"],
        "disposition": r["disposition"], "conversation": bool(r["conversation"]), "agent": r["agent"]}
        for r in c.execute("SELECT * FROM attempts WHERE debtor_id=? ORDER BY placed_at, id", (debtor_id,))]
    promises = [_promise(r) for r in c.execute("SELECT * FROM promises WHERE debtor_id=? ORDER BY created_at, id",
                                               (debtor_id,))]
    requests = [{"id": r["id"], "kind": r["kind"], "created_at": r["created_at"], "source": r["source"],
                 "detail": json.loads(r["detail_json"] or "{}")}
                for r in c.execute("SELECT * FROM contact_requests WHERE debtor_id=? ORDER BY created_at, id",
                                   (debtor_id,))]
    accounts = [r[0] for r in c.execute("SELECT account_id FROM accounts WHERE debtor_id=?", (debtor_id,))]
    holds = [_hold(h) for key in [debtor_id, *accounts] for h in list_suppressions(c, key=key, include_removed=True)]
    return {"debtor_id": debtor_id, "attempts": attempts, "promises": promises, "requests": requests,
            "suppressions": holds}


def _promise(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "call_id": r["call_id"], "debtor_id": r["debtor_id"], "account_id": r["account_id"],
            "amount": r["amount"], "due_date": r["due_date"], "created_at": r["created_at"], "status": r["status"],
            "paid_by_payments": r["paid_by_payments"]}


def _hold(h: dict[str, Any]) -> dict[str, Any]:
    return {"id": h["id"], "list": h["list"], "by": h["key_kind"],
            "key": mask_phone(h["key"]) if h["key_kind"] == "phone" else h["key"], "since": h["effective"],
            "source": h["source"], "note": h["note"], "removed_at": h["removed_at"], "removed_by": h["removed_by"],
            "removed_reason": h["removed_reason"]}


def find_promises(store: Store | Conn, *, debtor_id: str | None = None, status: str | None = None,
                  since: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM promises WHERE 1=1", []
    for col, val in (("debtor_id", debtor_id), ("status", status)):
        if val is not None:
            sql += f" AND {col}=?"
            args.append(val)
    if since is not None:
        sql += " AND created_at>=?"
        args.append(float(since))
    return [_promise(r) for r in conn_of(store).execute(sql + " ORDER BY created_at, id LIMIT ?", (*args, int(limit)))]


def campaign_states(store: Store | Conn, now: float, name: str | None = None) -> list[dict[str, Any]]:
    """Each campaign's status and counts: debtors (active), due now, in flight, attempts and blocks in 24 h."""
    c = conn_of(store)
    sql = "SELECT name, profile, locale, dial_mode, line_limit, status, loaded_at FROM campaigns"
    rows = c.execute(sql + (" WHERE name=?" if name else "") + " ORDER BY name", (name,) if name else ()).fetchall()
    out = []
    for r in rows:
        n = r["name"]
        one = lambda q, *a: c.execute(q, (n, *a)).fetchone()[0]  # noqa: E731
        out.append(dict(r) | {
            "debtors": one("SELECT count(*) FROM debtors WHERE campaign=?"),
            "active_debtors": one("SELECT count(*) FROM debtors WHERE campaign=? AND status='active'"),
            "due_now": one("SELECT count(*) FROM debtors WHERE campaign=? AND status='active' AND segment IS NOT NULL"
                           " AND (next_allowed_at IS NULL OR next_allowed_at<=?)", now),
            "in_flight": one("SELECT count(*) FROM attempts WHERE campaign=? AND state IN ('placed','ringing','answered')"),
            "attempts_24h": one("SELECT count(*) FROM attempts WHERE campaign=? AND placed_at>=?", now - 86400),
            "blocked_24h": one("SELECT count(*) FROM gate_blocks WHERE campaign=? AND at>=?", now - 86400),
            "promises_open": one("SELECT count(*) FROM promises p JOIN debtors d ON d.debtor_id=p.debtor_id"
                                 " WHERE d.campaign=? AND p.status='open'"),
        })
    return out


def add_hold(store: Store, debtor_id: str, kind: str, source: str, note: str | None = None,
             now: float | None = None) -> dict[str, Any]:
    """A cease-contact request (permanent; the gate's `cease`) or a dispute hold (`suppress.dispute`, until
    released), with its outbox event, in one transaction."""
    at = time.time() if now is None else float(now)
    with store.transaction() as conn:
        if kind == "cease":
            rid = add_contact_request(conn, debtor_id, "cease", {"note": note} if note else {}, at, source)
            return {"kind": "cease", "id": rid, "debtor_id": debtor_id, "created_at": at, "source": source}
        row = SuppressionRow(row=0, list="dispute", key_kind="debtor", key=debtor_id,
                             effective=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at)), effective_at=at,
                             source=source, note=note, file="api")
        summary = import_suppressions(conn, [row], "dispute", at, actor=source, file="api")
        outbox_add(conn, "dispute", {"debtor_id": debtor_id, "source": source, "note": note,
                                     "already_held": bool(summary["already"])}, subject=debtor_id, at=at)
        return {"kind": "dispute", "debtor_id": debtor_id, "created_at": at, "source": source,
                "already_held": bool(summary["already"])}


def release_dispute(store: Store, debtor_id: str, *, by: str, reason: str, now: float | None = None) -> dict[str, Any]:
    with tx(store) as conn:
        entry = remove_suppression(conn, "dispute", "debtor", debtor_id, actor=by, reason=reason, now=now)
        outbox_add(conn, "dispute", {"debtor_id": debtor_id, "released": True, "by": by, "reason": reason},
                   subject=debtor_id, at=now)
    return _hold(entry)
