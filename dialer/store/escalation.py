"""Store edge of the escalation plan (migration 125): contact tasks (SMS, letter, legal review) as asked, queued
or blocked; each debtor's stage and when to look again; the outcome facts a stage is chosen from. Queries
only: the stage is chosen in `campaign/escalation.py`, the gate decides in `gate/tasks.py`."""
from __future__ import annotations

from typing import Any, NamedTuple

from dialer.store import Conn, Store, conn_of, tx


class TaskDue(NamedTuple):
    """An active debtor of a campaign whose tasks are due for a look, with their oldest-due open account."""

    debtor_id: str
    segment: str | None
    timezone: str | None
    lang: str | None
    account_id: str
    days_past_due: int
    due_date: str | None
    phone: str | None  # first live number (rank order)


_DUE_SQL = """
SELECT d.debtor_id, d.segment, d.timezone, d.lang, a.account_id, a.days_past_due, a.due_date
FROM debtors d JOIN accounts a ON a.account_id = (
       SELECT a2.account_id FROM accounts a2
       WHERE a2.debtor_id = d.debtor_id AND CAST(a2.amount_owed AS REAL) > 0
       ORDER BY a2.days_past_due DESC, CAST(a2.amount_owed AS REAL) DESC, a2.account_id LIMIT 1)
LEFT JOIN escalation_state s ON s.debtor_id = d.debtor_id
WHERE d.campaign = ? AND d.status = 'active' AND d.segment IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaigns c WHERE c.name = d.campaign AND c.status = 'active')
  AND (s.next_check_at IS NULL OR s.next_check_at <= ?)
ORDER BY d.debtor_id
LIMIT ?
"""


def due_for_tasks(store: Store | Conn, campaign: str, now: float, limit: int = 200) -> list[TaskDue]:
    conn = conn_of(store)
    out = []
    for r in conn.execute(_DUE_SQL, (campaign, float(now), int(limit))).fetchall():
        ph = conn.execute("SELECT phone FROM phones WHERE debtor_id=? AND status='ok' ORDER BY rank LIMIT 1",
                          (r["debtor_id"],)).fetchone()
        out.append(TaskDue(r["debtor_id"], r["segment"], r["timezone"], r["lang"], r["account_id"],
                           int(r["days_past_due"]), r["due_date"], ph[0] if ph else None))
    return out


def recent_call_outcomes(store: Store | Conn, debtor_id: str, limit: int = 100) -> list[tuple[str | None, int]]:
    """(outcome, conversation) of the debtor's own outbound calls that ended, newest first."""
    return [(r[0], int(r[1] or 0)) for r in conn_of(store).execute(
        "SELECT outcome, conversation FROM attempts WHERE debtor_id=? AND third_party=0 AND inbound=0"
        " AND outcome IS NOT NULL ORDER BY placed_at DESC, id DESC LIMIT ?", (debtor_id, int(limit)))]


def latest_promise_status(store: Store | Conn, debtor_id: str) -> str | None:
    row = conn_of(store).execute("SELECT status FROM promises WHERE debtor_id=? ORDER BY created_at DESC, id DESC"
                                 " LIMIT 1", (debtor_id,)).fetchone()
    return row[0] if row else None


def queued_tasks(store: Store | Conn, debtor_id: str, channel: str, since: float) -> list[tuple[float, str | None,
                                                                                             str | None]]:
    """(at, target, account_id) of the debtor's queued tasks on one channel since `since`, oldest first."""
    return [(float(r[0]), r[1], r[2]) for r in conn_of(store).execute(
        "SELECT at, target, account_id FROM contact_tasks WHERE debtor_id=? AND channel=? AND status='queued'"
        " AND at>=? ORDER BY at, id", (debtor_id, channel, float(since)))]


def last_stage_task(store: Store | Conn, debtor_id: str, stage: str) -> float | None:
    """When a task of this stage was last queued for the debtor."""
    row = conn_of(store).execute("SELECT max(at) AS at FROM contact_tasks WHERE debtor_id=? AND stage=?"
                                 " AND status='queued'", (debtor_id, stage)).fetchone()
    return None if row is None or row["at"] is None else float(row["at"])


def insert_task(conn: Conn, *, task_id: str, debtor_id: str, account_id: str | None, campaign: str,
                segment: str | None, stage: str, channel: str, target: str | None, at: float, status: str,
                rule_id: str | None = None, reason: str | None = None, next_allowed_at: float | None = None,
                event_id: str | None = None) -> None:
    """One contact_tasks row, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO contact_tasks(task_id, debtor_id, account_id, campaign, segment, stage, channel, target, at,"
        " status, rule_id, reason, next_allowed_at, event_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (task_id, debtor_id, account_id, campaign, segment, stage, channel, target, float(at), status, rule_id,
         reason, next_allowed_at, event_id))


def tasks(store: Store | Conn, *, debtor_id: str | None = None, status: str | None = None,
          channel: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM contact_tasks WHERE 1=1", []
    for col, val in (("debtor_id", debtor_id), ("status", status), ("channel", channel)):
        if val is not None:
            sql += f" AND {col}=?"
            args.append(val)
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY at, id", args)]


def get_state(store: Store | Conn, debtor_id: str) -> dict[str, Any] | None:
    row = conn_of(store).execute("SELECT * FROM escalation_state WHERE debtor_id=?", (debtor_id,)).fetchone()
    return dict(row) if row else None


def set_state(store: Store | Conn, *, debtor_id: str, campaign: str, stage: str | None, action: str | None,
              now: float, next_check_at: float) -> bool:
    """Record the debtor's stage and when to look again; True when the stage changed (`since` moves then)."""
    with tx(store) as conn:
        old = conn.execute("SELECT stage FROM escalation_state WHERE debtor_id=?", (debtor_id,)).fetchone()
        changed = old is None or old[0] != stage
        if old is None:
            conn.execute("INSERT INTO escalation_state(debtor_id, campaign, stage, action, since, next_check_at)"
                         " VALUES (?,?,?,?,?,?)", (debtor_id, campaign, stage, action, float(now),
                                                   float(next_check_at)))
        elif changed:
            conn.execute("UPDATE escalation_state SET campaign=?, stage=?, action=?, since=?, next_check_at=?"
                         " WHERE debtor_id=?", (campaign, stage, action, float(now), float(next_check_at), debtor_id))
        else:
            conn.execute("UPDATE escalation_state SET campaign=?, next_check_at=? WHERE debtor_id=?",
                         (campaign, float(next_check_at), debtor_id))
    return changed
