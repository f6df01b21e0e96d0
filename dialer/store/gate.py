"""Store edge of the compliance gate: a debtor's history, the atomic take-an-attempt, blocks, requests.

`take_attempt` is the only way the dialer may place a call: in ONE BEGIN IMMEDIATE transaction it
loads the history, asks `dialer.gate.decide`, and either records the attempt (allowed) or the
block with its rule id and the debtor's next allowed time (blocked). Two workers or processes can
therefore never both take the last allowed attempt.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Mapping

from common.log import log_event, mask_phone
from dialer.gate.decide import Attempt, Check, Decision, History, Inconvenient, PastAttempt, decide
from dialer.gate.rules import DAY, HORIZON_DAYS, Profile, Rules
from dialer.store import Store

log = logging.getLogger("dialer.gate")

FOREVER = 253402300799.0  # 9999-12-31T23:59:59Z: next_allowed_at of a debtor nothing will unblock
DEFAULT_LOOKBACK = 15 * DAY
OPEN_STATES = ("placed", "ringing", "answered")
DEAD_PHONE_STATUSES = ("wrong_number", "unallocated")
Conn = sqlite3.Connection


def _conn(x: Store | Conn) -> Conn:
    return x.conn if isinstance(x, Store) else x


def _ts(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("the gate needs an aware datetime")
        return now.timestamp()
    return float(now)


# -- reading ---------------------------------------------------------------------------------------
def load_history(conn: Store | Conn, debtor_id: str, now: datetime | float, *,
                 lookback_seconds: float = DEFAULT_LOOKBACK, extra_phones: tuple[str, ...] = ()) -> History:
    """Everything `decide` needs about one debtor, as of `now` (attempts of the last `lookback_seconds`)."""
    c = _conn(conn)
    t = _ts(now)
    row = c.execute("SELECT timezone, status FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone()
    record_zone, status = (row[0], row[1]) if row else (None, None)
    attempts = tuple(
        PastAttempt(
            placed_at=r[0], phone=r[1], account_id=r[2], third_party=bool(r[3]), inbound=bool(r[4]),
            outcome=r[5] if r[5] is not None or r[6] in OPEN_STATES else "unknown",
            conversation=bool(r[7]), abandoned=bool(r[8]), machine=bool(r[9]), answered_at=r[10], ended_at=r[11])
        for r in c.execute(
            "SELECT placed_at, phone, account_id, third_party, inbound, outcome, state, conversation, abandoned,"
            " machine, answered_at, ended_at FROM attempts WHERE debtor_id=? AND placed_at>=? ORDER BY placed_at",
            (debtor_id, t - lookback_seconds)))
    phones_rows = c.execute("SELECT phone, status FROM phones WHERE debtor_id=? ORDER BY rank", (debtor_id,)).fetchall()
    phones = tuple(r[0] for r in phones_rows)
    dead = frozenset(r[0] for r in phones_rows if r[1] in DEAD_PHONE_STATUSES)
    dnc = {r[0] for r in phones_rows if r[1] == "dnc"}
    wanted = set(phones) | set(extra_phones) | {
        r[0] for r in c.execute("SELECT phone FROM contacts WHERE debtor_id=?", (debtor_id,))}
    if wanted:
        marks = ",".join("?" * len(wanted))
        dnc |= {r[0] for r in c.execute(f"SELECT phone FROM dnc WHERE phone IN ({marks})", tuple(wanted))}
    cease = status == "cease"
    inconvenient: list[Inconvenient] = []
    consents: list[float] = []
    for kind, detail, created in c.execute(
            "SELECT kind, detail_json, created_at FROM contact_requests WHERE debtor_id=?"
            " AND kind IN ('cease','inconvenient','consent') ORDER BY created_at, id", (debtor_id,)):
        if created > t:
            continue  # not yet made at `now`
        if kind == "cease":
            cease = True
        elif kind == "inconvenient":
            try:
                inconvenient.append(Inconvenient.from_spec(json.loads(detail or "{}")))
            except ValueError as exc:  # stored before validation existed: honour it as "never on any number"
                log_event(log, "gate.bad_inconvenient_request", debtor_id=debtor_id, error=str(exc))
                inconvenient.append(Inconvenient(frozenset(range(7)), 0, 1440))
        elif kind == "consent":
            consents.append(float(created))
    return History(debtor_id=debtor_id, timezone=record_zone, attempts=attempts, cease=cease,
                   dnc=frozenset(dnc), inconvenient=tuple(inconvenient), consents=tuple(consents),
                   phones=phones, unreachable_phones=dead)


def campaign_profile(conn: Store | Conn, rules: Rules | Profile, campaign: str | None) -> Profile:
    """The profile a campaign dials under: the campaign row's `profile`, with the rules file's overrides."""
    if isinstance(rules, Profile):
        return rules
    row = _conn(conn).execute("SELECT profile FROM campaigns WHERE name=?", (campaign,)).fetchone() if campaign else None
    return rules.profile_for(row[0] if row else None, campaign)


# -- the atomic decision -----------------------------------------------------------------------------
def take_attempt(store: Store, *, call_id: str, debtor_id: str, account_id: str | None, campaign: str,
                 phone: str | None, rules: Rules | Profile, now: datetime, third_party: bool = False,
                 agent_guaranteed: bool = False) -> Decision:
    """Decide and account in one transaction. Allowed: the attempt row is written (placed_at = now).
    Blocked: a gate_blocks row with the rule id, and the debtor's next_allowed_at moved forward.
    `phone=None` lets the gate pick the debtor's first number (rank order) that is allowed now."""
    t = _ts(now)
    with store.transaction() as conn:
        profile = campaign_profile(conn, rules, campaign)
        history = load_history(conn, debtor_id, t, lookback_seconds=profile.gate.lookback_seconds,
                               extra_phones=(phone,) if phone else ())
        base = Attempt(debtor_id, phone or "", account_id, campaign, third_party, agent_guaranteed)
        d = decide(base, history, profile, now) if phone else _pick_phone(base, history, profile, now)
        if d.allowed:
            try:
                _insert_attempt(conn, call_id=call_id, debtor_id=debtor_id, account_id=account_id,
                                campaign=campaign, phone=d.phone or "", placed_at=t, third_party=third_party)
            except _conflict_errors() as exc:
                d = _in_flight_block(d, now, str(exc))
        if not d.allowed:
            _record_block(conn, d, debtor_id=debtor_id, phone=d.phone or phone or "", campaign=campaign,
                          call_id=call_id, third_party=third_party, at=t)
            if not third_party:  # a contact's block says nothing about when the debtor may be called
                if d.next_allowed_at is not None:
                    nxt = d.next_allowed_at.timestamp()
                else:  # permanent, or no allowed time within the search horizon: look again then
                    nxt = FOREVER if d.permanent else t + HORIZON_DAYS * DAY
                conn.execute("UPDATE debtors SET next_allowed_at=max(coalesce(next_allowed_at, 0), ?)"
                             " WHERE debtor_id=?", (nxt, debtor_id))
    log_event(log, "gate.allow" if d.allowed else "gate.block", call_id=call_id, debtor_id=debtor_id,
              phone=d.phone or phone, rule=d.rule_id,
              next=d.next_allowed_at.isoformat() if d.next_allowed_at and not d.allowed else None)
    return d


