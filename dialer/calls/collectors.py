"""The collectors: in collector modes their states (`dialer agent …` in the store) applied to the queue as
pauses, who is talking and who is in wrap-up (from AgentConnect / AgentComplete), and what the pacers'
estimators learn from the floor; in every mode, the debtor's screen pop when a collector takes a call. Times for the pacer are seconds since the process clock's (UTC) midnight."""
from __future__ import annotations

import logging
from typing import Any, Callable, Coroutine

from common.clock import Clock
from common.log import log_event
from dialer.calls import events as ev
from dialer.calls.call import AGENT, Call, CallRecord
from dialer.pacing.estimator import Estimator
from dialer.pacing.floor import CollectorLive, PaceState
from dialer.pacing.pacers import READY, TALKING, WRAPUP
from dialer.store import Store, core
from dialer.store.agents import agent_states
from dialer.store.dispositions import disposition_for, wrapup_until
from dialer.telephony.ami import AMIController

log = logging.getLogger("dialer.calls.collectors")

QUEUE = "collectors"


class Collectors:
    """The floor of one dialer: collectors' live states, the states they asked for, and the pacers."""

    def __init__(self, store: Store, clock: Clock, names: list[str], pacing: dict[str, PaceState],
                 wrap_up: float, spawn: Callable[[Coroutine[Any, Any, None]], None]):
        self.store = store
        self.clock = clock
        self.names = names
        self.pacing = pacing
        self.wrap_up = wrap_up  # seconds after a call before a collector is offered the next
        self.spawn = spawn
        self.ami: AMIController | None = None
        self.live: dict[str, CollectorLive] = {n: CollectorLive(since=clock.timestamp()) for n in names}
        self.desired: dict[str, str] = {}
        self.applied: dict[str, bool] = {}  # collector → paused in the queue by us
        self.held: set[str] = set()  # collectors with a preview offer or call: out of the queue, not capacity
        self.wrapping: dict[str, str] = {}  # collector → the call whose wrap-up runs (its disposition ends it)

    def hold(self, name: str) -> None:
        """A preview offer is on this collector's screen: no queue call reaches them meanwhile."""
        if name in self.held:
            return
        self.held.add(name)
        self.desired[name] = "paused"
        if self.ami is not None and self.applied.get(name) is not True:
            self.applied[name] = True
            self.spawn(self.queue_pause(name, True, "preview"))

    # -- the pacer's clock ------------------------------------------------------------------------
    def day_start(self) -> float:
        return self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def pace_now(self, ts: float) -> float:
        """Snapshot clock: seconds since the process clock's (UTC) midnight."""
        return ts - self.day_start()

    def estimators(self, campaign: str | None = None) -> list[Estimator]:
        """The campaign's estimator (none if it is not paced), or every campaign's: collectors are shared."""
        if campaign is None:
            return [st.estimator for st in self.pacing.values()]
        return [self.pacing[campaign].estimator] if campaign in self.pacing else []

    # -- states -> queue pauses -------------------------------------------------------------------
    async def apply_states(self) -> None:
        """Read `dialer agent` states and pause/unpause the queue members accordingly (wrap-up too)."""
        self.desired = {n: v["state"] for n, v in agent_states(self.store).items()}
        for name in self.held:  # on a preview: the pacer does not count them, the queue does not ring them
            self.desired[name] = "paused"
        now = self.clock.timestamp()
        manual = wrapup_until(self.store)
        for name in self.names:
            cur = self.live.setdefault(name, CollectorLive(since=now))
            if cur.state == WRAPUP:
                self._end_wrapup(name, cur, now, manual.get(name, 0.0))
                cur = self.live[name]
            want = self.desired.get(name, "ready")
            pause = want != "ready" or cur.state == WRAPUP
            if self.applied.get(name) != pause:
                reason = "wrapup" if want == "ready" else "preview" if name in self.held else want
                await self.queue_pause(name, pause, reason)
                self.applied[name] = pause

    def _end_wrapup(self, name: str, cur: CollectorLive, now: float, manual_until: float) -> None:
        """Wrap-up ends on the collector's disposition or after the profile's seconds, whichever first (a
        wrap-up started by hand, `dialer agent wrapup`, runs to its end); run out without a disposition,
        the call gets `not_entered`."""
        call_id = self.wrapping.get(name)
        entered = call_id is not None and disposition_for(self.store, call_id) is not None
        end = cur.since + self.wrap_up
        if manual_until > cur.since:
            end = max(end, manual_until)
        if (entered and now >= manual_until) or now >= end:
            if call_id is not None and not entered and self.wrap_up > 0:
                record_not_entered(self.store, name, call_id, now)
            done = min(now, end)
            for est in self.estimators():
                est.observe_wrap(self.pace_now(now), done - cur.since)
            self.wrapping.pop(name, None)
            self.live[name] = CollectorLive(READY, done)
        elif manual_until > cur.since + self.wrap_up:  # the pacer sees the wrap-up run to its hand-set end
            self.live[name] = CollectorLive(WRAPUP, manual_until - self.wrap_up)

    def settling(self) -> bool:
        """A collector is still talking (their AgentComplete not seen yet: Asterisk may send it after the
        debtor's hangup has settled the call) or in a wrap-up that may end in `not_entered`."""
        return bool(self.wrapping) or any(cur.state == TALKING for cur in self.live.values())

    def start_wrapup(self, name: str, call_id: str | None, now: float) -> None:
        """A collector's call ended: wrap-up starts (the queue is paused for them by the caller)."""
        self.live[name] = CollectorLive(WRAPUP, now, None)
        if call_id:
            self.wrapping[name] = call_id

    async def queue_pause(self, name: str, paused: bool, reason: str) -> None:
        assert self.ami is not None
        try:
            await self.ami.send({"Action": "QueuePause", "Queue": QUEUE, "Interface": f"PJSIP/{name}",
                                 "Paused": "true" if paused else "false", "Reason": reason}, timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - the pacer's view stays right; Asterisk may route to them
            log_event(log, "queue.pause_error", level=logging.WARNING, agent=name, error=str(exc))
            return
        log_event(log, "queue.pause" if paused else "queue.unpause", agent=name, reason=reason)

    # -- AgentConnect / AgentComplete -------------------------------------------------------------
    def connected(self, event: ev.AgentConnect, now: float) -> bool:
        """A collector of ours took a call: talking from now. False when the member is not one of ours."""
        if event.member not in self.live:
            return False
        self.live[event.member] = CollectorLive(TALKING, now, event.uniqueid)
        return True

    def pop_screen(self, call: Call, rec: CallRecord | None, event: ev.AgentConnect, now: float) -> None:
        """The debtor's screen pops on the collector's desk: the bot's context, or (collector modes, no bot
        before) the debtor's record."""
        ctx = dict((rec.transfer if rec else None) or call.transfer or {})
        if call.mode == AGENT and not ctx:
            ctx = core.screen_pop_context(self.store, call.call_id, call.debtor_id)
        ctx["agent"] = event.member
        if rec is not None:
            rec.transfer = ctx
        core.record_call_event(self.store, call.call_id, "agent_connect", now,
                               {"agent": event.member, "holdtime": event.hold_time})
        core.push_screen_pop(self.store, event.member, call.call_id, call.debtor_id, ctx, now)
        core.update_attempt(self.store, call.call_id, agent=event.member, at=now)
        log_event(log, "agent.connect", call=call.call_id, agent=event.member)

    def completed(self, event: ev.AgentComplete, now: float) -> bool:
        """A collector's call ended: wrap-up starts (and the queue pauses them for it)."""
        if event.member not in self.live:
            return False
        cur = self.live[event.member]
        talk = event.talk_time if event.talk_time is not None else now - cur.since
        call_id = event.uniqueid if core.get_attempt(self.store, event.uniqueid) else f"in-{event.uniqueid}"
        # when the collector's talk ended (reports and the live pacing bench measure talk from here, not from the
        # call's settlement)
        core.record_call_event(self.store, call_id, "agent_complete", now, {"agent": event.member, "talk": talk})
        self.start_wrapup(event.member, call_id, now)
        for est in self.estimators():
            est.observe_talk(self.pace_now(now), talk)
        if self.wrap_up > 0 and self.ami is not None:
            self.applied[event.member] = True
            self.spawn(self.queue_pause(event.member, True, "wrapup"))
        return True


# -- a collector's disposition ---------------------------------------------------------------------
DISPUTE_HOLD_SECONDS = 30 * 86400.0  # a disputed debt is not called for 30 days (validation period)


class DispositionError(ValueError):
    """A disposition that cannot be recorded; the message says what to do."""


def enter_disposition(store: Store, agent: str, outcome: str, *, at: float, amount: str | None = None,
                      date_text: str | None = None, note: str | None = None) -> dict[str, Any]:
    """Record what collector `agent` says of the call they just had, and what it implies, in one transaction:
    the attempt's disposition; a promise (kept later by a payment import); a call-back time as the debtor's
    next allowed attempt (the gate still decides then); a cease request; a dispute hold; a wrong number."""
    from datetime import date, datetime
    from decimal import Decimal, InvalidOperation

    from common import vocab
    from dialer.gate.zones import debtor_zone
    from dialer.store import dispositions as dstore

    outcome = vocab.DISPOSITION_ALIASES.get(outcome, outcome)
    if outcome not in vocab.COLLECTOR_DISPOSITIONS:
        raise DispositionError(f"unknown outcome {outcome!r} (one of: {', '.join(vocab.COLLECTOR_DISPOSITIONS)})")
    call = dstore.last_agent_call(store, agent)
    if call is None:
        raise DispositionError(f"collector {agent!r} has had no call to dispose of")
    prior = dstore.disposition_for(store, call["id"])
    if prior is not None:
        raise DispositionError(f"call {call['id']} of {agent} already has a disposition: {prior['outcome']}"
                               f" ({'entered' if prior['source'] == 'collector' else 'wrap-up ran out'})")
    debtor = core.get_debtor(store, call["debtor_id"]) or {}
    zone = debtor_zone(call["phone"], debtor.get("timezone"))
    amt = when = None
    callback_ts = None
    if outcome == vocab.PROMISE:
        if not date_text:
            raise DispositionError("a promise needs --date YYYY-MM-DD (the day the debtor will pay by)")
        try:
            due = date.fromisoformat(date_text)
        except ValueError:
            raise DispositionError(f"--date {date_text!r} is not a date like 2026-12-15") from None
        if due < datetime.fromtimestamp(at, zone).date():
            raise DispositionError(f"--date {due} is before today (the debtor's local date)")
        when = due.isoformat()
        if amount is not None:
            try:
                value = Decimal(amount)
            except InvalidOperation:
                raise DispositionError(f"--amount {amount!r} is not a number like 250.00") from None
            if not value.is_finite() or value <= 0:
                raise DispositionError(f"--amount must be more than 0, got {amount}")
            amt = str(value)
    elif amount is not None:
        raise DispositionError(f"--amount is for a promise, not {outcome}")
    if outcome == "callback":
        if not date_text:
            raise DispositionError("a call-back needs --date YYYY-MM-DDTHH:MM (the debtor's local time unless"
                                   " an offset is given)")
        try:
            t = datetime.fromisoformat(date_text)
        except ValueError:
            raise DispositionError(f"--date {date_text!r} is not a time like 2026-12-15T14:30") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=zone)
        callback_ts = t.timestamp()
        if callback_ts <= at:
            raise DispositionError(f"--date {t.isoformat()} is not in the future")
        when = t.isoformat()
    elif outcome != vocab.PROMISE and date_text:
        raise DispositionError(f"--date is for a promise or a call-back, not {outcome}")
    with store.transaction() as conn:
        dstore.insert_disposition(conn, call_id=call["id"], agent=agent, debtor_id=call["debtor_id"],
                                  outcome=outcome, amount=amt, date=when, note=note, source="collector", at=at)
        fields: dict[str, Any] = {"disposition": outcome}
        if outcome in vocab.CONVERSATION_DISPOSITIONS:
            fields["conversation"] = True
        core.update_attempt(conn, call["id"], at=at, actor=agent, **fields)
        if outcome == vocab.PROMISE:
            core.record_promise(conn, call["id"], call["debtor_id"], call["account_id"], amt, when, at)
            core.set_next_allowed(conn, call["debtor_id"], _day_after(when))
        elif outcome == "callback":
            core.add_contact_request(conn, call["debtor_id"], "callback", {"at": when, "agent": agent}, at, "collector")
            dstore.set_next_allowed_exact(conn, call["debtor_id"], callback_ts)
        elif outcome == "cease":
            core.add_contact_request(conn, call["debtor_id"], "cease", {"agent": agent, "call_id": call["id"]}, at,
                                     "collector")
        elif outcome == "dispute":
            dstore.hold_debtor(conn, call["debtor_id"], at + DISPUTE_HOLD_SECONDS, "dispute", at, agent)
        elif outcome == "wrong_number":
            core.mark_phone(conn, call["debtor_id"], call["phone"], "wrong_number", at=at, actor=agent,
                            call_id=call["id"])
    log_event(log, "collector.disposition", agent=agent, call=call["id"], outcome=outcome)
    return {"agent": agent, "call_id": call["id"], "debtor_id": call["debtor_id"], "outcome": outcome,
            "amount": amt, "date": when, "note": note}


