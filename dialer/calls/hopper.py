"""The hopper: due debtors → ranked → the gate → Originate. Bot campaigns fill their free lines; collector-mode
campaigns ask their pacer about once a second how many calls to place (never fewer than one per ready
collector with no call coming)."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any, Callable

from common.clock import Clock
from common.log import log_event
from dialer.calls.call import AGENT, BOT, Call
from dialer.calls.collectors import Collectors
from dialer.campaign.config import Campaign
from dialer.gate.account import take_attempt
from dialer.gate.rules import Rules, caller_id_for
from dialer.observe import events as oe
from dialer.pacing.floor import (
    PROGRESSIVE_FLOOR,
    CollectorLive,
    call_views,
    collector_views,
    window_start,
)
from dialer.pacing.pacers import READY, TALKING, WRAPUP, AbandonBudget, PacingSnapshot
from dialer.store import Store, core
from dialer.store.agents import abandon_counts
from dialer.telephony.ami import AMIController

log = logging.getLogger("dialer.calls.hopper")

COLLECTOR_MODES = ("progressive", "predictive")  # answered people go straight to the collectors' queue


class Hopper:
    """Places calls for the dialer's campaigns; `follow(call)` is told of each call placed."""

    def __init__(self, store: Store, rules: Rules, campaigns: dict[str, Campaign], clock: Clock,
                 calls: dict[str, Call], collectors: Collectors, model: Any, follow: Callable[[Call], None],
                 publish: Callable[[Any], None]):
        self.store = store
        self.rules = rules
        self.campaigns = campaigns
        self.clock = clock
        self.calls = calls
        self.collectors = collectors
        self.pacing = collectors.pacing
        self.model = model
        self.follow = follow
        self.publish = publish  # the daemon's bus: placed, blocked (and the rule), pacing decisions
        self.ami: AMIController | None = None
        self.info: dict[str, str] = {}  # campaign → information message (path without extension)
        self.notice: dict[str, str] = {}  # campaign → its profile's recording notice (path without extension)
        self.pace_every = 1.0  # seconds between pacing decisions per collector-mode campaign
        self.preview: Any = None  # calls/preview.py: preview segments' debtors are offered, never dialled here
        # bot capacity (dialer/pacing/bots.py): bot calls up -> new bot calls the recognition pool can take
        self.bot_room: Callable[[int], int | None] | None = None

    def profile(self, camp: Campaign):
        return self.rules.profile_for(camp.profile, camp.name)

    def inflight(self, campaign: str) -> int:
        return sum(1 for c in self.calls.values() if c.campaign == campaign)

    def rank(self, candidates: list[Any]) -> list[Any]:
        """Best first by expected recovery (strategy/rank.py); store order if ranking fails."""
        from dialer.store.strategy import histories
        from dialer.strategy.rank import rank_candidates

        by_id = {c.debtor_id: c for c in candidates}
        try:
            ranked = rank_candidates([c.as_dict() for c in candidates], self.model, self.clock.now(),
                                     histories(self.store, list(by_id)))
            return [by_id[r.candidate["debtor_id"]] for r in ranked if r.candidate["debtor_id"] in by_id]
        except Exception:  # noqa: BLE001 - ranking is an optimisation; never stop dialing over it
            log.exception("ranking failed; dialing in store order")
            return candidates

    async def tick(self) -> int:
        """Fill free lines of every campaign from its due debtors, through the gate. Returns calls placed."""
        if self.ami is None or not self.ami.connected.is_set():
            return 0
        placed = 0
        if self.pacing or (self.preview is not None and self.preview.active):
            await self.collectors.apply_states()
        if self.preview is not None:
            await self.preview.tick()
        room = self.bot_room(sum(1 for c in self.calls.values() if c.mode == BOT)) if self.bot_room else None
        for camp in self.campaigns.values():
            if camp.name in self.pacing:
                placed += await self.pace(camp)
                continue
            n = camp.line_limit - self.inflight(camp.name)
            if room is not None:
                n = min(n, room)
            got = await self._fill(camp, n)
            placed += got
            if room is not None:
                room -= got
        return placed

    async def _fill(self, camp: Campaign, n: int) -> int:
        """Place up to n calls from the campaign's due debtors, best first; the gate may refuse some."""
        if n <= 0:
            return 0
        placed = 0
        now = self.clock.now()
        due = core.due_debtors(self.store, camp.name, now.timestamp(), limit=n * 4)
        if camp.has_preview:  # a preview debtor is called only when a collector accepts them (calls/preview.py)
            due = [c for c in due if camp.mode_of(c.segment) != "preview"]
        for cand in self.rank(due):
            if placed >= n:
                break
            if await self.place(camp, cand, now):
                placed += 1
        return placed

    def idle(self) -> bool:
        if self.calls:
            return False
        now = self.clock.now().timestamp()
        return all(not core.due_debtors(self.store, c, now, limit=1) for c in self.campaigns)

    # -- collector modes ----------------------------------------------------------------------------
    def snapshot(self, camp: Campaign, estimates: Any = None) -> PacingSnapshot:
        """What the daemon observes now for one collector-mode campaign, in the pacer's terms."""
        now_dt = self.clock.now()
        now = now_dt.timestamp()
        origin = self.collectors.day_start()
        ab = self.profile(camp).abandon
        calls = [(c.placed_at - origin, None if c.answered_t is None else c.answered_t - origin,
                  None if c.human_t is None else c.human_t - origin, c.done_waiting)
                 for c in self.calls.values() if c.campaign == camp.name and c.mode == AGENT]
        ringing, screening, waiting = call_views(calls)
        floor = self.collectors
        cols = collector_views(floor.names, {k: CollectorLive(v.state, v.since - origin, v.call)
                                             for k, v in floor.live.items()},
                               floor.desired, now - origin, ab.wrap_up_seconds)
        placed, answered, abandoned = abandon_counts(self.store, camp.name, window_start(now_dt, ab.window))
        # a person already waiting for a collector may still be abandoned: charge them to the budget now,
        # so calls in progress cannot push the window over the limit between two decisions
        budget = AbandonBudget(limit=ab.limit, answered=answered, abandoned=abandoned + len(waiting), placed=placed,
                               patience=ab.connect_within_seconds)
        return PacingSnapshot(now=now - origin, ringing=ringing, screening=screening, waiting=waiting,
                              collectors=cols, budget=budget, line_limit=camp.line_limit, estimates=estimates)

    async def pace(self, camp: Campaign) -> int:
        """About once a second: ask the campaign's pacer how many calls to place, and place them (gate first)."""
        st = self.pacing[camp.name]
        ts = self.clock.timestamp()
        if ts - st.last_at < self.pace_every:
            return 0
        st.last_at = ts
        t0 = time.perf_counter()
        est = st.estimator.estimates(self.collectors.pace_now(ts)) if st.pacer.uses_estimates else None
        snap = self.snapshot(camp, est)
        want = st.pacer.decide(snap)
        floor = PROGRESSIVE_FLOOR.decide(snap)  # never fewer than one line per ready collector with no call coming:
        want = max(want, floor)            # those calls cannot be abandoned (on a small floor the model can be shyer)
        seconds = time.perf_counter() - t0
        placed = await self._fill(camp, max(0, min(want, camp.line_limit - self.inflight(camp.name))))
        ready = snap.count(READY, include_leaving=False)
        self.publish(oe.PaceDecision(camp.name, seconds, ts, ready=ready, ringing=len(snap.ringing),
                                     screening=len(snap.screening), waiting=len(snap.waiting),
                                     talking=snap.count(TALKING), wrapup=snap.count(WRAPUP), want=want, floor=floor,
                                     placed=placed, in_flight=self.inflight(camp.name),
                                     budget_left=round(snap.budget.left, 2),
                                     mode=getattr(st.pacer, "last_mode", st.pacer.name)))
        if placed:
            log_event(log, "pace", campaign=camp.name, ready=ready, ringing=len(snap.ringing),
                      waiting=len(snap.waiting), want=want, placed=placed)
        return placed

    # -- one call -----------------------------------------------------------------------------------
    async def place(self, camp: Campaign, cand: Any, now: datetime) -> bool:
        """Through the gate (which records the attempt), then Originate. False when the gate says no."""
        assert self.ami is not None
        call_id = f"{camp.name[:12]}-{uuid.uuid4().hex[:12]}"
        decision = take_attempt(self.store, call_id=call_id, debtor_id=cand.debtor_id, account_id=cand.account_id,
                                campaign=camp.name, phone=None, rules=self.rules, now=now)
        if not decision.allowed:
            self.publish(oe.GateBlocked(camp.name, decision.rule_id or "unknown", decision.reason, now.timestamp()))
            return False
        profile = self.profile(camp)
        ring = max(profile.abandon.min_ring_seconds, camp.ring_seconds)
        seg = next((s for s in camp.segments if s.name == cand.segment), None)
        mode = AGENT if camp.name in self.pacing and camp.dial_mode_for(seg) in COLLECTOR_MODES else BOT
        call = Call(call_id, cand.debtor_id, camp.name, decision.phone, cand.segment, placed_at=now.timestamp(),
                    mode=mode)
        self.calls[call_id] = call
        variables = {"DIALER_AMD": "1" if camp.amd else "0"}
        if mode == BOT and camp.name in self.notice:  # played before the bot's greeting (dialplans/pbx.conf)
            variables["DIALER_NOTICE"] = self.notice[camp.name]
        where = {"context": "dialer-outbound", "exten": "bot"}
        if mode == AGENT:
            where = {"context": "dialer-agent", "exten": "agent"}
            variables.update(DIALER_PATIENCE=str(max(1, int(profile.abandon.connect_within_seconds))),
                             DIALER_MACHINE=camp.amd_policy,
                             DIALER_INFO=self.info.get(camp.name, "silence/1"))
        try:
            tracked = await self.ami.originate(call_id, decision.phone, ring_timeout=ring,
                                               caller_id=caller_id_for(profile, camp.caller_id),
                                               variables=variables, **where)
        except Exception as exc:  # noqa: BLE001
            self.calls.pop(call_id, None)
            core.update_attempt(self.store, call_id, state="ended", outcome="failed", ended_at=now.timestamp(),
                                at=now.timestamp())
            log_event(log, "originate.error", level=logging.ERROR, call=call_id, error=str(exc))
            self.publish(oe.OriginateFailed(call_id, camp.name, str(exc), now.timestamp()))
            return False
        call.tracked = tracked
        core.update_attempt(self.store, call_id, state="ringing", at=now.timestamp())
        self.publish(oe.CallPlaced(call_id, camp.name, mode, now.timestamp()))
        self.follow(call)
        return True
