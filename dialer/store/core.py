"""Every query of the core tables: campaigns, debtors and their accounts/phones, attempts, call events,
promises, payments, contact requests and screen pops; every change is audited (dialer.store.audit).

Functions take a `Store` (and open their own transaction) or, where named `conn`, the connection of a
transaction the caller already holds (the gate records an attempt inside its own BEGIN IMMEDIATE).
Times are UTC epoch seconds.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from common.log import mask_phone
from dialer.campaign.config import Campaign, campaign_from_stored, segment_for
from dialer.campaign.imports import (
    DebtorRow,
    ImportRejected,
    PaymentRow,
    RowError,
    validate_debtor_records,
    validate_payment_records,
)
from dialer.store import Conn, Store, conn_of, retry_transaction, tx
from dialer.store.audit import audit, canonical_json

OPEN_STATES = ("placed", "ringing", "answered")
ATTEMPT_STATES = ("placed", "ringing", "answered", "ended", "unknown")
_STATE_ORDER = {"placed": 0, "ringing": 1, "answered": 2, "ended": 3, "unknown": 3}
DEBTOR_STATUSES = ("active", "done", "cease", "closed")
PHONE_STATUSES = ("ok", "wrong_number", "unallocated", "dnc")
CONTACT_REQUEST_KINDS = ("cease", "inconvenient", "consent", "callback")
ATTEMPT_FIELDS = ("state", "outcome", "dial_status", "hangup_cause", "answered_at", "ended_at",
                  "conversation", "abandoned", "machine", "agent", "disposition")


class AttemptConflict(RuntimeError):
    """The debtor already has an attempt in flight (placed/ringing/answered)."""


def _now(at: float | None) -> float:
    return float(at) if at is not None else time.time()


# -- campaigns -----------------------------------------------------------------------------------

def upsert_campaign(store: Store, campaign_cfg: Campaign, now: float | None = None) -> None:
    """Store (or replace) a validated campaign; status is kept on reload."""
    at = _now(now)
    c = campaign_cfg
    with store.transaction() as conn:
        existed = conn.execute("SELECT 1 FROM campaigns WHERE name=?", (c.name,)).fetchone() is not None
        conn.execute(
            "INSERT INTO campaigns(name, file, profile, locale, dial_mode, line_limit, config_json, loaded_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET file=excluded.file,"
            " profile=excluded.profile, locale=excluded.locale, dial_mode=excluded.dial_mode,"
            " line_limit=excluded.line_limit, config_json=excluded.config_json, loaded_at=excluded.loaded_at",
            (c.name, c.file, c.profile, c.locale, c.dial_mode, c.line_limit, canonical_json(dict(c.raw)), at),
        )
        audit(conn, "operator", "campaign.reload" if existed else "campaign.load", c.name,
              {"file": c.file, "profile": c.profile, "dial_mode": c.dial_mode, "line_limit": c.line_limit,
               "segments": [s.name for s in c.segments]}, at)


def get_campaign(store: Store | Conn, name: str) -> Campaign | None:
    """The campaign as validated at load time, or None."""
    r = conn_of(store).execute("SELECT file, config_json FROM campaigns WHERE name=?", (name,)).fetchone()
    if r is None:
        return None
    return campaign_from_stored(json.loads(r["config_json"]), r["file"])


def list_campaigns(store: Store | Conn) -> list[dict[str, Any]]:
    rows = conn_of(store).execute(
        "SELECT c.name, c.file, c.profile, c.locale, c.dial_mode, c.line_limit, c.status, c.loaded_at,"
        " (SELECT count(*) FROM debtors d WHERE d.campaign=c.name) AS debtors,"
        " (SELECT count(*) FROM debtors d WHERE d.campaign=c.name AND d.status='active') AS active"
        " FROM campaigns c ORDER BY c.name").fetchall()
    return [dict(r) for r in rows]


def set_campaign_status(store: Store, name: str, status: str, at: float | None = None) -> None:
    if status not in ("active", "paused", "done"):
        raise ValueError(f"campaign status must be active, paused or done, not {status!r}")
    with store.transaction() as conn:
        if conn.execute("UPDATE campaigns SET status=? WHERE name=?", (status, name)).rowcount != 1:
            raise KeyError(f"no campaign {name!r}")
        audit(conn, "operator", "campaign.status", name, {"status": status}, at)


# -- debtors -------------------------------------------------------------------------------------

def _resolve_campaign(store: Store, campaign: str | Campaign) -> Campaign:
    if isinstance(campaign, Campaign):
        if get_campaign(store, campaign.name) is None:
            raise ValueError(f"campaign {campaign.name!r} is not loaded (dialer campaign load FILE)")
        return campaign
    cfg = get_campaign(store, campaign)
    if cfg is None:
        raise ValueError(f"unknown campaign {campaign!r} (load it first: dialer campaign load FILE)")
    return cfg


def import_debtors(store: Store, rows: Iterable[DebtorRow | Mapping[str, Any]], campaign: str | Campaign,
                   now: float | None = None) -> dict[str, Any]:
    """Import validated rows (or raw CSV-like mappings, validated here) into `campaign`, all or nothing.

    Re-importing a debtor updates it (name, factors, accounts, phones, contacts, segment) and keeps its
    dialling state (status, next_allowed_at, propensity, phone statuses). Raises ImportRejected.
    """
    at = _now(now)
    cfg = _resolve_campaign(store, campaign)
    rows = list(rows)
    if rows and not isinstance(rows[0], DebtorRow):
        rows = validate_debtor_records(rows)  # type: ignore[arg-type]
    parsed: list[DebtorRow] = rows  # type: ignore[assignment]
    by_debtor: dict[str, list[DebtorRow]] = {}
    for r in parsed:
        by_debtor.setdefault(r.debtor_id, []).append(r)

    summary: dict[str, Any] = {"campaign": cfg.name, "rows": len(parsed), "debtors": len(by_debtor),
                               "new": 0, "updated": 0, "no_segment": []}
    with store.transaction() as conn:
        errors = []
        for r in parsed:
            owner = conn.execute("SELECT debtor_id FROM accounts WHERE account_id=?", (r.account_id,)).fetchone()
            if owner and owner[0] != r.debtor_id:
                errors.append(RowError(r.file, r.row, "account_id",
                                       f"account {r.account_id} already belongs to another debtor"))
        if errors:
            raise ImportRejected(errors)
        from common.progress import track

        for debtor_id, drows in track(by_debtor.items(), "writing debtors", len(by_debtor)):
            first = drows[0]
            primary = max(drows, key=lambda r: (r.days_past_due, r.amount_owed))
            old = conn.execute("SELECT propensity FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone()
            propensity = old[0] if old else None
            seg = segment_for(cfg, primary.days_past_due, first.customer_type, propensity)
            if seg is None:
                summary["no_segment"].append(debtor_id)
            summary["updated" if old else "new"] += 1
            conn.execute(
                "INSERT INTO debtors(debtor_id, campaign, name, id_last4, birth_year, timezone, customer_type,"
                " lang, segment, imported_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(debtor_id) DO UPDATE SET campaign=excluded.campaign, name=excluded.name,"
                " id_last4=excluded.id_last4, birth_year=excluded.birth_year, timezone=excluded.timezone,"
                " customer_type=excluded.customer_type, lang=excluded.lang, segment=excluded.segment,"
                " imported_at=excluded.imported_at",
                (debtor_id, cfg.name, first.name, first.id_last4, first.birth_year, first.timezone,
                 first.customer_type, first.lang or cfg.lang, seg.name if seg else None, at),
            )
            for r in drows:
                conn.execute(
                    "INSERT INTO accounts(account_id, debtor_id, amount_owed, currency, days_past_due, due_date,"
                    " bucket) VALUES (?,?,?,?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET"
                    " amount_owed=excluded.amount_owed, currency=excluded.currency,"
                    " days_past_due=excluded.days_past_due, due_date=excluded.due_date, bucket=excluded.bucket",
                    (r.account_id, debtor_id, str(r.amount_owed), r.currency or cfg.default_currency,
                     r.days_past_due, r.due_date, r.bucket),
                )
            phones: list[str] = []
            for r in drows:
                phones += [p for p in r.phones if p not in phones]
            for rank, phone in enumerate(phones):
                conn.execute(
                    "INSERT INTO phones(debtor_id, phone, rank) VALUES (?,?,?)"
                    " ON CONFLICT(debtor_id, phone) DO UPDATE SET rank=excluded.rank",
                    (debtor_id, phone, rank))
            # the new list is the truth: a number no longer listed goes (its history stays), except a
            # do-not-call mark, which only an operator lifts
            marks = ",".join("?" * len(phones))
            for gone, gone_status in conn.execute(
                    f"SELECT phone, status FROM phones WHERE debtor_id=? AND status!='dnc' AND phone NOT IN ({marks})",
                    (debtor_id, *phones)).fetchall():
                if gone_status != "ok":
                    _phone_history(conn, debtor_id, gone, "removed", gone_status, at, None, "import",
                                   "not in the re-imported phone list")
            conn.execute(f"DELETE FROM phones WHERE debtor_id=? AND status!='dnc' AND phone NOT IN ({marks})",
                         (debtor_id, *phones))
            conn.execute("UPDATE phones SET rank=? + rank WHERE debtor_id=? AND phone NOT IN"
                         f" ({','.join('?' * len(phones))})", (len(phones), debtor_id, *phones))
            conn.execute("DELETE FROM contacts WHERE debtor_id=?", (debtor_id,))
            seen_contacts = set()
            for r in drows:
                for c in r.contacts:
                    if (c.name, c.phone) not in seen_contacts:
                        seen_contacts.add((c.name, c.phone))
                        conn.execute("INSERT INTO contacts(debtor_id, name, relation, phone) VALUES (?,?,?,?)",
                                     (debtor_id, c.name, c.relation, c.phone))
        audit(conn, "operator", "debtors.import", cfg.name,
              {"file": parsed[0].file if parsed else None, "rows": len(parsed), "debtors": len(by_debtor),
               "new": summary["new"], "updated": summary["updated"]}, at)
    return summary


@dataclass(frozen=True)
class Candidate:
    """A debtor the hopper may dial now, with the account to talk about (highest days past due)."""

    debtor_id: str
    campaign: str
    name: str
    phones: tuple[str, ...]
    account_id: str
    amount_owed: Decimal
    currency: str
    days_past_due: int
    due_date: str | None
    bucket: str
    timezone: str | None
    customer_type: str
    lang: str
    segment: str | None
    propensity: float | None
    id_last4: str | None = None      # verification factors: never log or say them
    birth_year: int | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CANDIDATE_SQL = """
