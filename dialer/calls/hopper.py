"""The hopper: due debtors → ranked → the gate → Originate. Bot campaigns fill their free lines; collector-mode
campaigns ask their pacer about once a second how many calls to place (never fewer than one per ready
collector with no call coming).

With a server id (`dialer run --server-id`, several servers on one PostgreSQL: docs/STORE.md "Several
servers") the hopper leases the debtors it is about to dial (dialer/store/servers.py: `FOR UPDATE SKIP
LOCKED`, a lease that expires), heartbeats, and marks `unknown` the calls a server left open once it has
been silent for `takeover_after` seconds. Without one it reads the due debtors directly (one server)."""
from __future__ import annotations

import logging
import os
import socket
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
from dialer.pacing.pacers import READY, TALKING, WRAPUP, PacingSnapshot, window_budget
from dialer.store import Store, core
from dialer.store import servers as servers_store
from dialer.store.agents import abandon_counts
from dialer.telephony.ami import AMIController

log = logging.getLogger("dialer.calls.hopper")

COLLECTOR_MODES = ("progressive", "predictive")  # answered people go straight to the collectors' queue
LEASE_SECONDS = 60.0      # a claimed debtor is this server's to dial until then (renewed by the next claim)
HEARTBEAT_EVERY = 2.0     # seconds between two heartbeats of a server
DEAD_AFTER = 15.0         # a server not heard from for this long is shown as silent (`dialer status`)
TAKEOVER_AFTER = 600.0    # ... and after this long its calls still open are marked unknown by another server


class ServerIdInUse(RuntimeError):
    """Another live dialer server already runs under this server id."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        self.escalation: Any = None  # calls/escalation.py: a debtor is dialled only when their stage is a call
        self.server_id: str | None = None  # several servers on one store: lease, heartbeat, take over
        self.lease_seconds = LEASE_SECONDS
        self.heartbeat_every = HEARTBEAT_EVERY
        self.dead_after = DEAD_AFTER
        self.takeover_after = TAKEOVER_AFTER
        self._beat_at = float("-inf")
        self._registered = False

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

    # -- several servers ------------------------------------------------------------------------------
    def register(self) -> None:
        """The server says it is up. Refused (ServerIdInUse) while another live process runs under the same
        id: a fresh heartbeat from another host, or from a live process of this host."""
        if self.server_id is None:
            return
        now = self.clock.timestamp()
        host, pid = socket.gethostname(), os.getpid()
        row = servers_store.server(self.store, self.server_id)
        if row is not None and row["status"] == "running" and row["pid"] != pid \
                and 0 <= now - row["heartbeat_at"] < self.dead_after \
                and (row["host"] != host or pid_alive(int(row["pid"]))):
            raise ServerIdInUse(f"server id {self.server_id!r} is in use by pid {row['pid']} on {row['host']} "
                                f"(heartbeat {now - row['heartbeat_at']:.0f} s ago): give each server its own "
                                "--server-id")
        line_limit = sum(c.line_limit for c in self.campaigns.values())
        servers_store.register(self.store, self.server_id, host=host, pid=pid, now=now, line_limit=line_limit)
        self._registered = True
        log_event(log, "server.up", server=self.server_id, host=host, pid=pid, lines=line_limit)

    def unregister(self) -> None:
        if self.server_id is not None and self._registered:
            self._registered = False
            servers_store.stopped(self.store, self.server_id, self.clock.timestamp())
            log_event(log, "server.stopped", server=self.server_id)

    def presence(self, force: bool = False) -> int:
        """Every `heartbeat_every` seconds: the heartbeat (lines in use), and the calls of servers silent for
        `takeover_after` seconds marked `unknown` (they count as attempts; the debtor is not called sooner).
        Returns how many calls were marked."""
        if self.server_id is None:
            return 0
        now = self.clock.timestamp()
        if not force and now - self._beat_at < self.heartbeat_every:
            return 0
        self._beat_at = now
        servers_store.heartbeat(self.store, self.server_id, now, len(self.calls))
        marked = 0
        heard_before = now - self.takeover_after
        for row in servers_store.silent_servers_open(self.store, self.server_id, heard_before):
            if servers_store.mark_orphaned(self.store, row["id"], by=self.server_id, now=now,
                                           heard_before=heard_before):
                marked += 1
                log_event(log, "call.orphaned", level=logging.WARNING, call=row["id"], debtor_id=row["debtor_id"],
                          server=self.server_id, of=row["server_id"])
        return marked

    def due(self, camp: Campaign, now: float, limit: int) -> list[Any]:
        """Debtors to try now: leased to this server (several servers), or read directly (one)."""
        if self.server_id is None:
            return core.due_debtors(self.store, camp.name, now, limit=limit)
        return servers_store.claim(self.store, self.server_id, camp.name, now, limit, self.lease_seconds)

    async def tick(self) -> int:
        """Fill free lines of every campaign from its due debtors, through the gate. Returns calls placed."""
        self.presence()
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
        due = self.due(camp, now.timestamp(), n * 4 if self.server_id is None else n * 2)
        leased = [c.debtor_id for c in due] if self.server_id is not None else []
        due = self._callable(camp, due, now)
        try:
            for cand in self.rank(due):
                if placed >= n:
                    break
                if await self.place(camp, cand, now):
                    placed += 1
        finally:  # placed: the open attempt keeps every server off the debtor now; the rest go back to the pool
            if leased:
                servers_store.release(self.store, self.server_id, leased)
        return placed

    def _due(self, camp: Campaign, now: datetime, limit: int) -> list[Any]:
        return self._callable(camp, core.due_debtors(self.store, camp.name, now.timestamp(), limit=limit), now)

    def _callable(self, camp: Campaign, due: list[Any], now: datetime) -> list[Any]:
        """The due debtors this hopper may dial: not preview (offered, calls/preview.py), in a call stage."""
        if camp.has_preview:  # a preview debtor is called only when a collector accepts them (calls/preview.py)
            due = [c for c in due if camp.mode_of(c.segment) != "preview"]
        if self.escalation is not None:  # a task stage (SMS, letter …) or no stage: not dialled
            due = [c for c in due if self.escalation.callable(camp, c, now)]
        return due

    def idle(self) -> bool:
        if self.calls:
            return False
        now = self.clock.now()
        return all(not self._due(camp, now, 4) for camp in self.campaigns.values())

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
        budget = window_budget(limit=ab.limit, placed=placed, answered=answered, abandoned=abandoned,
                               waiting=len(waiting), patience=ab.connect_within_seconds)
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
        want = st.pacer.decide(snap)  # the simulator's pacer, as is (the predictive one keeps a progressive floor)
        floor = PROGRESSIVE_FLOOR.decide(snap)  # for the decision's record
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
                                campaign=camp.name, phone=None, rules=self.rules, now=now, server_id=self.server_id)
        if not decision.allowed:
            self.publish(oe.GateBlocked(camp.name, decision.rule_id or "unknown", decision.reason, now.timestamp()))
            return False
        profile = self.profile(camp)
        ring = max(profile.abandon.min_ring_seconds, camp.ring_seconds)
        seg = next((s for s in camp.segments if s.name == cand.segment), None)
        mode = AGENT if camp.name in self.pacing and camp.dial_mode_for(seg) in COLLECTOR_MODES else BOT
        if self.escalation is not None:  # the stage says bot or collectors
            mode = self.escalation.mode_for(cand.debtor_id, mode) if camp.name in self.pacing else BOT
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
