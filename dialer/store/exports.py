"""Exports for the lender's nightly file feed: attempts, dispositions, promises, QA results since a time, streamed
row by row from a cursor (constant memory whatever the size). Formatting (CSV / JSON lines) is the CLI's."""
from __future__ import annotations

import json
from typing import Any, Iterator

from dialer.store import Conn, Store, conn_of

EXPORTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    # kind: (columns, SQL selecting them in order, the time column --since filters on)
    "attempts": (
        ("call_id", "debtor_id", "account_id", "campaign", "phone", "third_party", "inbound", "placed_at", "state",
         "outcome", "dial_status", "hangup_cause", "answered_at", "ended_at", "conversation", "abandoned", "machine",
         "agent", "disposition"),
        "SELECT id, debtor_id, account_id, campaign, phone, third_party, inbound, placed_at, state, outcome,"
        " dial_status, hangup_cause, answered_at, ended_at, conversation, abandoned, machine, agent, disposition"
        " FROM attempts WHERE placed_at >= ? AND placed_at < ? ORDER BY placed_at, id",
        "placed_at"),
    "dispositions": (
        ("call_id", "debtor_id", "account_id", "campaign", "disposition", "outcome", "conversation", "agent",
         "placed_at", "ended_at"),
        "SELECT id, debtor_id, account_id, campaign, disposition, outcome, conversation, agent, placed_at, ended_at"
        " FROM attempts WHERE disposition IS NOT NULL AND coalesce(ended_at, placed_at) >= ?"
        " AND coalesce(ended_at, placed_at) < ? ORDER BY coalesce(ended_at, placed_at), id",
        "ended_at"),
    "promises": (
        ("promise_id", "call_id", "debtor_id", "account_id", "amount", "due_date", "created_at", "status",
         "paid_by_payments"),
        "SELECT id, call_id, debtor_id, account_id, amount, due_date, created_at, status, paid_by_payments"
        " FROM promises WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
        "created_at"),
    "qa": (
        ("result_id", "call_id", "scored_at", "score", "violations", "engine", "debtor_id", "campaign", "agent"),
        "SELECT q.id, q.call_id, q.scored_at, q.score, q.violations_json, q.engine, a.debtor_id, a.campaign, a.agent"
        " FROM qa_results q LEFT JOIN attempts a ON a.id = q.call_id WHERE q.scored_at >= ? AND q.scored_at < ?"
        " ORDER BY q.scored_at, q.id",
        "scored_at"),
}
TIME_COLUMNS = {"placed_at", "answered_at", "ended_at", "created_at", "scored_at"}
BOOL_COLUMNS = {"third_party", "inbound", "conversation", "abandoned", "machine"}


def export_columns(kind: str) -> tuple[str, ...]:
    return EXPORTS[kind][0]


def export_rows(store: Store | Conn, kind: str, since: float, until: float = 253402300799.0,
                batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Rows of one export as dicts, oldest first, fetched `batch` at a time (the cursor streams; nothing is
    collected). QA violations come as a list of rule ids."""
    columns, sql, _ = EXPORTS[kind]
    cur = conn_of(store).execute(sql, (float(since), float(until)))
    while True:
        chunk = cur.fetchmany(batch)
        if not chunk:
            return
        for r in chunk:
            row = dict(zip(columns, tuple(r)))
            if kind == "qa":
                row["violations"] = [v.get("rule") for v in json.loads(row["violations"] or "[]")]
            for c in BOOL_COLUMNS & row.keys():
                row[c] = bool(row[c])
            yield row


def bulk_insert_attempts(store: Store, rows: Iterator[tuple[Any, ...]], batch: int = 20000) -> int:
    """Benchmarks and fixtures only: insert (id, debtor_id, account_id, campaign, phone, placed_at, state, outcome,
    ended_at, disposition) tuples fast, with no audit entries. Never used by the dialer itself."""
    n = 0
    buf: list[tuple[Any, ...]] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= batch:
            n += _flush(store, buf)
    return n + _flush(store, buf)


def _flush(store: Store, buf: list[tuple[Any, ...]]) -> int:
    if not buf:
        return 0
    with store.transaction() as conn:
        conn.executemany("INSERT INTO attempts(id, debtor_id, account_id, campaign, phone, placed_at, state, outcome,"
                         " ended_at, disposition) VALUES (?,?,?,?,?,?,?,?,?,?)", buf)
    n = len(buf)
    buf.clear()
    return n