SELECT d.debtor_id, d.campaign, d.name, d.timezone, d.customer_type, d.lang, d.segment, d.propensity,
       d.id_last4, d.birth_year, a.account_id, a.amount_owed, a.currency, a.days_past_due,
       a.due_date, a.bucket
FROM debtors d JOIN accounts a ON a.account_id = (
       SELECT a2.account_id FROM accounts a2
       WHERE a2.debtor_id = d.debtor_id AND CAST(a2.amount_owed AS REAL) > 0
       ORDER BY a2.days_past_due DESC, CAST(a2.amount_owed AS REAL) DESC, a2.account_id LIMIT 1)
WHERE d.campaign = ? AND d.status = 'active' AND d.segment IS NOT NULL
  AND EXISTS (SELECT 1 FROM campaigns c WHERE c.name = d.campaign AND c.status = 'active')  -- paused: not dialled
  AND (d.next_allowed_at IS NULL OR d.next_allowed_at <= ?)
  AND NOT EXISTS (SELECT 1 FROM attempts t WHERE t.debtor_id = d.debtor_id
                  AND t.state IN ('placed','ringing','answered'))
  AND EXISTS (SELECT 1 FROM phones p WHERE p.debtor_id = d.debtor_id AND p.status = 'ok')
ORDER BY d.propensity DESC NULLS LAST, a.days_past_due DESC, d.debtor_id
LIMIT ?
"""


def _phones_ok(conn: Conn, debtor_id: str) -> tuple[str, ...]:
    return tuple(r[0] for r in conn.execute(
        "SELECT phone FROM phones WHERE debtor_id=? AND status='ok' ORDER BY rank", (debtor_id,)))


def due_debtors(store: Store | Conn, campaign: str, now_ts: float, limit: int = 100) -> list[Candidate]:
    """Active debtors of `campaign` allowed now, with a usable phone, a segment and no call in flight.

    Ordered by propensity (unscored last), then days past due. The gate still decides each dial.
    """
    conn = conn_of(store)
    return [candidate_of(conn, r) for r in conn.execute(_CANDIDATE_SQL, (campaign, float(now_ts), int(limit))).fetchall()]


def candidate_of(conn: Conn, r: Any) -> Candidate:
    """A row of `_CANDIDATE_SQL` (or a query built on it: dialer/store/servers.py) as a Candidate."""
    return Candidate(
        debtor_id=r["debtor_id"], campaign=r["campaign"], name=r["name"],
        phones=_phones_ok(conn, r["debtor_id"]), account_id=r["account_id"],
        amount_owed=Decimal(r["amount_owed"]), currency=r["currency"], days_past_due=r["days_past_due"],
        due_date=r["due_date"], bucket=r["bucket"], timezone=r["timezone"],
        customer_type=r["customer_type"], lang=r["lang"], segment=r["segment"], propensity=r["propensity"],
        id_last4=r["id_last4"], birth_year=r["birth_year"],
    )


def get_debtor(store: Store | Conn, debtor_id: str) -> dict[str, Any] | None:
    """The debtor row plus `accounts`, `phones` (all, with status) and `contacts`."""
    conn = conn_of(store)
    d = conn.execute("SELECT * FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone()
    if d is None:
        return None
    out = dict(d)
    out["accounts"] = [dict(r) for r in conn.execute(
        "SELECT * FROM accounts WHERE debtor_id=? ORDER BY days_past_due DESC, account_id", (debtor_id,))]
    out["phones"] = [dict(r) for r in conn.execute(
        "SELECT phone, rank, status, status_at, status_call, status_actor FROM phones WHERE debtor_id=?"
        " ORDER BY rank", (debtor_id,))]
    out["contacts"] = [dict(r) for r in conn.execute(
        "SELECT name, relation, phone FROM contacts WHERE debtor_id=? ORDER BY id", (debtor_id,))]
    return out


def set_next_allowed(conn_or_store: Store | Conn, debtor_id: str, ts: float | None) -> None:
    """Earliest time the debtor may be dialled again (None = now). Never moves an existing time earlier
    unless `ts` is None (an explicit reset)."""
    with tx(conn_or_store) as conn:
        if ts is None:
            conn.execute("UPDATE debtors SET next_allowed_at=NULL WHERE debtor_id=?", (debtor_id,))
        else:
            conn.execute("UPDATE debtors SET next_allowed_at=max(coalesce(next_allowed_at, 0), ?)"
                         " WHERE debtor_id=?", (float(ts), debtor_id))


def set_debtor_status(conn_or_store: Store | Conn, debtor_id: str, status: str, at: float | None = None,
                      actor: str = "dialer", reason: str | None = None) -> None:
    if status not in DEBTOR_STATUSES:
        raise ValueError(f"debtor status must be one of {', '.join(DEBTOR_STATUSES)}, not {status!r}")
    with tx(conn_or_store) as conn:
        if conn.execute("UPDATE debtors SET status=? WHERE debtor_id=?", (status, debtor_id)).rowcount != 1:
            raise KeyError(f"no debtor {debtor_id!r}")
        audit(conn, actor, "debtor.status", debtor_id, {"status": status, "reason": reason}, at)


def set_propensity(conn_or_store: Store | Conn, debtor_id: str, score: float | None,
                   segment: str | None = None) -> None:
    """Record the latest model score (and, when given, the segment the strategy re-chose)."""
    with tx(conn_or_store) as conn:
        if segment is None:
            conn.execute("UPDATE debtors SET propensity=? WHERE debtor_id=?", (score, debtor_id))
        else:
            conn.execute("UPDATE debtors SET propensity=?, segment=? WHERE debtor_id=?",
                         (score, segment, debtor_id))


def mark_phone(store: Store | Conn, debtor_id: str, phone: str, status: str, at: float | None = None,
               actor: str = "dialer", call_id: str | None = None, reason: str | None = None) -> None:
    """Set a phone's status as a fact: when, by which call (default: the debtor's latest call to that
    number, when the dialer sets it) or operator; every change goes to phone_status_history."""
    if status not in PHONE_STATUSES:
        raise ValueError(f"phone status must be one of {', '.join(PHONE_STATUSES)}, not {status!r}")
    t = _now(at)
    with tx(store) as conn:
        row = conn.execute("SELECT status FROM phones WHERE debtor_id=? AND phone=?", (debtor_id, phone)).fetchone()
        if row is None:
            raise KeyError(f"debtor {debtor_id!r} has no phone {mask_phone(phone)}")
        if call_id is None and actor == "dialer":
            last = conn.execute("SELECT id FROM attempts WHERE debtor_id=? AND phone=? AND placed_at<=?"
                                " ORDER BY placed_at DESC LIMIT 1", (debtor_id, phone, t + 1)).fetchone()
            call_id = last[0] if last else None
        conn.execute("UPDATE phones SET status=?, status_at=?, status_call=?, status_actor=?"
                     " WHERE debtor_id=? AND phone=?", (status, t, call_id, actor, debtor_id, phone))
        _phone_history(conn, debtor_id, phone, status, row[0], t, call_id, actor, reason)
        audit(conn, actor, "phone.status", debtor_id,
              {"phone": mask_phone(phone), "status": status, "previous": row[0], "call_id": call_id,
               "reason": reason}, t)


def _phone_history(conn: Conn, debtor_id: str, phone: str, status: str, previous: str | None, at: float,
                   call_id: str | None, actor: str, reason: str | None) -> None:
    conn.execute("INSERT INTO phone_status_history(debtor_id, phone, status, previous, at, call_id, actor, reason)"
                 " VALUES (?,?,?,?,?,?,?,?)", (debtor_id, phone, status, previous, at, call_id, actor, reason))


def reset_phone_status(store: Store | Conn, phone: str, at: float | None = None, actor: str = "operator",
                       reason: str | None = None) -> list[dict[str, Any]]:
    """Put every (debtor, `phone`) whose status is not ok back to ok (audited), and let the debtors be
    looked at again. Returns what changed: [{debtor_id, previous}]."""
    t = _now(at)
    changed = []
    with tx(store) as conn:
        rows = conn.execute("SELECT debtor_id, status FROM phones WHERE phone=? AND status NOT IN ('ok', 'dnc')",
                            (phone,)).fetchall()
        for debtor_id, previous in rows:
            conn.execute("UPDATE phones SET status='ok', status_at=?, status_call=NULL, status_actor=?"
                         " WHERE debtor_id=? AND phone=?", (t, actor, debtor_id, phone))
            _phone_history(conn, debtor_id, phone, "ok", previous, t, None, actor, reason)
            audit(conn, actor, "phone.reset", debtor_id,
                  {"phone": mask_phone(phone), "previous": previous, "reason": reason}, t)
            # the number is fixed: the debtor is due again now (the gate still decides at dial time)
            conn.execute("UPDATE debtors SET next_allowed_at=NULL WHERE debtor_id=?", (debtor_id,))
            changed.append({"debtor_id": debtor_id, "previous": previous})
    return changed


def phone_statuses(store: Store | Conn, phone: str | None = None, debtor_id: str | None = None) -> list[dict[str, Any]]:
    """Current status of phones (by number or by debtor), with when and by which call it was set."""
    conn = conn_of(store)
    where, args = ("phone=?", (phone,)) if phone else ("debtor_id=?", (debtor_id,))
    return [dict(r) for r in conn.execute(
        "SELECT debtor_id, phone, rank, status, status_at, status_call, status_actor FROM phones"
        f" WHERE {where} ORDER BY debtor_id, rank", args)]


def phone_status_history(store: Store | Conn, phone: str | None = None,
                         debtor_id: str | None = None) -> list[dict[str, Any]]:
    conn = conn_of(store)
    where, args = ("phone=?", (phone,)) if phone else ("debtor_id=?", (debtor_id,))
    return [dict(r) for r in conn.execute(
        "SELECT debtor_id, phone, status, previous, at, call_id, actor, reason FROM phone_status_history"
        f" WHERE {where} ORDER BY at, id", args)]


# -- attempts ------------------------------------------------------------------------------------

def has_open_attempt(conn_or_store: Store | Conn, debtor_id: str) -> bool:
    return conn_of(conn_or_store).execute(
        "SELECT 1 FROM attempts WHERE debtor_id=? AND state IN ('placed','ringing','answered') LIMIT 1",
        (debtor_id,)).fetchone() is not None


def insert_attempt(conn: Conn, *, call_id: str, debtor_id: str, account_id: str | None, campaign: str,
                   phone: str, placed_at: float, third_party: bool = False, inbound: bool = False,
                   server_id: str | None = None) -> None:
    """Record an attempt inside the caller's transaction (the gate's BEGIN IMMEDIATE). `server_id`: the
    dialer server placing it (it alone settles the attempt from its own CDR).

    Refuses (AttemptConflict) a second outbound attempt while one to the same debtor is in flight, so two
    dialers sharing the database cannot both place a call.
    """
    conn = conn_of(conn)
    if not conn.in_transaction:
        raise RuntimeError("insert_attempt must run inside store.transaction()")
    if not inbound and has_open_attempt(conn, debtor_id):
        raise AttemptConflict(f"debtor {debtor_id} already has a call in flight")
    conn.execute(
        "INSERT INTO attempts(id, debtor_id, account_id, campaign, phone, third_party, inbound, placed_at,"
        " server_id) VALUES (?,?,?,?,?,?,?,?,?)",
        (call_id, debtor_id, account_id, campaign, phone, int(third_party), int(inbound), float(placed_at),
         server_id),
    )
    detail = {"debtor_id": debtor_id, "account_id": account_id, "campaign": campaign, "phone": mask_phone(phone),
              "third_party": bool(third_party), "inbound": bool(inbound)}
    if server_id is not None:
        detail["server"] = server_id
    audit(conn, "dialer", "attempt.placed", call_id, detail, placed_at)


def update_attempt(store: Store | Conn, call_id: str, *, at: float | None = None, actor: str = "dialer",
                   **fields: Any) -> dict[str, Any]:
    """Apply outcome fields to an attempt and audit them, in one transaction; returns the row.

    The state only moves forward (placed → ringing → answered → ended/unknown): a late event cannot
    reopen an ended call; 'unknown' may later be reconciled to 'ended' (and back is refused too).
    """
    bad = sorted(set(fields) - set(ATTEMPT_FIELDS))
    if bad:
        raise ValueError(f"update_attempt: unknown field(s) {', '.join(bad)}")
    state = fields.get("state")
    if state is not None and state not in ATTEMPT_STATES:
        raise ValueError(f"attempt state must be one of {', '.join(ATTEMPT_STATES)}, not {state!r}")
    def apply(conn: Conn) -> dict[str, Any]:
        cur = conn.execute("SELECT * FROM attempts WHERE id=?", (call_id,)).fetchone()
        if cur is None:
            raise KeyError(f"no attempt {call_id!r}")
        changes = dict(fields)
        if state is not None:
            old = cur["state"]
            if _STATE_ORDER[state] < _STATE_ORDER[old] or (old == "ended" and state == "unknown"):
                changes.pop("state")
        for key in ("conversation", "abandoned", "machine"):
            if key in changes and changes[key] is not None:
                changes[key] = int(bool(changes[key]))
        if changes:
            conn.execute(f"UPDATE attempts SET {', '.join(k + '=?' for k in changes)} WHERE id=?",
                         (*changes.values(), call_id))
            when = at if at is not None else fields.get("ended_at") or fields.get("answered_at")
            audit(conn, actor, "attempt.update", call_id, changes, when)
        row = conn.execute("SELECT * FROM attempts WHERE id=?", (call_id,)).fetchone()
        if changes.get("disposition") and changes["disposition"] != cur["disposition"]:
            from dialer.store.outbox import disposition_event

            disposition_event(conn, dict(row), when if changes else at)
        return dict(row)

    if isinstance(store, Store):  # a transaction the lost server cut off runs again (the state only moves forward)
        return retry_transaction(store, apply, committed=lambda conn: False)
    with tx(store) as conn:
        return apply(conn)


def get_attempt(store: Store | Conn, call_id: str) -> dict[str, Any] | None:
    r = conn_of(store).execute("SELECT * FROM attempts WHERE id=?", (call_id,)).fetchone()
    return dict(r) if r else None


def open_attempts(store: Store | Conn, server_id: str | None = None) -> list[dict[str, Any]]:
    """Attempts not yet ended or unknown (what a restarted daemon must reconcile). With `server_id`: only
    that server's (and those placed before servers had names): a server settles its own calls from its own
    CDR, never another server's live ones."""
    if server_id is None:
        return [dict(r) for r in conn_of(store).execute(
            "SELECT * FROM attempts WHERE state NOT IN ('ended','unknown') ORDER BY placed_at, id")]
    # ... and its calls another server marked unknown while it was silent (dialer/store/servers.py
    # `mark_orphaned`), not yet settled from its CDR: back, it settles them as a clean run would have
    return [dict(r) for r in conn_of(store).execute(
        "SELECT * FROM attempts t WHERE (t.state NOT IN ('ended','unknown') AND (t.server_id = ? OR t.server_id IS NULL))"
        " OR (t.state = 'unknown' AND t.server_id = ?"
        " AND EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = t.id AND e.kind = 'orphaned')"
        " AND NOT EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = t.id AND e.kind = 'reconciled'))"
        " ORDER BY t.placed_at, t.id", (server_id, server_id))]