def _day_after(iso_day: str) -> float:
    from datetime import date

    from dialer.calls.retry import after_promise

    return after_promise(date.fromisoformat(iso_day))


def record_not_entered(store: Store, agent: str, call_id: str, at: float) -> bool:
    """The wrap-up ran out before the collector entered a disposition: `not_entered`, counted per collector."""
    from common import vocab
    from dialer.store import dispositions as dstore

    if dstore.disposition_for(store, call_id) is not None:
        return False
    att = core.get_attempt(store, call_id)
    if att is None:
        return False
    dstore.insert_disposition(store, call_id=call_id, agent=agent, debtor_id=att["debtor_id"],
                              outcome=vocab.NOT_ENTERED, amount=None, date=None, note=None, source="wrapup_timeout",
                              at=at)
    log_event(log, "collector.not_entered", agent=agent, call=call_id)
    return True


def collector_callback(store: Store, call_id: str) -> bool:
    """The collector entered a call-back for this call (its time is the debtor's next allowed attempt)."""
    d = disposition_for(store, call_id)
    return d is not None and d["outcome"] == "callback"


def keep_collector_fields(store: Store, call_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The attempt's columns to write at the call's end, without undoing what the collector entered during the
    call (the disposition, and that a conversation took place)."""
    if disposition_for(store, call_id) is None:
        return fields
    out = dict(fields)
    out.pop("disposition", None)
    if not out.get("conversation"):
        out.pop("conversation", None)
    return out
