"""Store edge of the compliance gate: queries only. A debtor's gate history as rows, recorded blocks,
and the requests the gate honours (cease, consent, do-not-call).

The decision and the one transaction that accounts for it live in `dialer.gate.account`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

from common.log import mask_phone
from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit
from dialer.store.core import add_contact_request


class AttemptRow(NamedTuple):
    """One attempt as the gate reads it (times are UTC epoch seconds)."""

    placed_at: float
    phone: str
    account_id: str | None
    third_party: int
    inbound: int
    outcome: str | None
    state: str
    conversation: int
    abandoned: int
    machine: int
    answered_at: float | None
    ended_at: float | None


@dataclass(frozen=True)
class HistoryRows:
    """What the store holds about one debtor for the gate, as rows (the gate builds its History)."""

    record_zone: str | None
    status: str | None
    attempts: list[AttemptRow]  # oldest first
    phones: list[tuple[str, str]]  # (phone, status) in rank order
    dnc_listed: frozenset[str]  # the debtor's, contacts' and extra numbers on the do-not-call list
    requests: list[tuple[str, str | None, float]]  # (kind, detail_json, created_at) of cease/inconvenient/consent


def history_rows(conn: Store | Conn, debtor_id: str, since: float, *,
                 extra_phones: tuple[str, ...] = ()) -> HistoryRows:
    """The debtor's record, attempts placed at or after `since`, numbers, DNC entries and requests."""
    c = conn_of(conn)
    row = c.execute("SELECT timezone, status FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone()
    attempts = [AttemptRow(*r) for r in c.execute(
        "SELECT placed_at, phone, account_id, third_party, inbound, outcome, state, conversation, abandoned,"
        " machine, answered_at, ended_at FROM attempts WHERE debtor_id=? AND placed_at>=? ORDER BY placed_at",
        (debtor_id, since))]
    phones = [(r[0], r[1]) for r in
              c.execute("SELECT phone, status FROM phones WHERE debtor_id=? ORDER BY rank", (debtor_id,))]
    wanted = {p for p, _ in phones} | set(extra_phones) | {
        r[0] for r in c.execute("SELECT phone FROM contacts WHERE debtor_id=?", (debtor_id,))}
    listed: set[str] = set()
    if wanted:
        marks = ",".join("?" * len(wanted))
        listed = {r[0] for r in c.execute(f"SELECT phone FROM dnc WHERE phone IN ({marks})", tuple(wanted))}
    requests = [(r[0], r[1], float(r[2])) for r in c.execute(
        "SELECT kind, detail_json, created_at FROM contact_requests WHERE debtor_id=?"
        " AND kind IN ('cease','inconvenient','consent') ORDER BY created_at, id", (debtor_id,))]
    return HistoryRows(record_zone=row[0] if row else None, status=row[1] if row else None, attempts=attempts,
                       phones=phones, dnc_listed=frozenset(listed), requests=requests)


def campaign_profile_name(conn: Store | Conn, campaign: str | None) -> str | None:
    """The compliance profile a stored campaign names (None for an unknown or absent campaign)."""
    if not campaign:
        return None
    row = conn_of(conn).execute("SELECT profile FROM campaigns WHERE name=?", (campaign,)).fetchone()
    return row[0] if row else None


def decided(conn: Conn, debtor_id: str, call_id: str) -> bool:
    """Did take_attempt's transaction for `call_id` commit (an attempt row, or a block row)? Asked when
    the connection to PostgreSQL was lost while it committed."""
    return conn.execute("SELECT 1 FROM attempts WHERE id=? UNION ALL"
                        " SELECT 1 FROM gate_blocks WHERE debtor_id=? AND call_id=?",
                        (call_id, debtor_id, call_id)).fetchone() is not None


def record_block(conn: Conn, *, at: float, debtor_id: str, phone: str, campaign: str | None,
                 call_id: str | None, third_party: bool, rule_id: str, reason: str,
                 next_allowed_at: datetime | None, failed_checks: list[dict[str, Any]]) -> None:
    """A gate_blocks row and its audit entry, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO gate_blocks(at, debtor_id, phone, campaign, call_id, third_party, rule_id, reason,"
        " next_allowed_at, checks_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (at, debtor_id, phone, campaign, call_id, int(third_party), rule_id, reason,
         next_allowed_at.timestamp() if next_allowed_at else None, json.dumps(failed_checks, ensure_ascii=False)))
    audit(conn, "gate", "gate.block", debtor_id,
          {"rule_id": rule_id, "reason": reason, "call_id": call_id, "campaign": campaign,
           "phone": mask_phone(phone), "third_party": third_party,
           "next_allowed_at": next_allowed_at.isoformat() if next_allowed_at else None}, at)


def gate_blocks(store: Store | Conn, *, debtor_id: str | None = None, rule_id: str | None = None,
                limit: int = 1000) -> list[dict[str, Any]]:
    """Recorded blocks, newest first: why was this debtor not called?"""
    sql, args = "SELECT * FROM gate_blocks WHERE 1=1", []
    if debtor_id is not None:
        sql += " AND debtor_id=?"
        args.append(debtor_id)
    if rule_id is not None:
        sql += " AND rule_id=?"
        args.append(rule_id)
    rows = conn_of(store).execute(sql + " ORDER BY at DESC, id DESC LIMIT ?", (*args, int(limit))).fetchall()
    return [dict(r) | {"checks": json.loads(r["checks_json"])} for r in rows]


def blocks_by_rule(store: Store | Conn, *, since: float | None = None) -> dict[str, int]:
    rows = conn_of(store).execute("SELECT rule_id, count(*) FROM gate_blocks WHERE at>=? GROUP BY rule_id",
                                  (since or 0.0,)).fetchall()
    return {r[0]: r[1] for r in rows}


# -- requests that the gate honours ------------------------------------------------------------------
def _at(at: datetime | float | None) -> float:
    if at is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("the gate needs an aware datetime")
        return at.timestamp()
    return float(at)


def add_request(store: Store | Conn, debtor_id: str, kind: str, detail: Mapping[str, Any], source: str,
                at: datetime | float | None = None) -> int:
    """Record a request the gate honours (cease, inconvenient, consent); returns its id."""
    return add_contact_request(store, debtor_id, kind, detail, _at(at), source)


def add_cease(store: Store | Conn, debtor_id: str, source: str, at: datetime | float | None = None) -> int:
    """The debtor asked us to stop: every later dial to them or their contacts is blocked (`cease`)."""
    return add_request(store, debtor_id, "cease", {}, source, at)


def add_consent(store: Store | Conn, debtor_id: str, source: str, at: datetime | float | None = None) -> int:
    """Direct consent to be called: calls in the next `exclusions.consent_days` don't count (US-EXCL)."""
    return add_request(store, debtor_id, "consent", {}, source, at)


def add_dnc(store: Store | Conn, phone: str, source: str, reason: str | None = None,
            at: datetime | float | None = None) -> None:
    """Put a number on the do-not-call list (every debtor and contact with that number)."""
    if not (isinstance(phone, str) and phone.startswith("+") and phone[1:].isdigit()):
        raise ValueError(f"phone must be E.164 (+ and digits), got {phone!r}")
    with tx(store) as c:
        c.execute("INSERT INTO dnc(phone, source, reason, added_at) VALUES (?,?,?,?)"
                  " ON CONFLICT(phone) DO UPDATE SET source=excluded.source, reason=excluded.reason",
                  (phone, source, reason, _at(at)))


def is_dnc(store: Store | Conn, phone: str) -> bool:
    return conn_of(store).execute("SELECT 1 FROM dnc WHERE phone=?", (phone,)).fetchone() is not None
