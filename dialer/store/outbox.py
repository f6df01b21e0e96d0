"""The durable outbox and the webhook delivery ledger.

`outbox_add(conn, kind, payload)` is THE way an outcome reaches the lender's systems: call it inside the
transaction that writes the event itself (a disposition, a promise, a cease request, a dispute, a QA violation, a
collector's disposition …), so the event and its outbox row commit or vanish together. It returns the event id,
the idempotency key every delivery carries. Delivery (HTTP, HMAC, backoff) lives in `dialer/api/webhooks.py`;
this module only stores.
"""
from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any, Iterable, Mapping

from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit, canonical_json

OUTBOX_KINDS = ("disposition", "promise", "cease", "dispute", "qa_violation", "wrong_number", "hardship",
                "contact_task",  # escalation: an SMS, letter or legal-review task for the lender's gateway
                "payment", "suppression", "complaint.received", "complaint.reviewed", "complaint.hold_released")


def outbox_add(conn: Conn, kind: str, payload: Mapping[str, Any], *, subject: str | None = None,
               at: float | None = None) -> str:
    """Append one event to the outbox INSIDE the caller's transaction; returns its event id (idempotency key).
    Raises if no transaction is open: an outbox row written apart from its event could outlive or miss it."""
    c = conn_of(conn)
    if not c.in_transaction:
        raise RuntimeError("outbox_add must run inside the event's transaction (store.transaction())")
    event_id = str(uuid.uuid4())
    c.execute("INSERT INTO outbox(event_id, kind, subject, payload_json, created_at) VALUES (?,?,?,?,?)",
              (event_id, kind, subject, canonical_json(dict(payload)), time.time() if at is None else float(at)))
    return event_id


def outbox_events(store: Store | Conn, *, after: int = 0, kind: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM outbox WHERE id > ?", [int(after)]
    if kind:
        sql += " AND kind=?"
        args.append(kind)
    rows = conn_of(store).execute(sql + " ORDER BY id LIMIT ?", (*args, int(limit))).fetchall()
    return [dict(r) | {"payload": json.loads(r["payload_json"])} for r in rows]


# -- endpoints -------------------------------------------------------------------------------------------------

def add_endpoint(store: Store | Conn, name: str, url: str, kinds: Iterable[str] = (), *, from_start: bool = False,
                 at: float | None = None) -> dict[str, Any]:
    """Register (or re-point) a webhook endpoint; a new one gets a generated secret and receives events from now
    on (`from_start`: the whole outbox)."""
    t = time.time() if at is None else float(at)
    with tx(store) as conn:
        old = conn.execute("SELECT * FROM webhook_endpoints WHERE name=?", (name,)).fetchone()
        kinds_json = json.dumps(sorted(set(kinds)))
        if old is not None:
            conn.execute("UPDATE webhook_endpoints SET url=?, kinds_json=?, disabled_at=NULL WHERE name=?",
                         (url, kinds_json, name))
            audit(conn, "operator", "webhook.update", name, {"url": url, "kinds": json.loads(kinds_json)}, t)
        else:
            cursor = 0 if from_start else int(conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])
            conn.execute("INSERT INTO webhook_endpoints(name, url, secret, kinds_json, cursor, created_at)"
                         " VALUES (?,?,?,?,?,?)", (name, url, secrets.token_hex(32), kinds_json, cursor, t))
            audit(conn, "operator", "webhook.add", name, {"url": url, "kinds": json.loads(kinds_json),
                                                          "from_outbox_id": cursor}, t)
        return dict(conn.execute("SELECT * FROM webhook_endpoints WHERE name=?", (name,)).fetchone())


def remove_endpoint(store: Store | Conn, name: str, at: float | None = None) -> None:
    with tx(store) as conn:
        if conn.execute("UPDATE webhook_endpoints SET disabled_at=? WHERE name=? AND disabled_at IS NULL",
                        (time.time() if at is None else float(at), name)).rowcount != 1:
            raise KeyError(f"no active webhook endpoint {name!r}")
        audit(conn, "operator", "webhook.disable", name, {}, at)


