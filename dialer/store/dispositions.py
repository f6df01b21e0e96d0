"""Collectors' dispositions (migration 091): one per call, entered by the collector or `not_entered` when
the wrap-up ran out; the hand-started wrap-up. SQL only: what each outcome does is calls/collectors.py's."""
from __future__ import annotations

from typing import Any

from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit


def last_agent_call(store: Store | Conn, agent: str) -> dict[str, Any] | None:
    """The collector's latest call (an attempt they were connected to), or None."""
    r = conn_of(store).execute(
        "SELECT * FROM attempts WHERE agent=? ORDER BY coalesce(answered_at, placed_at) DESC, placed_at DESC LIMIT 1",
        (agent,)).fetchone()
    return dict(r) if r else None


def disposition_for(store: Store | Conn, call_id: str) -> dict[str, Any] | None:
    r = conn_of(store).execute("SELECT * FROM collector_dispositions WHERE call_id=?", (call_id,)).fetchone()
    return dict(r) if r else None


def insert_disposition(conn: Store | Conn, *, call_id: str, agent: str, debtor_id: str, outcome: str,
                       amount: str | None, date: str | None, note: str | None, source: str, at: float) -> int:
    with tx(conn) as c:
        cur = c.execute(
            "INSERT INTO collector_dispositions(call_id, agent, debtor_id, outcome, amount, date, note, source, at)"
            " VALUES (?,?,?,?,?,?,?,?,?)", (call_id, agent, debtor_id, outcome, amount, date, note, source, float(at)))
        did = int(cur.lastrowid)
        audit(c, agent if source == "collector" else "dialer", "collector.disposition", debtor_id,
              {"call_id": call_id, "agent": agent, "outcome": outcome, "amount": amount, "date": date,
               "source": source}, at)
        return did


def set_next_allowed_exact(conn: Store | Conn, debtor_id: str, ts: float) -> None:
    """A call-back time agreed with the debtor: the next allowed attempt is then (earlier or later than the
    retry rule's), and an ended debtor is active again. The gate still decides at that time."""
    with tx(conn) as c:
        c.execute("UPDATE debtors SET next_allowed_at=?, status=CASE WHEN status='done' THEN 'active' ELSE status END"
                  " WHERE debtor_id=?", (float(ts), debtor_id))


def hold_debtor(conn: Store | Conn, debtor_id: str, until: float, why: str, at: float, actor: str) -> None:
    """No call to the debtor before `until` (a dispute under review)."""
    with tx(conn) as c:
        c.execute("UPDATE debtors SET next_allowed_at=max(coalesce(next_allowed_at, 0), ?) WHERE debtor_id=?",
                  (float(until), debtor_id))
        audit(c, actor, "debtor.hold", debtor_id, {"until": until, "why": why}, at)


def dispositions_by_agent(store: Store | Conn, since: float = 0.0) -> dict[str, dict[str, int]]:
    """agent → {outcome: count} for calls since `since` (not_entered included)."""
    out: dict[str, dict[str, int]] = {}
    for r in conn_of(store).execute("SELECT agent, outcome, COUNT(*) AS n FROM collector_dispositions WHERE at >= ?"
                                    " GROUP BY agent, outcome ORDER BY agent, outcome", (float(since),)):
        out.setdefault(r["agent"], {})[r["outcome"]] = int(r["n"])
    return out


def set_wrapup_until(store: Store | Conn, agent: str, until: float, at: float) -> None:
    with tx(store) as c:
        c.execute("INSERT INTO agent_wrapup(agent, until) VALUES (?,?) ON CONFLICT(agent) DO UPDATE SET"
                  " until=max(until, excluded.until)", (agent, float(until)))
        audit(c, agent, "agent.wrapup", agent, {"until": until}, at)


def wrapup_until(store: Store | Conn) -> dict[str, float]:
    return {r["agent"]: float(r["until"]) for r in conn_of(store).execute("SELECT agent, until FROM agent_wrapup")}


def answered_calls(store: Store | Conn, campaign: str, since: float, until: float = 1e18) -> list[tuple[float, bool]]:
    """(answered time, abandoned) of each outbound call of the campaign a person answered (not a machine),
    placed in [since, until): what the abandon rate is counted over."""
    rows = conn_of(store).execute(
        "SELECT answered_at, abandoned FROM attempts WHERE campaign=? AND inbound=0 AND placed_at>=? AND placed_at<?"
        " AND answered_at IS NOT NULL AND machine=0 AND coalesce(outcome, '') != 'machine'",
        (campaign, float(since), float(until))).fetchall()
    return [(float(r["answered_at"]), bool(r["abandoned"])) for r in rows]


def dispositions_for_campaign(store: Store | Conn, campaign: str, since: float = 0.0,
                              until: float = 1e18) -> dict[str, dict[str, int]]:
    """agent → {outcome: count} for the campaign's calls placed in [since, until) (not_entered included)."""
    out: dict[str, dict[str, int]] = {}
    for r in conn_of(store).execute(
            "SELECT c.agent, c.outcome, COUNT(*) AS n FROM collector_dispositions c JOIN attempts t ON t.id = c.call_id"
            " WHERE t.campaign=? AND t.placed_at>=? AND t.placed_at<? GROUP BY c.agent, c.outcome"
            " ORDER BY c.agent, c.outcome", (campaign, float(since), float(until))):
        out.setdefault(r["agent"], {})[r["outcome"]] = int(r["n"])
    return out


def floor_history(store: Store | Conn, campaign: str, since: float, until: float) -> list[dict[str, Any]]:
    """The campaign's outbound attempts settled in [since, until), oldest first, with the collector's connect
    time (agent_connect event) when one took the call: what warms the pacer's estimator at start."""
    rows = conn_of(store).execute(
        "SELECT t.placed_at, t.answered_at, t.ended_at, t.outcome, t.machine, t.agent,"
        " (SELECT min(e.at) FROM call_events e WHERE e.call_id = t.id AND e.kind = 'agent_connect') AS connected_at,"
        " (SELECT min(e.at) FROM call_events e WHERE e.call_id = t.id AND e.kind = 'amd') AS screened_at"
        " FROM attempts t WHERE t.campaign=? AND t.inbound=0 AND t.state='ended' AND t.placed_at>=? AND t.placed_at<?"
        " ORDER BY t.placed_at", (campaign, float(since), float(until))).fetchall()
    return [dict(r) for r in rows]