def _pick_phone(base: Attempt, history: History, profile: Profile, now: datetime) -> Decision:
    """First of the debtor's live numbers allowed now; else the block that clears soonest."""
    best: Decision | None = None
    for p in history.phones:
        if p in history.unreachable_phones:
            continue
        d = decide(replace(base, phone=p), history, profile, now)
        if d.allowed:
            return d
        if best is None or (d.next_allowed_at is not None and (
                best.next_allowed_at is None or d.next_allowed_at < best.next_allowed_at)):
            best = d
    if best is None:
        return Decision(False, "dnc", "the debtor has no dialable number", None, (), (), now, None)
    return best


def _conflict_errors() -> tuple[type[BaseException], ...]:
    try:
        from dialer.store.core import AttemptConflict
    except ImportError:
        return (_InFlight,)
    return (AttemptConflict, _InFlight)


class _InFlight(RuntimeError):
    pass


def _in_flight_block(d: Decision, now: datetime, why: str) -> Decision:
    nxt = datetime.fromtimestamp(now.timestamp() + 60, timezone.utc)
    reason = f"a call to this debtor is still in flight ({why})"
    checks = d.checks + (Check("gap.min", False, reason, nxt),)
    return replace(d, allowed=False, rule_id="gap.min", reason=reason, next_allowed_at=nxt, checks=checks)


def _insert_attempt(conn: Conn, **kw: Any) -> None:
    try:
        from dialer.store.core import insert_attempt
    except ImportError:
        insert_attempt = None
    if insert_attempt is not None:
        insert_attempt(conn, **kw)
        return
    if conn.execute("SELECT 1 FROM attempts WHERE debtor_id=? AND inbound=0 AND state IN"
                    " ('placed','ringing','answered') LIMIT 1", (kw["debtor_id"],)).fetchone():
        raise _InFlight(f"debtor {kw['debtor_id']} already has a call in flight")
    conn.execute(
        "INSERT INTO attempts(id, debtor_id, account_id, campaign, phone, third_party, inbound, placed_at)"
        " VALUES (?,?,?,?,?,?,0,?)",
        (kw["call_id"], kw["debtor_id"], kw["account_id"], kw["campaign"], kw["phone"],
         int(kw["third_party"]), float(kw["placed_at"])))


