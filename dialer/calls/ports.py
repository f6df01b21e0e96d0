"""The store behind each call: what the call flow may know (lookup) and where its results go."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import Any

from agi.ports import CallContext
from agi.script.engine import VERIFY_FAILURE
from common import vocab
from common.clock import Clock
from common.log import log_event
from dialer.calls.call import CallRecord
from dialer.campaign.config import Campaign
from dialer.campaign.dpd import days_past_due_on
from dialer.gate import zones
from dialer.store import Store, core

log = logging.getLogger("dialer.calls")

ENDED_STATES = ("ended", "unknown")  # attempts.state of a settled call
VERIFIED = "verified"  # record_outcome kind: the callee passed verification (a fact, not a disposition)


class StorePorts:
    """Implements the call ports of agi/ (DTMF flow and script engine) on the store."""

    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock
        self.calls: dict[str, CallRecord] = {}
        self._campaigns: dict[str, Campaign] = {}

    def campaign(self, name: str) -> Campaign:
        if name not in self._campaigns:
            camp = core.get_campaign(self.store, name)
            if camp is None:
                raise KeyError(f"unknown campaign {name!r}")
            self._campaigns[name] = camp
        return self._campaigns[name]

    def record(self, call_id: str) -> CallRecord | None:
        if call_id not in self.calls:
            att = core.get_attempt(self.store, call_id)
            if att is None:
                return None
            self.calls[call_id] = CallRecord(call_id, att["debtor_id"], att["campaign"],
                                             started_at=self.clock.timestamp())
        return self.calls[call_id]

    def _live(self, call_id: str, what: str) -> dict[str, Any] | None:
        """The attempt, if the call is still live; results for an ended call are refused (a late or forged
        session must not add a promise or a fact to a call that is over)."""
        att = core.get_attempt(self.store, call_id)
        if att is None:
            return None
        if att.get("state") in ENDED_STATES:
            log_event(log, "call.result_refused", level=logging.WARNING, call=call_id, what=what,
                      state=att.get("state"))
            return None
        return att

    # -- lookups ----------------------------------------------------------------------------
    async def lookup(self, call_id: str) -> CallContext | None:
        att = self._live(call_id, "lookup")
        if att is None:
            return None
        self.record(call_id)
        d = core.get_debtor(self.store, att["debtor_id"])
        if d is None:
            return None
        camp = self.campaign(att["campaign"])
        acct = next((a for a in d["accounts"] if a["account_id"] == att["account_id"]), None) or d["accounts"][0]
        return CallContext(
            call_id=call_id, debtor_id=d["debtor_id"], name=d["name"], birth_year=d.get("birth_year"),
            institution=camp.institution, amount_owed=str(acct["amount_owed"]), currency=acct["currency"],
            days_past_due=days_past_due_on(acct.get("due_date"), acct["days_past_due"],
                                           zones.local_date(self.clock.timestamp(), att["phone"], d.get("timezone"))),
            locale=camp.locale, phone=att["phone"],
            account_id=acct["account_id"], callback_number=camp.callback_number,
            extra={"due_date": acct.get("due_date"), "id_last4": d.get("id_last4"), "lang": d.get("lang"),
                   "segment": d.get("segment"),
                   "verify_failures_today": self.verify_failures_today(d["debtor_id"], att["phone"])},
        )

    def verify_failures_today(self, debtor_id: str, phone: str) -> int:
        """Wrong verification answers the debtor's number(s) gave since the debtor's local midnight."""
        now = self.clock.timestamp()
        local = self.local_time(debtor_id, phone, now)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return core.count_debtor_events(self.store, debtor_id, VERIFY_FAILURE, since=midnight.timestamp())

    # -- results (the CallPorts protocol of agi/ports.py) --------------------------------
    async def record_outcome(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        """One outcome of the call, written when it happens (a crash must not erase it): the outcome event,
        and at once on the attempt the facts the gate reads (verified: a conversation about the debt;
        a machine). Kind `verified` is that fact alone, not a disposition."""
        if self._live(call_id, kind) is None:
            return
        rec = self.record(call_id)
        if rec is None:
            return
        now = self.clock.timestamp()
        data = dict(data or {})
        if kind == VERIFY_FAILURE:  # a fact counted by the daily lock, not a disposition
            core.record_call_event(self.store, call_id, VERIFY_FAILURE, now, data)
            log_event(log, "call.verify_failure", call=call_id, debtor_id=rec.debtor_id)
            return
        if kind == VERIFIED:
            data["verified"] = True
        else:
            rec.kinds.append(kind)
        rec.data.update(data)
        if data.get("verified"):
            if not rec.verified:
                with self.store.transaction():
                    core.record_call_event(self.store, call_id, "verified", now, {"verified": True})
                    core.update_attempt(self.store, call_id, conversation=True, at=now)
            rec.verified = True
        if kind == vocab.MACHINE:
            core.update_attempt(self.store, call_id, machine=True, at=now)
        if kind != VERIFIED:
            core.record_call_event(self.store, call_id, "outcome", now, {"kind": kind, **data})
        if kind == "promise":
            att = core.get_attempt(self.store, call_id)
            due = data.get("due_date") or data.get("date") or data.get("due")
            if due in (None, "today"):  # the debtor's today
                due = (self.local_date(att["debtor_id"], att["phone"], now) if att
                       else datetime.fromtimestamp(now, timezone.utc).date()).isoformat()
            core.record_promise(self.store, call_id, rec.debtor_id, att.get("account_id") if att else None,
                                data.get("amount"), str(due), now)
        log_event(log, "call.outcome", call=call_id, debtor_id=rec.debtor_id, kind=kind)

    def local_time(self, debtor_id: str, phone: str, ts: float) -> datetime:
        """`ts` in the debtor's zone (gate/zones.py: the record's, else the number's first, else UTC)."""
        return zones.local_time(ts, phone, (core.get_debtor(self.store, debtor_id) or {}).get("timezone"))

    def local_date(self, debtor_id: str, phone: str, ts: float) -> date:
        """The debtor's calendar date at `ts`: what "today" means to them."""
        return self.local_time(debtor_id, phone, ts).date()

    async def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float, end: float,
                                     meta: dict[str, Any] | None = None) -> None:
        if self._live(call_id, "turn") is None:
            return
        rec = self.record(call_id)
        if rec is not None:
            turn = {"speaker": speaker, "text": text, "start": round(start, 3), "end": round(end, 3)}
            if meta:
                turn["asr"] = dict(meta)  # the recognizer's hearing (backend, confidence, timing); QA reads text
            rec.turns.append(turn)
            core.record_call_event(self.store, call_id, "turn", self.clock.timestamp(), turn)  # QA after a crash

    async def transfer_context(self, call_id: str, context: dict[str, Any]) -> None:
        if self._live(call_id, "transfer") is None:
            return
        rec = self.record(call_id)
        if rec is not None:
            rec.transfer = dict(context)
            now = self.clock.timestamp()
            with self.store.transaction():
                core.record_call_event(self.store, call_id, "transfer", now, dict(context))
                for intent in context.get("intents") or []:
                    core.record_call_event(self.store, call_id, "intent", now, {"intent": intent})

    def restore(self, call_id: str) -> CallRecord | None:
        """After a crash: the bot's record of a call as the events written while it ran tell it (outcomes in
        order, verification, transcript, transfer and the collector who took it)."""
        att = core.get_attempt(self.store, call_id)
        if att is None:
            return None
        rec = CallRecord(call_id, att["debtor_id"], att["campaign"], started_at=att["placed_at"])
        for e in core.call_events(self.store, call_id):
            kind, data = e["kind"], e["data"]
            if kind == "outcome":
                data = dict(data)
                rec.kinds.append(data.pop("kind", None) or "unknown")
                rec.data.update(data)
            elif kind == "verified":
                rec.verified = True
                rec.data["verified"] = True
            elif kind == "turn":
                rec.turns.append(data)
            elif kind == "transfer":
                rec.transfer = dict(data)
            elif kind == "agent_connect" and rec.transfer is not None:
                rec.transfer["agent"] = data.get("agent")
        return rec

    async def mark_phone(self, debtor_id: str, phone: str, status: str) -> None:
        core.mark_phone(self.store, debtor_id, phone, status, at=self.clock.timestamp())

    async def add_cease(self, debtor_id: str) -> None:
        from dialer.store.gate import add_cease

        add_cease(self.store, debtor_id, source="call", at=self.clock.timestamp())
