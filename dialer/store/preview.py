"""Preview offers (migration 090): which debtor is offered to which collector, and what became of it.
State changes are conditional updates, so the daemon and `dialer agent accept|skip` never both win."""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit

OPEN_STATES = ("offered", "accepted", "dialing", "placed")
STATES = OPEN_STATES + ("done", "skipped", "expired", "blocked", "failed")


def _row(r: Any) -> dict[str, Any]:
    return dict(r) | {"verdict": json.loads(r["verdict_json"])}


def create_offer(store: Store | Conn, *, agent: str, campaign: str, debtor_id: str, account_id: str | None,
                 segment: str | None, at: float, expires_at: float, verdict: Mapping[str, Any]) -> int | None:
    """Offer a debtor to a collector; None when either already has an open offer (the unique indexes)."""
    import sqlite3

    try:
        with tx(store) as conn:
            cur = conn.execute(
                "INSERT INTO preview_offers(agent, campaign, debtor_id, account_id, segment, offered_at, expires_at,"
                " state, verdict_json) VALUES (?,?,?,?,?,?,?,'offered',?)",
                (agent, campaign, debtor_id, account_id, segment, float(at), float(expires_at),
                 json.dumps(dict(verdict), ensure_ascii=False, sort_keys=True)))
            oid = int(cur.lastrowid)
            audit(conn, "dialer", "preview.offered", debtor_id, {"offer": oid, "agent": agent, "campaign": campaign,
                                                                 "allowed": verdict.get("allowed")}, at)
            return oid
    except sqlite3.IntegrityError:
        return None


def set_offer_state(store: Store | Conn, offer_id: int, state: str, at: float, *, from_states: Iterable[str],
                    reason: str | None = None, call_id: str | None = None, actor: str = "dialer") -> bool:
    """Move an offer to `state` if it is still in one of `from_states`; False when something else won."""
    if state not in STATES:
        raise ValueError(f"offer state must be one of {', '.join(STATES)}, not {state!r}")
    froms = tuple(from_states)
    with tx(store) as conn:
        cur = conn.execute(
            f"UPDATE preview_offers SET state=?, reason=coalesce(?, reason), call_id=coalesce(?, call_id),"
            f" decided_at=? WHERE id=? AND state IN ({','.join('?' * len(froms))})",
            (state, reason, call_id, float(at), int(offer_id), *froms))
        if cur.rowcount != 1:
            return False
        row = conn.execute("SELECT agent, debtor_id FROM preview_offers WHERE id=?", (int(offer_id),)).fetchone()
        audit(conn, actor, f"preview.{state}", row["debtor_id"],
              {"offer": int(offer_id), "agent": row["agent"], "reason": reason, "call_id": call_id}, at)
        return True


def open_offer(store: Store | Conn, agent: str) -> dict[str, Any] | None:
    r = conn_of(store).execute(
        f"SELECT * FROM preview_offers WHERE agent=? AND state IN ({','.join('?' * len(OPEN_STATES))})",
        (agent, *OPEN_STATES)).fetchone()
    return _row(r) if r else None


def offers(store: Store | Conn, *, agent: str | None = None, states: Iterable[str] | None = None,
           campaign: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM preview_offers WHERE 1=1", []
    if since is not None:
        sql += " AND offered_at >= ?"
        args.append(float(since))
    if agent is not None:
        sql += " AND agent=?"
        args.append(agent)
    if campaign is not None:
        sql += " AND campaign=?"
        args.append(campaign)
    if states is not None:
        st = tuple(states)
        sql += f" AND state IN ({','.join('?' * len(st))})"
        args.extend(st)
    return [_row(r) for r in conn_of(store).execute(sql + " ORDER BY id", args)]


def offered_debtors(store: Store | Conn) -> set[str]:
    return {r[0] for r in conn_of(store).execute(
        f"SELECT debtor_id FROM preview_offers WHERE state IN ({','.join('?' * len(OPEN_STATES))})", OPEN_STATES)}


def get_offer(store: Store | Conn, offer_id: int) -> dict[str, Any] | None:
    r = conn_of(store).execute("SELECT * FROM preview_offers WHERE id=?", (int(offer_id),)).fetchone()
    return _row(r) if r else None


def pending_pop_id(store: Store | Conn, agent: str) -> int | None:
    """The screen pop of the collector's offer still waiting for accept or skip (None when there is none)."""
    r = conn_of(store).execute(
        "SELECT min(s.id) FROM screen_pops s JOIN preview_offers o ON s.call_id = 'offer-' || o.id"
        " WHERE o.agent=? AND o.state='offered' AND s.agent=?", (agent, agent)).fetchone()
    return int(r[0]) if r and r[0] is not None else None