def latest_attempt_time(store: Store | Conn) -> float | None:
    """The latest time any attempt records (placed, answered or ended), or None with no attempts."""
    r = conn_of(store).execute(
        "SELECT max(coalesce(max(placed_at), 0), coalesce(max(answered_at), 0), coalesce(max(ended_at), 0))"
        " FROM attempts").fetchone()
    return float(r[0]) if r and r[0] else None


def attempts_for_debtor(store: Store | Conn, debtor_id: str, since: float | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM attempts WHERE debtor_id=?", [debtor_id]
    if since is not None:
        sql += " AND placed_at >= ?"
        args.append(float(since))
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY placed_at, id", args)]


def attempts_for_phone(store: Store | Conn, phone: str, since: float | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM attempts WHERE phone=?", [phone]
    if since is not None:
        sql += " AND placed_at >= ?"
        args.append(float(since))
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY placed_at, id", args)]


# -- call events, promises, contact requests --------------------------------------------------------

def record_call_event(store: Store | Conn, call_id: str, kind: str, at: float,
                      data: Mapping[str, Any] | None = None) -> int:
    with tx(store) as conn:
        cur = conn.execute("INSERT INTO call_events(call_id, at, kind, data_json) VALUES (?,?,?,?)",
                           (call_id, float(at), kind, canonical_json(dict(data or {}))))
        return int(cur.lastrowid)


def count_debtor_events(store: Store | Conn, debtor_id: str, kind: str, *, since: float) -> int:
    """How many events of `kind` the debtor's calls (all campaigns' attempts) recorded since `since`."""
    row = conn_of(store).execute(
        "SELECT count(*) FROM call_events e JOIN attempts a ON a.id = e.call_id "
        "WHERE a.debtor_id=? AND e.kind=? AND e.at >= ?", (debtor_id, kind, float(since))).fetchone()
    return int(row[0])


def call_events(store: Store | Conn, call_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM call_events WHERE call_id=?", [call_id]
    if kind is not None:
        sql += " AND kind=?"
        args.append(kind)
    rows = conn_of(store).execute(sql + " ORDER BY at, id", args).fetchall()
    return [dict(r) | {"data": json.loads(r["data_json"])} for r in rows]


def record_promise(store: Store | Conn, call_id: str | None, debtor_id: str, account_id: str | None,
                   amount: Decimal | str | float | None, due_date: str | date, created_at: float) -> int:
    """A promise to pay `amount` (None = the full balance) by `due_date`; returns its id."""
    due = due_date.isoformat() if isinstance(due_date, date) else date.fromisoformat(str(due_date)).isoformat()
    amt = None if amount is None else str(Decimal(str(amount)))
    with tx(store) as conn:
        cur = conn.execute(
            "INSERT INTO promises(call_id, debtor_id, account_id, amount, due_date, created_at)"
            " VALUES (?,?,?,?,?,?)", (call_id, debtor_id, account_id, amt, due, float(created_at)))
        pid = int(cur.lastrowid)
        audit(conn, "dialer", "promise.recorded", debtor_id,
              {"promise_id": pid, "call_id": call_id, "account_id": account_id, "amount": amt, "due_date": due},
              created_at)
        from dialer.store.outbox import outbox_add

        outbox_add(conn, "promise", {"promise_id": pid, "call_id": call_id, "debtor_id": debtor_id,
                                     "account_id": account_id, "amount": amt, "due_date": due},
                   subject=debtor_id, at=created_at)
        if account_id:
            _settle_promises(conn, [account_id], created_at)
    return pid


def promises_for(store: Store | Conn, *, debtor_id: str | None = None, call_id: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM promises WHERE 1=1", []
    if debtor_id is not None:
        sql += " AND debtor_id=?"
        args.append(debtor_id)
    if call_id is not None:
        sql += " AND call_id=?"
        args.append(call_id)
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY created_at, id", args)]


def add_contact_request(store: Store | Conn, debtor_id: str, kind: str, detail: Mapping[str, Any] | None,
                        created_at: float, source: str) -> int:
    """Record a debtor's request (cease, inconvenient time/place, consent, callback). A cease request also
    sets the debtor's status to 'cease', so the hopper stops offering them."""
    if kind not in CONTACT_REQUEST_KINDS:
        raise ValueError(f"contact request kind must be one of {', '.join(CONTACT_REQUEST_KINDS)}, not {kind!r}")
    with tx(store) as conn:
        cur = conn.execute(
            "INSERT INTO contact_requests(debtor_id, kind, detail_json, created_at, source) VALUES (?,?,?,?,?)",
            (debtor_id, kind, canonical_json(dict(detail or {})), float(created_at), source))
        rid = int(cur.lastrowid)
        audit(conn, source if source == "operator" else "dialer", "contact_request", debtor_id,
              {"id": rid, "kind": kind, "detail": dict(detail or {}), "source": source}, created_at)
        if kind == "cease":
            conn.execute("UPDATE debtors SET status='cease' WHERE debtor_id=?", (debtor_id,))
            from dialer.store.outbox import outbox_add

            outbox_add(conn, "cease", {"request_id": rid, "debtor_id": debtor_id, "source": source,
                                       "detail": dict(detail or {})}, subject=debtor_id, at=created_at)
    return rid


def contact_requests(store: Store | Conn, debtor_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM contact_requests WHERE debtor_id=?", [debtor_id]
    if kind is not None:
        sql += " AND kind=?"
        args.append(kind)
    rows = conn_of(store).execute(sql + " ORDER BY created_at, id", args).fetchall()
    return [dict(r) | {"detail": json.loads(r["detail_json"])} for r in rows]


# -- screen pops ---------------------------------------------------------------------------------

def screen_pop_context(store: Store | Conn, call_id: str, debtor_id: str) -> dict[str, Any]:
    """What a collector needs when the call reaches them: who, how much, how late, what the bot learnt.

    `verified` is true when the call has a call event of kind 'verified' (or 'verification' with
    data ok/verified true); `intents` come from events of kind 'intent' (data {"intent": ...}).
    """
    conn = conn_of(store)
    d = get_debtor(conn, debtor_id) or {"name": None, "segment": None, "accounts": [], "phones": []}
    attempt = get_attempt(conn, call_id)
    phone = attempt["phone"] if attempt else (d["phones"][0]["phone"] if d["phones"] else None)
    acct = None
    if attempt and attempt.get("account_id"):
        acct = next((a for a in d["accounts"] if a["account_id"] == attempt["account_id"]), None)
    acct = acct or (d["accounts"][0] if d["accounts"] else None)
    events = call_events(conn, call_id)
    verified = any(e["kind"] == "verified" or (e["kind"] == "verification" and
                   (e["data"].get("ok") or e["data"].get("verified"))) for e in events)
    intents = [e["data"].get("intent") for e in events if e["kind"] == "intent" and e["data"].get("intent")]
    promise = next(iter(promises_for(conn, call_id=call_id)), None) if call_id else None
    return {
        "call_id": call_id, "debtor_id": debtor_id, "name": d.get("name"), "phone": mask_phone(phone),
        "account_id": acct["account_id"] if acct else None,
        "amount_owed": acct["amount_owed"] if acct else None, "currency": acct["currency"] if acct else None,
        "days_past_due": acct["days_past_due"] if acct else None, "bucket": acct["bucket"] if acct else None,
        "segment": d.get("segment"), "verified": verified, "intents": intents,
        "promise": ({"amount": promise["amount"], "due_date": promise["due_date"], "status": promise["status"]}
                    if promise else None),
    }


def push_screen_pop(store: Store | Conn, agent: str, call_id: str, debtor_id: str,
                    context: Mapping[str, Any] | None, at: float) -> int:
    """Queue a screen pop for `agent`; `context` is merged over `screen_pop_context` (phone masked)."""
    with tx(store) as conn:
        ctx = screen_pop_context(conn, call_id, debtor_id)
        ctx.update(dict(context or {}))
        if ctx.get("phone") and not str(ctx["phone"]).count("*"):
            ctx["phone"] = mask_phone(str(ctx["phone"]))
        cur = conn.execute("INSERT INTO screen_pops(agent, call_id, debtor_id, context_json, at) VALUES (?,?,?,?,?)",
                           (agent, call_id, debtor_id, canonical_json(ctx), float(at)))
        return int(cur.lastrowid)


def screen_pops_after(store: Store | Conn, agent: str, after_id: int = 0) -> list[dict[str, Any]]:
    rows = conn_of(store).execute(
        "SELECT * FROM screen_pops WHERE agent=? AND id>? ORDER BY id", (agent, int(after_id))).fetchall()
    return [dict(r) | {"context": json.loads(r["context_json"])} for r in rows]


def last_screen_pop_id(store: Store | Conn, agent: str | None = None) -> int:
    if agent is None:
        r = conn_of(store).execute("SELECT max(id) FROM screen_pops").fetchone()
    else:
        r = conn_of(store).execute("SELECT max(id) FROM screen_pops WHERE agent=?", (agent,)).fetchone()
    return int(r[0] or 0)


# -- payments and promises kept --------------------------------------------------------------------

def import_payments(store: Store, rows: Iterable[PaymentRow | Mapping[str, Any]],
                    now: float | None = None) -> dict[str, Any]:
    """Import payments all or nothing; balances, reversals and promises settle in the same transaction
    (dialer/store/payments.py)."""
    from dialer.store.payments import import_payments as _import

    return _import(store, rows, now)


def _settle_promises(conn: Conn, account_ids: Sequence[str], at: float) -> list[int]:
    """Mark open promises kept when the account's payments made from the promise's day up to its due
    date add up to the promised amount (or the balance, for a full-balance promise)."""
    kept = []
    for account_id in account_ids:
        acct = conn.execute("SELECT amount_owed FROM accounts WHERE account_id=?", (account_id,)).fetchone()
        for p in conn.execute("SELECT * FROM promises WHERE account_id=? AND status='open' ORDER BY id",
                              (account_id,)).fetchall():
            start = datetime.fromtimestamp(p["created_at"], timezone.utc).date().isoformat()
            paid = sum((Decimal(r[0]) for r in conn.execute(
                "SELECT amount FROM payments WHERE account_id=? AND substr(paid_at,1,10) BETWEEN ? AND ?",
                (account_id, start, p["due_date"]))), Decimal(0))
            target = Decimal(p["amount"]) if p["amount"] is not None else Decimal(acct[0] if acct else "0")
            if paid > 0 and paid >= target:
                conn.execute("UPDATE promises SET status='kept' WHERE id=?", (p["id"],))
                audit(conn, "dialer", "promise.kept", p["debtor_id"],
                      {"promise_id": p["id"], "account_id": account_id, "paid": str(paid)}, at)
                kept.append(int(p["id"]))
    return kept


def settle_promises(store: Store, today: date | str, at: float | None = None) -> dict[str, list[int]]:
    """Re-check every open promise: kept if covered, broken if its due date is before `today`."""
    today_s = today.isoformat() if isinstance(today, date) else date.fromisoformat(today).isoformat()
    at = _now(at)
    from dialer.store.payments import settle_promises_by_payments

    with store.transaction() as conn:
        accounts = [r[0] for r in conn.execute(
            "SELECT DISTINCT account_id FROM promises WHERE status='open' AND account_id IS NOT NULL")]
        kept = _settle_promises(conn, accounts, at)
        by_payments = settle_promises_by_payments(conn, accounts, today_s, at)  # partly kept / broken
        broken = [int(r[0]) for r in conn.execute(
            "SELECT id FROM promises WHERE status='open' AND due_date < ?", (today_s,))]
        kept += by_payments["kept"]
        for pid in broken:
            conn.execute("UPDATE promises SET status='broken' WHERE id=?", (pid,))
            audit(conn, "dialer", "promise.broken", str(pid), {"promise_id": pid}, at)
    return {"kept": kept, "broken": sorted(broken + by_payments["broken"]),
            "partly_kept": by_payments["partly_kept"]}