def _record_block(conn: Conn, d: Decision, *, debtor_id: str, phone: str, campaign: str | None,
                  call_id: str | None, third_party: bool, at: float) -> None:
    checks = [{"rule_id": c.rule_id, "passed": c.passed, "why": c.why} for c in d.checks if not c.passed]
    conn.execute(
        "INSERT INTO gate_blocks(at, debtor_id, phone, campaign, call_id, third_party, rule_id, reason,"
        " next_allowed_at, checks_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (at, debtor_id, phone, campaign, call_id, int(third_party), d.rule_id or "", d.reason,
         d.next_allowed_at.timestamp() if d.next_allowed_at else None, json.dumps(checks, ensure_ascii=False)))
    try:
        from dialer.store.core import audit
    except ImportError:
        return
    audit(conn, "gate", "gate.block", debtor_id,
          {"rule_id": d.rule_id, "reason": d.reason, "call_id": call_id, "campaign": campaign,
           "phone": mask_phone(phone), "third_party": third_party,
           "next_allowed_at": d.next_allowed_at.isoformat() if d.next_allowed_at else None}, at)


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
    rows = _conn(store).execute(sql + " ORDER BY at DESC, id DESC LIMIT ?", (*args, int(limit))).fetchall()
    return [dict(r) | {"checks": json.loads(r["checks_json"])} for r in rows]


def blocks_by_rule(store: Store | Conn, *, since: float | None = None) -> dict[str, int]:
    rows = _conn(store).execute("SELECT rule_id, count(*) FROM gate_blocks WHERE at>=? GROUP BY rule_id",
                                (since or 0.0,)).fetchall()
    return {r[0]: r[1] for r in rows}


# -- requests that the gate honours ------------------------------------------------------------------
def _add_request(store: Store | Conn, debtor_id: str, kind: str, detail: Mapping[str, Any], at: float,
                 source: str) -> int:
    try:
        from dialer.store.core import add_contact_request
    except ImportError:
        add_contact_request = None
    if add_contact_request is not None:
        return add_contact_request(store, debtor_id, kind, detail, at, source)
    c = _conn(store)
    with (store.transaction() if isinstance(store, Store) else _nullctx(c)):
        cur = c.execute("INSERT INTO contact_requests(debtor_id, kind, detail_json, created_at, source)"
                        " VALUES (?,?,?,?,?)", (debtor_id, kind, json.dumps(dict(detail)), at, source))
        if kind == "cease":
            c.execute("UPDATE debtors SET status='cease' WHERE debtor_id=?", (debtor_id,))
        return int(cur.lastrowid or 0)


class _nullctx:
    def __init__(self, c: Conn):
        self.c = c

    def __enter__(self) -> Conn:
        return self.c

    def __exit__(self, *exc: Any) -> None:
        return None


def _at(at: datetime | float | None) -> float:
    return datetime.now(timezone.utc).timestamp() if at is None else _ts(at)


def add_cease(store: Store | Conn, debtor_id: str, source: str, at: datetime | float | None = None) -> int:
    """The debtor asked us to stop: every later dial to them or their contacts is blocked (`cease`)."""
    return _add_request(store, debtor_id, "cease", {}, _at(at), source)


def add_inconvenient(store: Store | Conn, debtor_id: str, spec: Mapping[str, Any], source: str = "operator",
                     at: datetime | float | None = None) -> int:
    """'Not at work': {"days": ["mon",...], "start": "09:00", "end": "17:00", "phone": optional, "label"}.
    Validated first (ValueError names the field); the gate blocks those local hours / that number."""
    Inconvenient.from_spec(spec)
    return _add_request(store, debtor_id, "inconvenient", dict(spec), _at(at), source)


def add_consent(store: Store | Conn, debtor_id: str, source: str, at: datetime | float | None = None) -> int:
    """Direct consent to be called: calls in the next `exclusions.consent_days` don't count (US-EXCL)."""
    return _add_request(store, debtor_id, "consent", {}, _at(at), source)


def add_dnc(store: Store | Conn, phone: str, source: str, reason: str | None = None,
            at: datetime | float | None = None) -> None:
    """Put a number on the do-not-call list (every debtor and contact with that number)."""
    if not (isinstance(phone, str) and phone.startswith("+") and phone[1:].isdigit()):
        raise ValueError(f"phone must be E.164 (+ and digits), got {phone!r}")
    c = _conn(store)
    with (store.transaction() if isinstance(store, Store) else _nullctx(c)):
        c.execute("INSERT INTO dnc(phone, source, reason, added_at) VALUES (?,?,?,?)"
                  " ON CONFLICT(phone) DO UPDATE SET source=excluded.source, reason=excluded.reason",
                  (phone, source, reason, _at(at)))


def is_dnc(store: Store | Conn, phone: str) -> bool:
    return _conn(store).execute("SELECT 1 FROM dnc WHERE phone=?", (phone,)).fetchone() is not None
