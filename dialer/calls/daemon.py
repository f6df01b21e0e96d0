"""The dialer daemon: hopper → compliance gate → pacer → AMI originate, and the FastAGI server, in one
asyncio process. A crash never loses or repeats an attempt: each attempt is written in the gate's
transaction before the call is placed, and open attempts are settled from Asterisk's CDR on start.

This module wires the steps together and writes what the pure ones decide: `events.parse` turns AMI into
typed call events, `Call.apply` keeps each call's facts, `disposition.settle` says how it ended and
`retry.next_allowed` when the debtor may be called next."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Coroutine

from agi.channel import AGIChannel
from agi.server import AGIRequest, FastAGIServer
from common import vocab
from common.clock import Clock
from common.log import log_event
from dialer.calls import events as ev
from dialer.calls.bot import Bots
from dialer.calls.call import AGENT, Call
from dialer.calls.collectors import Collectors
from dialer.calls.disposition import Disposition, settle
from dialer.calls.hopper import COLLECTOR_MODES, Hopper
from dialer.calls.inbound import INBOUND_PREFIX, Inbound
from dialer.calls.ports import StorePorts
from dialer.calls.recovery import reconcile
from dialer.calls.retry import next_allowed
from dialer.campaign.config import Campaign
from dialer.gate.rules import Rules
from dialer.pacing.estimator import Estimator
from dialer.pacing.floor import PaceState
from dialer.pacing.pacers import PredictivePacer, ProgressivePacer
from dialer.store import Store, core
from dialer.telephony.ami import AMIController
from dialer.telephony.pbx import PbxConnection

log = logging.getLogger("dialer.calls.daemon")


@dataclass
class DaemonStats:
    placed: int = 0
    blocked: int = 0
    ended: int = 0
    reconciled: int = 0
    abandoned: int = 0
    connected: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Dialer:
    """One dialer process next to one PBX."""

    def __init__(self, store: Store, pbx: PbxConnection, rules: Rules, campaigns: list[Campaign], *,
                 clock: Clock | None = None, tts: Any = None, poll: float = 0.25, agi_port: int | None = None,
                 cdr_path: Path | None = None, collector_modes: bool = True):
        self.store = store
        self.pbx = pbx
        self.rules = rules
        self.campaigns = {c.name: c for c in campaigns}
        self.clock = clock or Clock()
        self.poll = poll
        self.agi_port = agi_port if agi_port is not None else pbx.agi_port
        self.cdr_path = cdr_path or Path(pbx.cdr_path)
        self.ports = StorePorts(store, self.clock)
        self.bots = Bots(self.ports, self.clock, tts)
        self.calls: dict[str, Call] = {}
        self.stats = DaemonStats()
        self.ami: AMIController | None = None
        self.agi: FastAGIServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._qa_rules: Any = None
        self.pacing: dict[str, PaceState] = {}
        for c in campaigns if collector_modes else ():
            if c.dial_mode in COLLECTOR_MODES:
                pacer = PredictivePacer(c.pacing) if c.dial_mode == "predictive" else ProgressivePacer()
                self.pacing[c.name] = PaceState(pacer, Estimator(patience=self._profile(c).abandon.connect_within_seconds))
        wrap_up = max((self._profile(self.campaigns[n]).abandon.wrap_up_seconds for n in self.pacing), default=0.0)
        self.collectors = Collectors(store, self.clock, list(pbx.members), self.pacing, wrap_up, self._spawn)
        self.hopper = Hopper(store, rules, self.campaigns, self.clock, self.calls, self.collectors,
                             _load_propensity_model(), self._follow, self.stats)
        self.inbound = Inbound(store, self.clock, self.campaigns, self.calls, self.bots, self._settle)

    @property
    def info(self) -> dict[str, str]:
        """Campaign → its information message (path without extension), rendered at start."""
        return self.hopper.info

    def _profile(self, camp: Campaign):
        return self.rules.profile_for(camp.profile, camp.name)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- start / run / stop ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.agi = FastAGIServer({"call": self._agi_call, "inbound": self.inbound},
                                 token=self.pbx.agi_token, port=self.agi_port)
        await self.agi.start()
        self.ami = AMIController(self.pbx.ami_host, self.pbx.ami_port, self.pbx.ami_user, self.pbx.ami_secret)
        self.ami.dial_plan = self.pbx.dial_plan() if hasattr(self.pbx, "dial_plan") else None  # a real trunk's
        self.ami.listeners.append(self._on_ami_event)
        self.hopper.ami = self.collectors.ami = self.ami
        await self.ami.connect()
        await self.reconcile()
        self.hopper.info.update(await asyncio.to_thread(self.bots.prerender, list(self.campaigns.values()),
                                                        set(self.pacing)))
        if self.pacing:
            await self.collectors.apply_states()

    async def reconcile(self, wait_for_live: float = 90.0) -> int:
        """Settle the attempts a previous process left open (see calls/recovery.py)."""
        assert self.ami is not None

        def schedule(row: dict[str, Any], outcome: str) -> None:
            self._schedule(row["debtor_id"], row["campaign"], row["id"], Disposition(outcome))
            self.stats.reconciled += 1

        return await reconcile(self.store, self.ami, self.cdr_path, self.clock, schedule, wait_for_live)

    async def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> DaemonStats:
        t0 = time.monotonic()
        while True:
            await self.hopper.tick()
            if until_idle and self.hopper.idle():
                break
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                log_event(log, "daemon.time_limit", level=logging.WARNING, active=len(self.calls))
                break
            await asyncio.sleep(self.poll)
        return self.stats

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ami is not None:
            await self.ami.close()
        if self.agi is not None:
            await self.agi.stop()

    # -- AGI: an outbound call answered ----------------------------------------------------------------
    async def _agi_call(self, req: AGIRequest, ch: AGIChannel) -> None:
        att = core.get_attempt(self.store, req.call_id)
        if att is None:
            log_event(log, "agi.unknown_call", level=logging.WARNING, call=req.call_id)
            return
        debtor = core.get_debtor(self.store, att["debtor_id"]) or {}
        await self.bots.flow_for(self.campaigns, att, debtor.get("segment"))(req, ch)

    # -- AMI: typed call events ----------------------------------------------------------------------
    def _call_for(self, uniqueid: str) -> Call | None:
        """Our call for a channel's uniqueid (call-backs carry the PBX's uniqueid behind a prefix)."""
        return self.calls.get(uniqueid) or self.calls.get(INBOUND_PREFIX + uniqueid)

    def _on_ami_event(self, msg: dict[str, Any]) -> None:
        event = ev.parse(msg)
        if event is None:
            return
        now = self.clock.timestamp()
        if isinstance(event, ev.DialAnswered):
            call = self.calls.get(event.call_id)
            if call is not None:
                if call.answered_t is None and call.mode == AGENT:
                    for est in self.collectors.estimators(call.campaign):
                        est.observe_dial(self.collectors.pace_now(now), True, now - call.placed_at)
                call.apply(event, now)
                core.update_attempt(self.store, call.call_id, state="answered", answered_at=now, at=now)
        elif isinstance(event, ev.ChannelHangup):
            self.calls.pop(INBOUND_PREFIX + event.uniqueid, None)  # a call-back's channel is gone
        elif isinstance(event, ev.AgentConnect):
            self._agent_connect(event, now)
        elif isinstance(event, ev.AgentComplete):
            if self.pacing:
                self.collectors.completed(event, now)
        elif isinstance(event, (ev.DialerAMD, ev.DialerHuman, ev.DialerQueueResult, ev.DialerInfoPlayed)):
            call = self.calls.get(event.call_id)
            if self.pacing and call is not None and call.mode == AGENT:
                self._floor_event(call, event, now)

    def _floor_event(self, call: Call, event: ev.CallEvent, now: float) -> None:
        """A collector-mode call's dialplan step: AMD result, end of greeting, queue result, information played."""
        if isinstance(event, ev.DialerAMD):
            answered = call.answered_t if call.answered_t is not None else now
            if event.screened:
                for est in self.collectors.estimators(call.campaign):
                    est.observe_screen(self.collectors.pace_now(now), event.status != "MACHINE", now - answered)
            core.record_call_event(self.store, call.call_id, "amd", now, {"status": event.status, "cause": event.cause})
        elif isinstance(event, ev.DialerHuman):  # the abandon clock starts at the end of the greeting
            core.record_call_event(self.store, call.call_id, "greeting_end", now, {"pbx_epoch": event.at})
        elif isinstance(event, ev.DialerQueueResult) and event.status:
            core.record_call_event(self.store, call.call_id, "queue_result", now, {"status": event.status})
        elif isinstance(event, ev.DialerInfoPlayed):
            core.record_call_event(self.store, call.call_id, "info_played", now, {})
        call.apply(event, now)

    def _agent_connect(self, event: ev.AgentConnect, now: float) -> None:
        """A collector took a call: talking (collector modes), and the debtor's screen pops on their desk."""
        if self.pacing and self.collectors.connected(event, now):
            call = self.calls.get(event.uniqueid)
            if call is not None and call.mode == AGENT:
                call.apply(event, now)
                self.stats.connected += 1
                for est in self.collectors.estimators(call.campaign):
                    est.observe_connect(self.collectors.pace_now(now), event.ring_time)
        call = self._call_for(event.uniqueid)
        if call is not None:
            self.collectors.pop_screen(call, self.ports.calls.get(call.call_id), event, now)

    # -- the end of a call: settle, write, schedule ----------------------------------------------------
    def _follow(self, call: Call) -> None:
        async def follow() -> None:
            assert call.tracked is not None
            await call.tracked.done
            await asyncio.sleep(0.05)  # let the AGI session write its last outcome
            self._settle(call)

        self._spawn(follow())

    def _settle(self, call: Call) -> None:
        """Write how the call ended (disposition.settle), score the bot's transcript, schedule the debtor."""
        call.record = self.ports.calls.pop(call.call_id, None)
        now = self.clock.timestamp()
        camp = self.campaigns.get(call.campaign)
        patience = self._profile(camp).abandon.connect_within_seconds if camp else 2.0
        tracked = call.tracked
        if call.mode == AGENT and tracked is not None and not tracked.answered and tracked.outcome in vocab.NOT_ANSWERED:
            for est in self.collectors.estimators(call.campaign):
                est.observe_dial(self.collectors.pace_now(now), False, now - call.placed_at)
        disp = settle(call, now=now, patience=patience, wall_now=time.time())
        core.update_attempt(self.store, call.call_id, at=now, **disp.fields)
        if disp.abandoned:
            self.stats.abandoned += 1
            core.record_call_event(self.store, call.call_id, "abandoned", now,
                                   {"greeting_end": call.human_t, "queue_status": call.queue_status,
                                    "info_played": call.info_played, "connected": call.connected_t})
        if disp.outcome == vocab.UNALLOCATED:
            core.mark_phone(self.store, call.debtor_id, call.phone, vocab.UNALLOCATED, at=now)
        if call.mode != AGENT and call.record and call.record.turns:
            self._score(call)
        if call.inbound:
            if disp.kind == vocab.PROMISE:  # otherwise a call-back does not move the debtor's next call
                self._schedule(call.debtor_id, call.campaign, call.call_id, disp)
            if call.record and call.record.transfer is not None:
                call.transfer = call.record.transfer  # stays until the collector answers or the caller hangs up
            else:
                self.calls.pop(call.call_id, None)
            return
        self._schedule(call.debtor_id, call.campaign, call.call_id, disp)
        self.calls.pop(call.call_id, None)
        self.stats.ended += 1
        self.stats.by_outcome[disp.outcome] = self.stats.by_outcome.get(disp.outcome, 0) + 1
        log_event(log, "call.end", call=call.call_id, debtor_id=call.debtor_id, outcome=disp.outcome,
                  disposition=disp.kind, abandoned=disp.abandoned, agent=disp.fields.get("agent"),
                  cause=disp.fields.get("hangup_cause"))

    def _schedule(self, debtor_id: str, campaign: str, call_id: str, disp: Disposition) -> None:
        """When may this debtor be called next (retry.next_allowed); None: done with them."""
        camp = self.campaigns.get(campaign)
        now = self.clock.timestamp()
        promise = core.promises_for(self.store, call_id=call_id) if disp.kind == vocab.PROMISE else []
        segment = (core.get_debtor(self.store, debtor_id) or {}).get("segment")
        seg = next((s for s in camp.segments if s.name == segment), None) if camp else None
        made = len(core.attempts_for_debtor(self.store, debtor_id))
        nxt = next_allowed(disp, seg, made, date.fromisoformat(promise[0]["due_date"]) if promise else None, now=now)
        if nxt is None:
            core.set_debtor_status(self.store, debtor_id, "done", at=now)
            return
        core.set_next_allowed(self.store, debtor_id, nxt)

    def _score(self, call: Call) -> None:
        """Every bot call is scored by QA at its end: transcript saved, checked and recorded (audited)."""
        from dialer.qa.score import score_call
        from dialer.store.audit import write_head

        rec = call.record
        assert rec is not None
        camp = self.campaigns.get(call.campaign)
        started = self.ports.local_time(call.debtor_id, call.phone, call.placed_at).isoformat()  # QA: debtor's time
        transcript = {"call_id": call.call_id, "lang": (camp.locale[:2] if camp else "en"),
                      "jurisdiction": camp.profile if camp else "cn", "started_at": started, "turns": rec.turns,
                      "agent": "bot", "campaign": call.campaign}
        try:
            if self._qa_rules is None:  # the gate's reading of the rules file, not a second one
                from dialer.qa.rules import qa_rules

                self._qa_rules = qa_rules(self.rules)
            result = score_call(self.store, transcript, self._qa_rules, at=self.clock.timestamp())
            write_head(self.store)
        except Exception:  # noqa: BLE001 - QA must never stop the dialer; the call stays unscored for `qa run`
            log.exception("QA scoring failed for call %s", call.call_id)
            return
        if result.violations:
            log_event(log, "qa.alert", level=logging.WARNING, call=call.call_id, score=result.score,
                      rules=",".join(sorted({v.rule for v in result.violations})))


def _load_propensity_model() -> Any:
    """The trained propensity model under models/propensity/, or None (ranking then falls back)."""
    from dialer.strategy.rescore import load_model_or_none

    return load_model_or_none("models/propensity")
