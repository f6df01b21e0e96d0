"""Call-backs: a debtor calling the number we left. Caller ID → debtor → the same verification-first flow as
outbound (an attempt is recorded for it); an unknown caller goes to a collector, and the bot discloses nothing."""
from __future__ import annotations

import logging
from typing import Any, Callable

from agi.channel import AGIChannel
from agi.server import AGIRequest
from common.clock import Clock
from common.log import log_event
from dialer.calls.bot import Bots
from dialer.calls.call import Call
from dialer.campaign.config import Campaign
from dialer.store import Store, core
from dialer.store.calls import debtor_for_caller

log = logging.getLogger("dialer.calls.inbound")

INBOUND_PREFIX = "in-"  # the dialplan names a call-back in-<PBX uniqueid>


def e164(caller: str) -> str:
    """Caller ID as the phones table writes numbers (+ and digits)."""
    caller = caller.strip()
    return caller if caller.startswith("+") else ("+" + caller if caller.isdigit() else caller)


class Inbound:
    """The AGI route `inbound`; `settle(call)` is called when the bot's part is over."""

    def __init__(self, store: Store, clock: Clock, campaigns: dict[str, Campaign], calls: dict[str, Call],
                 bots: Bots, settle: Callable[[Call], None]):
        self.store = store
        self.clock = clock
        self.campaigns = campaigns
        self.calls = calls
        self.bots = bots
        self.settle = settle
        self.server_id: str | None = None  # this server's PBX took the call: it settles it
        self.notice: dict[str, str] = {}  # campaign → rendered recording notice (the hopper's, filled at start)

    async def __call__(self, req: AGIRequest, ch: AGIChannel) -> None:
        number = e164(ch.env.get("agi_callerid") or "")
        row = debtor_for_caller(self.store, number)
        now = self.clock.timestamp()
        if row is None or row["campaign"] not in self.campaigns:
            log_event(log, "inbound.unknown_caller", call=req.call_id, callerid=number)
            await ch.set_variable("DIALER_NEXT", "queue")  # a person answers; nothing is disclosed by the bot
            return
        debtor: dict[str, Any] = core.get_debtor(self.store, row["debtor_id"]) or {}
        account = (debtor.get("accounts") or [{}])[0].get("account_id")
        with self.store.transaction() as conn:
            if core.get_attempt(conn, req.call_id) is None:
                core.insert_attempt(conn, call_id=req.call_id, debtor_id=row["debtor_id"], account_id=account,
                                    campaign=row["campaign"], phone=number, placed_at=now, inbound=True,
                                    server_id=self.server_id)
        core.update_attempt(self.store, req.call_id, state="answered", answered_at=now, at=now)
        call = Call(req.call_id, row["debtor_id"], row["campaign"], number, debtor.get("segment"), placed_at=now,
                    inbound=True)
        self.calls[req.call_id] = call
        log_event(log, "inbound.debtor", call=req.call_id, debtor_id=row["debtor_id"], phone=number)
        try:
            notice = self.notice.get(row["campaign"])
            if notice:  # the campaign's profile requires it: told before the bot says anything (docs/RECORDINGS.md)
                await ch.stream_file(notice, "")
                core.record_call_event(self.store, req.call_id, "recording_notice", self.clock.timestamp(),
                                       {"complete": True, "via": "agi"})
            attempt = core.get_attempt(self.store, req.call_id)
            await self.bots.flow_for(self.campaigns, attempt, debtor.get("segment"))(req, ch)
        finally:
            self.settle(call)
