"""Collectors' desired state (login/ready/pause/logout) and the abandon-budget counts the pacer reads."""
from __future__ import annotations

from typing import Any

from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit

AGENT_STATES = ("ready", "paused", "logged_out")
DEFAULT_STATE = "ready"


def set_agent_state(store: Store | Conn, name: str, state: str, at: float, reason: str | None = None,
                    actor: str = "agent") -> None:
    """Record a collector's state (audited)."""
    if state not in AGENT_STATES:
        raise ValueError(f"agent state must be one of {', '.join(AGENT_STATES)}, not {state!r}")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"agent name must be letters, digits, '-' or '_', not {name!r}")
    with tx(store) as conn:
        conn.execute("INSERT INTO agents(name, state, since, reason) VALUES (?,?,?,?)"
                     " ON CONFLICT(name) DO UPDATE SET state=excluded.state, since=excluded.since,"
                     " reason=excluded.reason", (name, state, float(at), reason))
        audit(conn, actor, "agent.state", name, {"state": state, "reason": reason}, at)


def agent_states(store: Store | Conn) -> dict[str, dict[str, Any]]:
    """Every collector with a recorded state: name → {state, since, reason}."""
    rows = conn_of(store).execute("SELECT name, state, since, reason FROM agents").fetchall()
    return {r["name"]: {"state": r["state"], "since": r["since"], "reason": r["reason"]} for r in rows}


def abandon_counts(store: Store | Conn, campaign: str, since: float) -> tuple[int, int, int]:
    """(placed, answered by a person, abandoned) outbound attempts of a campaign placed since `since`."""
    row = conn_of(store).execute(
            "SELECT COUNT(*) AS placed,"
            " COALESCE(SUM(answered_at IS NOT NULL AND machine = 0 AND outcome IS NOT 'machine'), 0) AS answered,"
            " COALESCE(SUM(abandoned), 0) AS abandoned"
            " FROM attempts WHERE campaign = ? AND inbound = 0 AND placed_at >= ?", (campaign, float(since))).fetchone()
    return int(row["placed"]), int(row["answered"]), int(row["abandoned"])
