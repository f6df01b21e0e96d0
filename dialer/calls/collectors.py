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
        now = self.clock.timestamp()
        for name in self.names:
            cur = self.live.setdefault(name, CollectorLive(since=now))
            if cur.state == WRAPUP and now >= cur.since + self.wrap_up:
                for est in self.estimators():
                    est.observe_wrap(self.pace_now(now), self.wrap_up)
                self.live[name] = CollectorLive(READY, cur.since + self.wrap_up)
                cur = self.live[name]
            want = self.desired.get(name, "ready")
            pause = want != "ready" or cur.state == WRAPUP
            if self.applied.get(name) != pause:
                reason = "wrapup" if want == "ready" else want
                await self.queue_pause(name, pause, reason)
                self.applied[name] = pause

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
        self.live[event.member] = CollectorLive(WRAPUP, now, None)
        for est in self.estimators():
            est.observe_talk(self.pace_now(now), talk)
        if self.wrap_up > 0 and self.ami is not None:
            self.applied[event.member] = True
            self.spawn(self.queue_pause(event.member, True, "wrapup"))
        return True
