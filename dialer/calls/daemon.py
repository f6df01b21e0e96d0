"""The dialer daemon: hopper → compliance gate → pacer → AMI originate, and the FastAGI server, in one
asyncio process. A crash never loses or repeats an attempt: each attempt is written in the gate's
transaction before the call is placed, and open attempts are settled from Asterisk's CDR on start."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agi.channel import AGIChannel
from agi.flows.dtmf_verify import DtmfVerifyFlow
from agi.server import AGIRequest, FastAGIServer
from common.clock import Clock
from common.log import log_event
from dialer.calls.ports import StorePorts
from dialer.calls.recovery import read_cdr
from dialer.campaign.config import Campaign, retry_delay
from dialer.gate.rules import Rules, caller_id_for
from dialer.pacing.estimator import Estimator
from dialer.pacing.floor import (
    PROGRESSIVE_FLOOR,
    CollectorLive,
    PaceState,
    call_views,
    collector_views,
    info_text,
    window_start,
)
from dialer.pacing.pacers import (
    READY,
    TALKING,
    WRAPUP,
    AbandonBudget,
    PacingSnapshot,
    PredictivePacer,
    ProgressivePacer,
)
from dialer.store import Store, core
from dialer.store.gate import take_attempt
from dialer.telephony.ami import AMIController, TrackedCall
from dialer.telephony.pbx import PbxConnection

log = logging.getLogger("dialer.calls.daemon")

RETRY_OUTCOMES = {"busy": "busy", "no_answer": "no_answer", "machine": "machine", "failed": "failed",
                  "unallocated": "failed", "callee_hangup": "callee_hangup", "unknown": "failed"}
DAY = 86400.0
BOT_NAMES = {"en-US": "Alex", "zh-CN": "小安"}  # the voice assistant's name, said with "an automated assistant"
COLLECTOR_MODES = ("progressive", "predictive")  # answered people go straight to the collectors' queue
QUEUE = "collectors"
@dataclass
class Active:
    call_id: str
    debtor_id: str
    campaign: str
    phone: str
    segment: str | None
    tracked: TrackedCall | None = None
    placed_at: float = 0.0
    transfer: dict[str, Any] | None = None  # the bot's context for the collector, kept until the queue connects
    mode: str = "bot"  # bot | agent (collector modes: no bot, straight to the queue)
    answered_t: float | None = None  # process-clock times seen by the daemon
    human_t: float | None = None  # end of the greeting (AMD said HUMAN): the abandon clock starts
    machine: bool = False
    connected_t: float | None = None
    agent: str | None = None
    queue_status: str | None = None  # set when the queue gave up (no collector in time)
    info_played: bool = False


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
        self._tts = tts
        self.active: dict[str, Active] = {}
        self.stats = DaemonStats()
        self.ami: AMIController | None = None
        self.agi: FastAGIServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._flows: dict[str, Any] = {}
        self._qa_rules: Any = None
        self._model = _load_propensity_model()
        self.pace_every = 1.0  # seconds between pacing decisions per collector-mode campaign
        self.pacing: dict[str, PaceState] = {}
        for c in campaigns if collector_modes else ():
            if c.dial_mode in COLLECTOR_MODES:
                patience = self._profile(c).abandon.connect_within_seconds
                pacer = PredictivePacer(c.pacing) if c.dial_mode == "predictive" else ProgressivePacer()
                self.pacing[c.name] = PaceState(pacer, Estimator(patience=patience))
        self.collectors: list[str] = list(pbx.members)
        self.live: dict[str, CollectorLive] = {n: CollectorLive(since=self.clock.timestamp()) for n in self.collectors}
        self.desired: dict[str, str] = {}
        self._applied: dict[str, bool] = {}  # collector → paused in the queue by us
        self._info: dict[str, str] = {}  # campaign → information message (path without extension)

    # -- set-up ---------------------------------------------------------------------------------
    @property
    def tts(self) -> Any:
        if self._tts is None:
            from agi.media.tts import TTS

            self._tts = TTS()  # cached by (voice, text) under voices/cache/
        return self._tts

    async def start(self) -> None:
        self.agi = FastAGIServer({"call": self._agi_call, "inbound": self._agi_inbound},
                                 token=self.pbx.agi_token, port=self.agi_port)
        await self.agi.start()
        self.ami = AMIController(self.pbx.ami_host, self.pbx.ami_port, self.pbx.ami_user, self.pbx.ami_secret)
        self.ami.listeners.append(self._on_ami_event)
        await self.ami.connect()
        await self.reconcile()
        await asyncio.to_thread(self.prerender)
        if self.pacing:
            await self._apply_agent_states()

    def prerender(self) -> int:
        """Render every campaign script's static prompts once, at load (per-call prompts render during calls)."""
        t0, n = time.monotonic(), 0
        for camp in self.campaigns.values():
            if camp.name in self.pacing:
                wav = self.tts.render(info_text(camp.locale, camp.institution, camp.callback_number), camp.locale)
                self._info[camp.name] = str(Path(wav).resolve().with_suffix(""))
                n += 1
            for seg in camp.segments:
                flow = self._flow_for_script(camp, seg.script)
                if isinstance(flow, ScriptFlow) and hasattr(self.tts, "render_static"):
                    n += len(self.tts.render_static(flow.script, {
                        "institution": camp.institution, "callback_number": camp.callback_number,
                        "collector_name": BOT_NAMES.get(camp.locale, "")}))
        if n:
            log_event(log, "prompts.prerendered", prompts=n, seconds=round(time.monotonic() - t0, 2))
        return n

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ami is not None:
            await self.ami.close()
        if self.agi is not None:
            await self.agi.stop()

    # -- crash recovery -------------------------------------------------------------------------
    async def _channel_alive(self, call_id: str) -> bool:
        assert self.ami is not None
        out = await self.ami.command("core show channels concise")
        # concise fields: channel!context!exten!prio!state!app!data!cid!acct!peeracct!ama!duration!bridge!uniqueid
        return any(line.strip().split("!")[-1] == call_id for line in out.splitlines())

    async def reconcile(self, wait_for_live: float = 90.0) -> int:
        """Settle attempts a previous process left open: outcome from the CDR, 'unknown' only when
        Asterisk has no record of the call. Calls still up in Asterisk are waited for (bounded)."""
        open_rows = core.open_attempts(self.store)
        if not open_rows:
            return 0
        deadline = time.monotonic() + wait_for_live
        for row in open_rows:
            call_id = row["id"]
            while time.monotonic() < deadline and await self._channel_alive(call_id):
                await asyncio.sleep(0.5)
            rec = None
            for _ in range(20):  # the CDR is dispatched shortly after the channel is destroyed
                rec = read_cdr(self.cdr_path).get(call_id)
                if rec is not None:
                    break
                await asyncio.sleep(0.25)
            now = self.clock.timestamp()
            if rec is None:
                core.update_attempt(self.store, call_id, state="unknown", outcome="unknown", ended_at=now,
                                    actor="reconcile", at=now)
                outcome = "unknown"
            else:
                fields: dict[str, Any] = {"state": "ended", "outcome": rec.outcome, "ended_at": now}
                if rec.outcome == "answered":
                    fields["answered_at"] = row["placed_at"]
                core.update_attempt(self.store, call_id, actor="reconcile", at=now, **fields)
                outcome = rec.outcome
            core.record_call_event(self.store, call_id, "reconciled", now,
                                   {"source": "cdr" if rec else "none", "outcome": outcome,
                                    "cdr_disposition": rec.disposition if rec else None,
                                    "billsec": rec.billsec if rec else None})
            self._schedule_after(row["debtor_id"], row["campaign"], call_id, outcome, None)
            self.stats.reconciled += 1
            log_event(log, "reconciled", call=call_id, outcome=outcome, source="cdr" if rec else "none")
        return len(open_rows)

    # -- the hopper loop -----------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock.now()

    def _inflight(self, campaign: str) -> int:
        return sum(1 for a in self.active.values() if a.campaign == campaign)

    def _rank(self, candidates: list[Any]) -> list[Any]:
        try:
            from dialer.strategy.rank import rank_candidates
        except ImportError:
            return candidates
        by_id = {c.debtor_id: c for c in candidates}
        try:
            from dialer.store.strategy import histories

            ranked = rank_candidates([c.as_dict() for c in candidates], self._model, self._now(),
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
        if self.pacing:
            await self._apply_agent_states()
        for camp in self.campaigns.values():
            if camp.name in self.pacing:
                placed += await self._pace(camp)
                continue
            free = camp.line_limit - self._inflight(camp.name)
            if free <= 0:
                continue
            now = self._now()
            candidates = self._rank(core.due_debtors(self.store, camp.name, now.timestamp(), limit=free * 4))
            for cand in candidates:
                if free <= 0:
                    break
                if await self._place(camp, cand, now):
                    free -= 1
                    placed += 1
        return placed

    def _profile(self, camp: Campaign):
        return self.rules.profile_for(camp.profile, camp.name)

    # -- collector modes: agents and pacing -------------------------------------------------------
    async def _apply_agent_states(self) -> None:
        """Read `dialer agent` states and pause/unpause the queue members accordingly (wrap-up too)."""
        from dialer.store.agents import agent_states

        self.desired = {n: v["state"] for n, v in agent_states(self.store).items()}
        now = self.clock.timestamp()
        wrap = self._wrap_up()
        for name in self.collectors:
            cur = self.live.setdefault(name, CollectorLive(since=now))
            if cur.state == WRAPUP and now >= cur.since + wrap:
                for st in self.pacing.values():
                    st.estimator.observe_wrap(self._pace_now(now), wrap)
                self.live[name] = CollectorLive(READY, cur.since + wrap)
                cur = self.live[name]
            want = self.desired.get(name, "ready")
            pause = want != "ready" or cur.state == WRAPUP
            if self._applied.get(name) != pause:
                reason = "wrapup" if want == "ready" else want
                await self._queue_pause(name, pause, reason)
                self._applied[name] = pause

    async def _queue_pause(self, name: str, paused: bool, reason: str) -> None:
        assert self.ami is not None
        try:
            await self.ami.send({"Action": "QueuePause", "Queue": QUEUE, "Interface": f"PJSIP/{name}",
                                 "Paused": "true" if paused else "false", "Reason": reason}, timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - the pacer's view stays right; Asterisk may route to them
            log_event(log, "queue.pause_error", level=logging.WARNING, agent=name, error=str(exc))
            return
        log_event(log, "queue.pause" if paused else "queue.unpause", agent=name, reason=reason)

    def _wrap_up(self) -> float:
        camps = [self.campaigns[n] for n in self.pacing]
        return max((self._profile(c).abandon.wrap_up_seconds for c in camps), default=0.0)

    def _day_start(self) -> float:
        return self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def _pace_now(self, ts: float) -> float:
        """Snapshot clock: seconds since the process clock's (UTC) midnight."""
        return ts - self._day_start()

    def snapshot(self, camp: Campaign, estimates: Any = None) -> PacingSnapshot:
        """What the daemon observes now for one collector-mode campaign, in the pacer's terms."""
        from dialer.store.agents import abandon_counts

        now_dt = self.clock.now()
        now = now_dt.timestamp()
        origin = self._day_start()
        ab = self._profile(camp).abandon
        calls = [(a.placed_at - origin, None if a.answered_t is None else a.answered_t - origin,
                  None if a.human_t is None else a.human_t - origin,
                  a.machine or a.connected_t is not None or a.queue_status is not None)
                 for a in self.active.values() if a.campaign == camp.name and a.mode == "agent"]
        ringing, screening, waiting = call_views(calls)
        cols = collector_views(self.collectors, {k: CollectorLive(v.state, v.since - origin, v.call)
                                                 for k, v in self.live.items()},
                               self.desired, now - origin, ab.wrap_up_seconds)
        placed, answered, abandoned = abandon_counts(self.store, camp.name, window_start(now_dt, ab.window))
        # a person already waiting for a collector may still be abandoned: charge them to the budget now,
        # so calls in progress cannot push the window over the limit between two decisions
        budget = AbandonBudget(limit=ab.limit, answered=answered, abandoned=abandoned + len(waiting), placed=placed,
                               patience=ab.connect_within_seconds)
        return PacingSnapshot(now=now - origin, ringing=ringing, screening=screening, waiting=waiting,
                              collectors=cols, budget=budget, line_limit=camp.line_limit, estimates=estimates)

    async def _pace(self, camp: Campaign) -> int:
        """About once a second: ask the campaign's pacer how many calls to place, and place them (gate first)."""
        st = self.pacing[camp.name]
        ts = self.clock.timestamp()
        if ts - st.last_at < self.pace_every:
            return 0
        st.last_at = ts
        t0 = time.perf_counter()
        est = st.estimator.estimates(self._pace_now(ts)) if st.pacer.uses_estimates else None
        snap = self.snapshot(camp, est)
        want = st.pacer.decide(snap)
        floor = PROGRESSIVE_FLOOR.decide(snap)  # never fewer than one line per ready collector with no call coming:
        want = max(want, floor)            # those calls cannot be abandoned (on a small floor the model can be shyer)
        st.latencies.append(time.perf_counter() - t0)
        lines = camp.line_limit - self._inflight(camp.name)
        n = max(0, min(want, lines))
        placed = 0
        if n:
            now = self._now()
            for cand in self._rank(core.due_debtors(self.store, camp.name, now.timestamp(), limit=n * 4)):
                if placed >= n:
                    break
                if await self._place(camp, cand, now):
                    placed += 1
        ready = snap.count(READY, include_leaving=False)
        st.decisions.append({"at": ts, "ready": ready, "ringing": len(snap.ringing),
                             "screening": len(snap.screening), "waiting": len(snap.waiting),
                             "talking": snap.count(TALKING), "wrapup": snap.count(WRAPUP), "want": want,
                             "floor": floor, "placed": placed, "in_flight": self._inflight(camp.name),
                             "budget_left": round(snap.budget.left, 2),
                             "mode": getattr(st.pacer, "last_mode", st.pacer.name)})
        del st.decisions[:-2000]
        del st.latencies[:-2000]
        if placed:
            log_event(log, "pace", campaign=camp.name, ready=ready, ringing=len(snap.ringing),
                      waiting=len(snap.waiting), want=want, placed=placed)
        return placed

    async def _place(self, camp: Campaign, cand: Any, now: datetime) -> bool:
        assert self.ami is not None
        call_id = f"{camp.name[:12]}-{uuid.uuid4().hex[:12]}"
        decision = take_attempt(self.store, call_id=call_id, debtor_id=cand.debtor_id, account_id=cand.account_id,
                                campaign=camp.name, phone=None, rules=self.rules, now=now)
        if not decision.allowed:
            self.stats.blocked += 1
            return False
        profile = self._profile(camp)
        ring = max(profile.abandon.min_ring_seconds, camp.ring_seconds)
        amd = camp.amd
        seg = next((s for s in camp.segments if s.name == cand.segment), None)
        mode = "agent" if camp.name in self.pacing and camp.dial_mode_for(seg) in COLLECTOR_MODES else "bot"
        active = Active(call_id, cand.debtor_id, camp.name, decision.phone, cand.segment, placed_at=now.timestamp(),
                        mode=mode)
        self.active[call_id] = active
        variables = {"DIALER_AMD": "1" if amd else "0"}
        where = {"context": "dialer-outbound", "exten": "bot"}
        if mode == "agent":
            where = {"context": "dialer-agent", "exten": "agent"}
            variables.update(DIALER_PATIENCE=str(max(1, int(profile.abandon.connect_within_seconds))),
                             DIALER_INFO=self._info.get(camp.name, "silence/1"))
        try:
            tracked = await self.ami.originate(call_id, decision.phone, ring_timeout=ring,
                                               caller_id=caller_id_for(profile, camp.caller_id),
                                               variables=variables, **where)
        except Exception as exc:  # noqa: BLE001
            self.active.pop(call_id, None)
            core.update_attempt(self.store, call_id, state="ended", outcome="failed", ended_at=now.timestamp(),
                                at=now.timestamp())
            log_event(log, "originate.error", level=logging.ERROR, call=call_id, error=str(exc))
            return False
        active.tracked = tracked
        core.update_attempt(self.store, call_id, state="ringing", at=now.timestamp())
        self.stats.placed += 1
        task = asyncio.create_task(self._follow(active))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _follow(self, active: Active) -> None:
        assert active.tracked is not None
        call = await active.tracked.done
        await asyncio.sleep(0.05)  # let the AGI session write its last outcome
        self._finish(active, call)

    def _finish(self, active: Active, call: TrackedCall) -> None:
        if active.mode == "agent":
            self._finish_agent(active, call)
            return
        rec = self.ports.calls.pop(active.call_id, None)
        kinds = rec.kinds if rec else []
        outcome = call.outcome or "unknown"
        disposition = None
        if outcome == "answered":
            last = kinds[-1] if kinds else None
            data = rec.data if rec else {}
            if last == "machine":
                outcome = "machine"
            elif data.get("hangup") == "callee" and not data.get("verified"):
                outcome = "callee_hangup"
            disposition = last
        now = self.clock.timestamp()
        fields: dict[str, Any] = {
            "state": "unknown" if outcome == "unknown" else "ended", "outcome": outcome,
            "dial_status": call.dial_status, "hangup_cause": call.hangup_cause, "ended_at": now,
            "machine": outcome == "machine", "conversation": bool(rec and rec.verified), "disposition": disposition,
        }
        if call.answered_at:  # AMI times are wall-clock; the store uses the process clock (--at)
            fields["answered_at"] = now - (time.time() - call.answered_at)
        if rec and rec.transfer and rec.transfer.get("agent"):
            fields["agent"] = rec.transfer["agent"]
        core.update_attempt(self.store, active.call_id, at=now, **fields)
        if outcome == "unallocated":
            core.mark_phone(self.store, active.debtor_id, active.phone, "unallocated", at=now)
        if rec and rec.turns:
            self._save_transcript(active, rec)
        self._schedule_after(active.debtor_id, active.campaign, active.call_id, outcome, disposition)
        self.active.pop(active.call_id, None)
        self.stats.ended += 1
        self.stats.by_outcome[outcome] = self.stats.by_outcome.get(outcome, 0) + 1
        log_event(log, "call.end", call=active.call_id, debtor_id=active.debtor_id, outcome=outcome,
                  disposition=disposition, cause=call.hangup_cause)

    def _finish_agent(self, active: Active, call: TrackedCall) -> None:
        """Settle a collector-mode call: machine, abandoned (no collector within the patience after the
        greeting: the caller heard the information message), answered (a collector took it) or the callee
        hung up first."""
        now = self.clock.timestamp()
        camp = self.campaigns.get(active.campaign)
        patience = self._profile(camp).abandon.connect_within_seconds if camp else 2.0
        outcome = call.outcome or "unknown"
        st = self.pacing.get(active.campaign)
        if not call.answered and st is not None and outcome in ("no_answer", "busy", "failed", "unallocated"):
            st.estimator.observe_dial(self._pace_now(now), False, now - active.placed_at)
        abandoned = False
        if outcome == "answered":
            late = (active.connected_t is not None and active.human_t is not None
                    and active.connected_t - active.human_t > patience)
            if active.machine:
                outcome = "machine"
            elif active.connected_t is not None:
                abandoned = late
            elif active.queue_status is not None:
                outcome, abandoned = "abandoned", True
            elif active.human_t is not None and now - active.human_t > patience:
                outcome, abandoned = "abandoned", True  # waited past the patience and hung up
            else:
                outcome = "callee_hangup"
        fields: dict[str, Any] = {
            "state": "unknown" if outcome == "unknown" else "ended", "outcome": outcome,
            "dial_status": call.dial_status, "hangup_cause": call.hangup_cause, "ended_at": now,
            "machine": outcome == "machine", "abandoned": abandoned, "agent": active.agent,
            "disposition": "machine" if outcome == "machine" else None,
        }
        if active.answered_t is not None:
            fields["answered_at"] = active.answered_t
        core.update_attempt(self.store, active.call_id, at=now, **fields)
        if abandoned:
            self.stats.abandoned += 1
            core.record_call_event(self.store, active.call_id, "abandoned", now,
                                   {"greeting_end": active.human_t, "queue_status": active.queue_status,
                                    "info_played": active.info_played, "connected": active.connected_t})
        if outcome == "unallocated":
            core.mark_phone(self.store, active.debtor_id, active.phone, "unallocated", at=now)
        self.ports.calls.pop(active.call_id, None)
        self._schedule_after(active.debtor_id, active.campaign, active.call_id, outcome, None)
        self.active.pop(active.call_id, None)
        self.stats.ended += 1
        self.stats.by_outcome[outcome] = self.stats.by_outcome.get(outcome, 0) + 1
        log_event(log, "call.end", call=active.call_id, debtor_id=active.debtor_id, outcome=outcome,
                  abandoned=abandoned, agent=active.agent, cause=call.hangup_cause)

    def _save_transcript(self, active: Active, rec: Any) -> None:
        """Every bot call is scored by QA at its end: transcript saved, checked and recorded (audited)."""
        from dialer.store import qa as qa_store
        from dialer.store.audit import write_head

        camp = self.campaigns.get(active.campaign)
        started = self._debtor_local(active).isoformat()  # QA judges the window in the debtor's local time
        transcript = {"call_id": active.call_id, "lang": (camp.locale[:2] if camp else "en"),
                      "jurisdiction": camp.profile if camp else "cn", "started_at": started, "turns": rec.turns,
                      "agent": "bot", "campaign": active.campaign}
        try:
            if self._qa_rules is None:
                from dialer.qa.rules import load_rules as load_qa_rules

                self._qa_rules = load_qa_rules(self.rules.file)
            result = qa_store.score_call(self.store, transcript, self._qa_rules, at=self.clock.timestamp())
            write_head(self.store)
        except Exception:  # noqa: BLE001 - QA must never stop the dialer; the call stays unscored for `qa run`
            log.exception("QA scoring failed for call %s", active.call_id)
            return
        if result.violations:
            log_event(log, "qa.alert", level=logging.WARNING, call=active.call_id, score=result.score,
                      rules=",".join(sorted({v.rule for v in result.violations})))

    def _debtor_local(self, active: Active) -> datetime:
        """When the call started, in the debtor's zone (the record's, else the number's first)."""
        return self.ports.local_time(active.debtor_id, active.phone, active.placed_at)

    def _schedule_after(self, debtor_id: str, campaign: str, call_id: str, outcome: str,
                        disposition: str | None) -> None:
        """When may this debtor be called next? Retry rules per outcome; promises wait for their date."""
        camp = self.campaigns.get(campaign)
        now = self.clock.timestamp()
        nxt: float | None
        if disposition == "promise":
            nxt = self.ports.promise_next_allowed(call_id) or now + DAY
        elif outcome == "answered":
            nxt = now + DAY  # spoke to someone: the next contact follows the segment's cadence, not today
        else:
            seg = next((s for s in camp.segments if s.name == (core.get_debtor(self.store, debtor_id) or {}).get("segment")),
                       None) if camp else None
            made = len(core.attempts_for_debtor(self.store, debtor_id))
            delay = retry_delay(seg, RETRY_OUTCOMES.get(outcome, "failed"), made) if seg else None
            if delay is None:
                core.set_debtor_status(self.store, debtor_id, "done", at=now)
                return
            nxt = now + delay
        core.set_next_allowed(self.store, debtor_id, nxt)

    def idle(self) -> bool:
        if self.active:
            return False
        now = self._now().timestamp()
        return all(not core.due_debtors(self.store, c, now, limit=1) for c in self.campaigns)

    async def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> DaemonStats:
        t0 = time.monotonic()
        while True:
            await self.tick()
            if until_idle and self.idle():
                break
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                log_event(log, "daemon.time_limit", level=logging.WARNING, active=len(self.active))
                break
            await asyncio.sleep(self.poll)
        return self.stats

    # -- AGI routes -----------------------------------------------------------------------------
    async def _agi_call(self, req: AGIRequest, ch: AGIChannel) -> None:
        att = core.get_attempt(self.store, req.call_id)
        if att is None:
            log_event(log, "agi.unknown_call", level=logging.WARNING, call=req.call_id)
            return
        flow = self._flow_for(att)
        await flow(req, ch)

    async def _agi_inbound(self, req: AGIRequest, ch: AGIChannel) -> None:
        """A call-back: caller ID → debtor; the same verification-first flow as outbound, else a collector."""
        caller = (ch.env.get("agi_callerid") or "").strip()
        number = caller if caller.startswith("+") else ("+" + caller if caller.isdigit() else caller)
        row = self.store.query_one(
            "SELECT p.debtor_id, d.campaign FROM phones p JOIN debtors d ON d.debtor_id = p.debtor_id"
            " WHERE p.phone = ? ORDER BY d.status = 'active' DESC, p.rank LIMIT 1", (number,))
        now = self.clock.timestamp()
        if row is None or row["campaign"] not in self.campaigns:
            log_event(log, "inbound.unknown_caller", call=req.call_id, callerid=number)
            await ch.set_variable("DIALER_NEXT", "queue")  # a person answers; nothing is disclosed by the bot
            return
        debtor = core.get_debtor(self.store, row["debtor_id"]) or {}
        account = (debtor.get("accounts") or [{}])[0].get("account_id")
        with self.store.transaction() as conn:
            if core.get_attempt(conn, req.call_id) is None:
                core.insert_attempt(conn, call_id=req.call_id, debtor_id=row["debtor_id"], account_id=account,
                                    campaign=row["campaign"], phone=number, placed_at=now, inbound=True)
        core.update_attempt(self.store, req.call_id, state="answered", answered_at=now, at=now)
        active = Active(req.call_id, row["debtor_id"], row["campaign"], number, debtor.get("segment"), placed_at=now)
        self.active[req.call_id] = active
        log_event(log, "inbound.debtor", call=req.call_id, debtor_id=row["debtor_id"], phone=number)
        try:
            await self._flow_for(core.get_attempt(self.store, req.call_id))(req, ch)
        finally:
            self._finish_inbound(active)

    def _finish_inbound(self, active: Active) -> None:
        rec = self.ports.calls.pop(active.call_id, None)
        now = self.clock.timestamp()
        disposition = rec.kinds[-1] if rec and rec.kinds else None
        core.update_attempt(self.store, active.call_id, state="ended", outcome="answered", ended_at=now, at=now,
                            conversation=bool(rec and rec.verified), disposition=disposition)
        if rec and rec.turns:
            self._save_transcript(active, rec)
        if disposition == "promise":
            core.set_next_allowed(self.store, active.debtor_id,
                                  self.ports.promise_next_allowed(active.call_id) or now + DAY)
        if rec and rec.transfer is not None:
            active.transfer = rec.transfer  # stays active until the collector answers or the caller hangs up
        else:
            self.active.pop(active.call_id, None)

    def _flow_for(self, attempt: dict[str, Any]) -> Any:
        camp = self.campaigns.get(attempt["campaign"]) or self.ports.campaign(attempt["campaign"])
        debtor = core.get_debtor(self.store, attempt["debtor_id"]) or {}
        seg = next((s for s in camp.segments if s.name == debtor.get("segment")), camp.segments[0])
        return self._flow_for_script(camp, seg.script)

    def _flow_for_script(self, camp: Campaign, key: str) -> Any:
        from agi.script.loader import HandlerRef, load_by_id

        if key not in self._flows:
            local = Path(camp.file).parent / "scripts" if camp.file else None
            script = load_by_id(key, local if local is not None and (local / f"{key}.yaml").exists() else None)
            if isinstance(script, HandlerRef) and script.handler == "dtmf_verify":
                self._flows[key] = DtmfVerifyFlow(self.ports, self.tts)
            else:
                self._flows[key] = ScriptFlow(self, script)
        return self._flows[key]

    # -- AMI events -----------------------------------------------------------------------------
    def _on_ami_event(self, event: dict[str, Any]) -> None:
        if event.get("Event") == "DialEnd" and event.get("DialStatus") == "ANSWER":
            call_id = event.get("DestUniqueid", "")
            if call_id in self.active:
                now = self.clock.timestamp()
                active = self.active[call_id]
                if active.answered_t is None:
                    active.answered_t = now
                    st = self.pacing.get(active.campaign)
                    if st is not None and active.mode == "agent":
                        st.estimator.observe_dial(self._pace_now(now), True, now - active.placed_at)
                core.update_attempt(self.store, call_id, state="answered", answered_at=now, at=now)
            return
        if self.pacing and self._on_collector_event(event):
            return
        if event.get("Event") == "Hangup" and f"in-{event.get('Uniqueid')}" in self.active:
            self.active.pop(f"in-{event.get('Uniqueid')}", None)  # an inbound call's channel is gone
            return
        if event.get("Event") == "AgentConnect":
            call_id = event.get("Uniqueid", "")
            if call_id not in self.active and f"in-{call_id}" in self.active:
                call_id = f"in-{call_id}"  # inbound calls carry the PBX's uniqueid
            active = self.active.get(call_id)
            if active is None:
                return
            agent = event.get("MemberName") or event.get("Interface", "").split("/")[-1]
            rec = self.ports.calls.get(call_id)
            ctx = dict((rec.transfer if rec else None) or active.transfer or {})
            if active.mode == "agent" and not ctx:  # collector modes: no bot before, the debtor's record pops
                ctx = core.screen_pop_context(self.store, call_id, active.debtor_id)
            ctx["agent"] = agent
            if rec is not None:
                rec.transfer = ctx
            now = self.clock.timestamp()
            core.record_call_event(self.store, call_id, "agent_connect", now,
                                   {"agent": agent, "holdtime": event.get("HoldTime")})
            core.push_screen_pop(self.store, agent, call_id, active.debtor_id, ctx, now)
            core.update_attempt(self.store, call_id, agent=agent, at=now)
            log_event(log, "agent.connect", call=call_id, agent=agent)


    def _on_collector_event(self, event: dict[str, Any]) -> bool:
        """Collector-mode events: AMD result, end of greeting, queue result, collectors' talk and wrap-up.
        Returns True when the event is fully handled here."""
        name = event.get("Event")
        now = self.clock.timestamp()
        if name == "UserEvent":
            kind = event.get("UserEvent")
            active = self.active.get(event.get("CallID", ""))
            if active is None or active.mode != "agent":
                return False
            st = self.pacing.get(active.campaign)
            if kind == "DialerAMD":
                status = event.get("Status", "")
                if active.answered_t is None:
                    active.answered_t = now
                if status == "MACHINE":
                    active.machine = True
                if st is not None and status in ("HUMAN", "MACHINE", "NOTSURE"):
                    st.estimator.observe_screen(self._pace_now(now), status != "MACHINE", now - active.answered_t)
                core.record_call_event(self.store, active.call_id, "amd", now,
                                       {"status": status, "cause": event.get("Cause")})
            elif kind == "DialerHuman":
                active.human_t = now  # the abandon clock starts at the end of the greeting
                core.record_call_event(self.store, active.call_id, "greeting_end", now, {"pbx_epoch": event.get("At")})
            elif kind == "DialerQueueResult":
                status = event.get("Status") or ""
                if status:
                    active.queue_status = status
                    core.record_call_event(self.store, active.call_id, "queue_result", now, {"status": status})
            elif kind == "DialerInfoPlayed":
                active.info_played = True
                core.record_call_event(self.store, active.call_id, "info_played", now, {})
            return True
        member = event.get("MemberName") or event.get("Interface", "").split("/")[-1]
        if name == "AgentConnect" and member in self.live:
            self.live[member] = CollectorLive(TALKING, now, event.get("Uniqueid"))
            active = self.active.get(event.get("Uniqueid", ""))
            if active is not None and active.mode == "agent":
                active.connected_t, active.agent = now, member
                self.stats.connected += 1
                st = self.pacing.get(active.campaign)
                if st is not None:
                    try:
                        ring = float(event.get("RingTime") or 0)
                    except ValueError:
                        ring = 0.0
                    st.estimator.observe_connect(self._pace_now(now), ring)
            return False  # the screen pop below
        if name == "AgentComplete" and member in self.live:
            cur = self.live[member]
            try:
                talk = float(event.get("TalkTime") or (now - cur.since))
            except ValueError:
                talk = now - cur.since
            self.live[member] = CollectorLive(WRAPUP, now, None)
            for st in self.pacing.values():
                st.estimator.observe_talk(self._pace_now(now), talk)
            if self._wrap_up() > 0 and self.ami is not None:
                self._applied[member] = True
                task = asyncio.ensure_future(self._queue_pause(member, True, "wrapup"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return True
        return False


def _load_propensity_model() -> Any:
    """The trained propensity model under models/propensity/, or None (ranking then falls back)."""
    try:
        from dialer.strategy.rescore import load_model_or_none
    except ImportError:
        return None
    return load_model_or_none("models/propensity")


class ScriptFlow:
    """Runs a voice-bot script (agi/script/) for an outbound call."""

    def __init__(self, dialer: Dialer, script: Any):
        self.dialer = dialer
        self.script = script

    async def __call__(self, req: AGIRequest, ch: AGIChannel) -> None:
        from agi.flows.scripted import run_script
        from agi.script.model import Debtor

        ctx = await self.dialer.ports.lookup(req.call_id)
        if ctx is None:
            return
        debtor = _script_debtor(Debtor, ctx)
        result = await run_script(ch, self.script, debtor, self.dialer.ports, call_id=req.call_id,
                                  tts=self.dialer.tts, today=self.dialer.clock.now().date(), queue_app=False)
        if result.transferred_to:
            await ch.set_variable("DIALER_NEXT", "queue")


def _script_debtor(cls: Any, ctx: Any) -> Any:
    import dataclasses
    from decimal import Decimal

    due = ctx.extra.get("due_date")
    names = {f.name for f in dataclasses.fields(cls)}
    values = {"debtor_id": ctx.debtor_id, "name": ctx.name,
              "birth_year": str(ctx.birth_year) if ctx.birth_year else None,
              "id_last4": ctx.extra.get("id_last4"), "amount_owed": Decimal(str(ctx.amount_owed)),
              "currency": ctx.currency, "days_past_due": ctx.days_past_due,
              "due_date": date.fromisoformat(due) if due else None, "institution": ctx.institution,
              "phone": ctx.phone, "callback_number": ctx.callback_number, "account_id": ctx.account_id,
              "collector_name": BOT_NAMES.get(ctx.locale, "")}
    return cls(**{k: v for k, v in values.items() if k in names})
