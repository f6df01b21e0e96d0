"""take_attempt: the only way the dialer may place a call. In ONE transaction it loads the debtor's
history, asks `decide`, and either records the attempt (allowed) or the block with its rule id and the
debtor's next allowed time (blocked); two workers, processes or servers can therefore never both take
the last allowed attempt. On SQLite the transaction is BEGIN IMMEDIATE (one writer at a time); on
PostgreSQL it holds an advisory lock on the debtor (`Store.transaction(lock="debtor:ID")`), so servers
sharing the database serialise per debtor and decide for different debtors in parallel.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Mapping

from common.log import log_event
from dialer.gate.decide import Attempt, Check, Decision, History, Inconvenient, PastAttempt, decide
from dialer.gate.rules import DAY, HORIZON_DAYS, Profile, Rules
from dialer.store import Conn, Store, StoreUnavailable, core, retry_transaction
from dialer.store import gate as gate_store
from dialer.store import payments as payments_store
from dialer.store import suppression as suppression_store

log = logging.getLogger("dialer.gate")

FOREVER = 253402300799.0  # 9999-12-31T23:59:59Z: next_allowed_at of a debtor nothing will unblock
DEFAULT_LOOKBACK = 15 * DAY
DEAD_PHONE_STATUSES = ("wrong_number", "unallocated")
IN_FLIGHT_RETRY = 60.0  # seconds: a debtor with a call still in flight is looked at again then


def _ts(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("the gate needs an aware datetime")
        return now.timestamp()
    return float(now)


def load_history(conn: Store | Conn, debtor_id: str, now: datetime | float, *,
                 lookback_seconds: float = DEFAULT_LOOKBACK, extra_phones: tuple[str, ...] = ()) -> History:
    """Everything `decide` needs about one debtor, as of `now` (attempts of the last `lookback_seconds`)."""
    t = _ts(now)
    rows = gate_store.history_rows(conn, debtor_id, t - lookback_seconds, extra_phones=extra_phones)
    attempts = tuple(
        PastAttempt(
            placed_at=r.placed_at, phone=r.phone, account_id=r.account_id, third_party=bool(r.third_party),
            inbound=bool(r.inbound), outcome=r.outcome if r.outcome is not None or r.state in core.OPEN_STATES else "unknown",
            conversation=bool(r.conversation), abandoned=bool(r.abandoned), machine=bool(r.machine),
            answered_at=r.answered_at, ended_at=r.ended_at)
        for r in rows.attempts)
    dnc = set(rows.dnc_listed) | {p for p, status in rows.phones if status == "dnc"}
    cease = rows.status == "cease"
    inconvenient: list[Inconvenient] = []
    consents: list[float] = []
    for kind, detail, created in rows.requests:
        if kind == "cease":  # a request recorded later than `now` still holds: the clock cannot undo it
            cease = True
        elif kind == "inconvenient":
            try:
                inconvenient.append(Inconvenient.from_spec(json.loads(detail or "{}")))
            except ValueError as exc:  # stored before validation existed: honour it as "never on any number"
                log_event(log, "gate.bad_inconvenient_request", debtor_id=debtor_id, error=str(exc))
                inconvenient.append(Inconvenient(frozenset(range(7)), 0, 1440))
        elif kind == "consent" and created <= t:  # consent only counts from when it was given
            consents.append(created)
    paid, balance_due = payments_store.paid_accounts(conn, debtor_id)
    return History(debtor_id=debtor_id, timezone=rows.record_zone, attempts=attempts, cease=cease,
                   dnc=frozenset(dnc), inconvenient=tuple(inconvenient), consents=tuple(consents),
                   phones=tuple(p for p, _ in rows.phones),
                   unreachable_phones=frozenset(p for p, status in rows.phones if status in DEAD_PHONE_STATUSES),
                   suppressions=suppression_store.suppressions_for(conn, debtor_id, extra_phones),
                   paid_accounts=paid, balance_due=balance_due)


def campaign_profile(conn: Store | Conn, rules: Rules | Profile, campaign: str | None) -> Profile:
    """The profile a campaign dials under: the campaign row's `profile`, with the rules file's overrides."""
    if isinstance(rules, Profile):
        return rules
    return rules.profile_for(gate_store.campaign_profile_name(conn, campaign), campaign)


def add_inconvenient(store: Store | Conn, debtor_id: str, spec: Mapping[str, Any], source: str = "operator",
                     at: datetime | float | None = None) -> int:
    """'Not at work': {"days": ["mon",...], "start": "09:00", "end": "17:00", "phone": optional, "label"}.
    Validated first (ValueError names the field); the gate blocks those local hours / that number."""
    Inconvenient.from_spec(spec)
    return gate_store.add_request(store, debtor_id, "inconvenient", dict(spec), source, at)


# -- the atomic decision -----------------------------------------------------------------------------
def take_attempt(store: Store, *, call_id: str, debtor_id: str, account_id: str | None, campaign: str,
                 phone: str | None, rules: Rules | Profile, now: datetime, third_party: bool = False,
                 agent_guaranteed: bool = False, server_id: str | None = None) -> Decision:
    """Decide and account in one transaction (`server_id`: the dialer server placing the call). Allowed: the attempt row is written (placed_at = now).
    Blocked: a gate_blocks row with the rule id, and the debtor's next_allowed_at moved forward.
    `phone=None` lets the gate pick the debtor's first number (rank order) that is allowed now."""
    t = _ts(now)

    def decide_and_record(conn: Conn) -> Decision:
        profile = campaign_profile(conn, rules, campaign)
        history = load_history(conn, debtor_id, t, lookback_seconds=profile.gate.lookback_seconds,
                               extra_phones=(phone,) if phone else ())
        base = Attempt(debtor_id, phone or "", account_id, campaign, third_party, agent_guaranteed)
        d = decide(base, history, profile, now) if phone else _pick_phone(base, history, profile, now)
        if d.allowed:
            try:
                core.insert_attempt(conn, call_id=call_id, debtor_id=debtor_id, account_id=account_id,
                                    campaign=campaign, phone=d.phone or "", placed_at=t, third_party=third_party,
                                    server_id=server_id)
            except core.AttemptConflict as exc:
                d = _in_flight_block(d, now, str(exc))
        if not d.allowed:
            gate_store.record_block(
                conn, at=t, debtor_id=debtor_id, phone=d.phone or phone or "", campaign=campaign, call_id=call_id,
                third_party=third_party, rule_id=d.rule_id or "", reason=d.reason, next_allowed_at=d.next_allowed_at,
                failed_checks=[{"rule_id": c.rule_id, "passed": c.passed, "why": c.why} for c in d.checks if not c.passed])
            if not third_party:  # a contact's block says nothing about when the debtor may be called
                if d.next_allowed_at is not None:
                    nxt = d.next_allowed_at.timestamp()
                else:  # permanent, or no allowed time within the search horizon: look again then
                    nxt = FOREVER if d.permanent else t + HORIZON_DAYS * DAY
                core.set_next_allowed(conn, debtor_id, nxt)
        return d

    def recorded(conn: Conn) -> bool:  # the connection was lost during COMMIT: did it commit?
        return gate_store.decided(conn, debtor_id, call_id)

    # one transaction; one the database lost is run again when it is back, or found committed (never doubled)
    try:
        d = retry_transaction(store, decide_and_record, lock=f"debtor:{debtor_id}", committed=recorded)
    except StoreUnavailable as exc:
        exc.call_id = call_id  # in doubt and still unreachable: the caller settles it once the server is back
        raise
    log_event(log, "gate.allow" if d.allowed else "gate.block", call_id=call_id, debtor_id=debtor_id,
              phone=d.phone or phone, rule=d.rule_id, server=server_id,
              next=d.next_allowed_at.isoformat() if d.next_allowed_at and not d.allowed else None)
    return d


def check_attempt(store: Store | Conn, *, debtor_id: str, account_id: str | None, campaign: str,
                  rules: Rules | Profile, now: datetime) -> Decision:
    """What `take_attempt` would decide now, writing nothing (a preview's verdict on the collector's screen;
    the dial itself still goes through `take_attempt`)."""
    t = _ts(now)
    profile = campaign_profile(store, rules, campaign)
    history = load_history(store, debtor_id, t, lookback_seconds=profile.gate.lookback_seconds)
    return _pick_phone(Attempt(debtor_id, "", account_id, campaign, False, False), history, profile, now)


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


def _in_flight_block(d: Decision, now: datetime, why: str) -> Decision:
    """The debtor already has a call in flight (another worker placed it): blocked by the minimum gap."""
    nxt = datetime.fromtimestamp(now.timestamp() + IN_FLIGHT_RETRY, timezone.utc)
    reason = f"a call to this debtor is still in flight ({why})"
    checks = d.checks + (Check("gap.min", False, reason, nxt),)
    return replace(d, allowed=False, rule_id="gap.min", reason=reason, next_allowed_at=nxt, checks=checks)