def endpoints(store: Store | Conn, *, active: bool = True) -> list[dict[str, Any]]:
    sql = "SELECT * FROM webhook_endpoints" + (" WHERE disabled_at IS NULL" if active else "") + " ORDER BY name"
    return [dict(r) | {"kinds": json.loads(r["kinds_json"])} for r in conn_of(store).execute(sql)]


# -- deliveries ------------------------------------------------------------------------------------------------

def fan_out(store: Store | Conn, at: float | None = None) -> int:
    """Give every active endpoint a delivery row for each outbox event past its cursor (of the kinds it wants)."""
    t = time.time() if at is None else float(at)
    n = 0
    with tx(store) as conn:
        top = int(conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0])
        for ep in conn.execute("SELECT name, kinds_json, cursor FROM webhook_endpoints WHERE disabled_at IS NULL"
                               " AND cursor < ?", (top,)).fetchall():
            kinds = json.loads(ep["kinds_json"])
            sql = ("INSERT OR IGNORE INTO webhook_deliveries(outbox_id, endpoint, next_at)"
                   " SELECT id, ?, ? FROM outbox WHERE id > ? AND id <= ?")
            args: list[Any] = [ep["name"], t, ep["cursor"], top]
            if kinds:
                sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                args += kinds
            n += conn.execute(sql, args).rowcount
            conn.execute("UPDATE webhook_endpoints SET cursor=? WHERE name=?", (top, ep["name"]))
    return n


def due_deliveries(store: Store | Conn, endpoint: str, now: float, limit: int = 100,
                   lease: float | None = None) -> list[dict[str, Any]]:
    """Undelivered events of one endpoint whose backoff has passed, oldest first. With `lease`, they are claimed
    in the same transaction (not due again for `lease` seconds), so two delivering processes do not send the same
    events at once; a process killed mid-delivery leaves them due again when the lease runs out."""
    with tx(store) as conn:
        rows = conn.execute(
            "SELECT d.outbox_id, d.attempts, o.event_id, o.kind, o.subject, o.payload_json, o.created_at"
            " FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id"
            " WHERE d.endpoint=? AND d.delivered_at IS NULL AND d.next_at <= ? ORDER BY d.outbox_id LIMIT ?",
            (endpoint, float(now), int(limit))).fetchall()
        if lease and rows:
            conn.executemany("UPDATE webhook_deliveries SET next_at=? WHERE outbox_id=? AND endpoint=?",
                             [(float(now) + lease, r["outbox_id"], endpoint) for r in rows])
    return [dict(r) for r in rows]


def next_due_at(store: Store | Conn) -> float | None:
    r = conn_of(store).execute("SELECT min(next_at) FROM webhook_deliveries d JOIN webhook_endpoints e"
                               " ON e.name = d.endpoint WHERE d.delivered_at IS NULL AND e.disabled_at IS NULL"
                               ).fetchone()
    return float(r[0]) if r and r[0] is not None else None


def mark_delivered(store: Store | Conn, endpoint: str, results: Iterable[tuple[int, int, float]]) -> None:
    """(outbox_id, http status, when) of each 2xx: delivered."""
    with tx(store) as conn:
        conn.executemany("UPDATE webhook_deliveries SET delivered_at=?, attempts=attempts+1, last_status=?,"
                         " last_error=NULL WHERE outbox_id=? AND endpoint=?",
                         [(at, status, oid, endpoint) for oid, status, at in results])


def mark_failed(store: Store | Conn, endpoint: str, results: Iterable[tuple[int, int | None, str, float]]) -> None:
    """(outbox_id, http status or None, error, next attempt time) of each failure."""
    with tx(store) as conn:
        conn.executemany("UPDATE webhook_deliveries SET attempts=attempts+1, last_status=?, last_error=?, next_at=?"
                         " WHERE outbox_id=? AND endpoint=?",
                         [(status, err[:500], nxt, oid, endpoint) for oid, status, err, nxt in results])


def status(store: Store | Conn, now: float | None = None) -> dict[str, Any]:
    """The backlog per endpoint: pending, oldest pending age, delivered, retries, last error."""
    conn = conn_of(store)
    t = time.time() if now is None else float(now)
    total = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM outbox").fetchone()
    by_kind = {r[0]: r[1] for r in conn.execute("SELECT kind, count(*) FROM outbox GROUP BY kind")}
    out = []
    for ep in endpoints(conn, active=False):
        name = ep["name"]
        s = conn.execute(
            "SELECT count(*) FILTER (WHERE d.delivered_at IS NULL),"
            " min(o.created_at) FILTER (WHERE d.delivered_at IS NULL),"
            " count(*) FILTER (WHERE d.delivered_at IS NOT NULL), max(d.delivered_at),"
            " count(*) FILTER (WHERE d.delivered_at IS NULL AND d.attempts > 0)"
            " FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE d.endpoint=?", (name,)).fetchone()
        not_fanned = 0 if ep["disabled_at"] else int(conn.execute(
            "SELECT count(*) FROM outbox WHERE id > ?", (ep["cursor"],)).fetchone()[0])
        oldest_unfanned = conn.execute("SELECT min(created_at) FROM outbox WHERE id > ?",
                                       (ep["cursor"],)).fetchone()[0] if not_fanned else None
        oldest = min(x for x in (s[1], oldest_unfanned) if x is not None) if (s[1] or oldest_unfanned) else None
        last_err = conn.execute("SELECT last_error, last_status FROM webhook_deliveries WHERE endpoint=? AND"
                                " delivered_at IS NULL AND last_error IS NOT NULL ORDER BY outbox_id LIMIT 1",
                                (name,)).fetchone()
        out.append({"endpoint": name, "url": ep["url"], "active": ep["disabled_at"] is None, "kinds": ep["kinds"],
                    "pending": int(s[0] or 0) + not_fanned, "retrying": int(s[4] or 0), "delivered": int(s[2] or 0),
                    "oldest_pending_age_s": round(t - oldest, 1) if oldest else None,
                    "last_delivered_at": s[3], "last_error": last_err[0] if last_err else None})
    return {"outbox_events": int(total[0]), "by_kind": by_kind, "endpoints": out}


# -- the events the core tables raise (called from their writers, inside their transactions) --------------------

def disposition_event(conn: Conn, attempt: Mapping[str, Any], at: float | None) -> None:
    """A call's disposition (and, for a dispute, a `dispute` event too)."""
    data = {k: attempt.get(k) for k in ("debtor_id", "account_id", "campaign", "outcome", "disposition", "placed_at",
                                        "answered_at", "ended_at", "agent", "inbound")}
    data["call_id"] = attempt.get("id")
    when = at if at is not None else attempt.get("ended_at")
    outbox_add(conn, "disposition", data, subject=attempt.get("debtor_id"), at=when)
    if attempt.get("disposition") == "dispute":
        outbox_add(conn, "dispute", {"call_id": attempt.get("id"), "debtor_id": attempt.get("debtor_id"),
                                     "account_id": attempt.get("account_id"), "source": "call"},
                   subject=attempt.get("debtor_id"), at=when)


def qa_violation_events(conn: Conn, call_id: str, result_id: int, score: int,
                        violations: list[dict[str, Any]], at: float) -> None:
    """One `qa_violation` event per violation of a stored QA result."""
    row = conn.execute("SELECT debtor_id, campaign, agent FROM attempts WHERE id=?", (call_id,)).fetchone()
    for v in violations:
        outbox_add(conn, "qa_violation", {"call_id": call_id, "result_id": result_id, "score": score,
                                          "rule": v.get("rule"), "turn": v.get("turn"),
                                          "confidence": v.get("confidence"),
                                          "debtor_id": row["debtor_id"] if row else None,
                                          "campaign": row["campaign"] if row else None,
                                          "agent": row["agent"] if row else None},
                   subject=row["debtor_id"] if row else call_id, at=at)
