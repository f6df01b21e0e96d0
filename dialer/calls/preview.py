"""Preview dialing: the next due debtor of a preview segment is offered to a ready collector (a screen pop with
the debtor's context and the gate's verdict, `dialer agent watch`); the collector accepts, skips or lets the
offer time out (`dialer agent accept|skip`). Only on accept is a call placed: the collector's phone first,
then — through the gate's `take_attempt`, as every call — the debtor's, bridged to the collector on answer.

An offer's life (store/preview.py): offered → accepted → dialing (collector's phone) → placed (the debtor's
call, an attempt) → done; or skipped, expired (the collector is paused: nobody is at the desk), blocked (the
gate said no at dial time) or failed (the collector's phone did not answer)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

from common.clock import Clock
from common.log import log_event
from dialer.calls import events as ev
from dialer.calls.call import PREVIEW, Call
from dialer.calls.collectors import Collectors
from dialer.campaign.config import Campaign
from dialer.gate.account import check_attempt, take_attempt
from dialer.gate.rules import Rules, caller_id_for
from dialer.observe import events as oe
from dialer.pacing.floor import CollectorLive
from dialer.pacing.pacers import READY, TALKING, WRAPUP
from dialer.store import Store, core
from dialer.store import preview as offers_store
from dialer.store.agents import agent_states, set_agent_state

log = logging.getLogger("dialer.calls.preview")

AGENT_LEG = "-agent"  # the collector's leg: ChannelId <call id>-agent
AGENT_ANSWER_SECONDS = 20.0  # the collector's phone must answer within this after an accept
SKIP_HOLD_SECONDS = 3600.0  # a skipped debtor is not offered again for an hour (the gate still decides then)


@dataclass
class Dialing:
    """An accepted offer between the collector's phone ringing and the debtor's call being placed."""

    offer: dict[str, Any]
    call_id: str
    started: float
    channel: str | None = None
    call: Call | None = None


def verdict_summary(decision: Any) -> dict[str, Any]:
    """What the collector sees of the gate's verdict: allowed or the rule that blocks, the debtor's local
    time, and every rule checked."""
    d = decision.as_dict()
    return {"allowed": d["allowed"], "rule_id": d["rule_id"], "reason": d["reason"],
            "local_times": d.get("local_times") or {},
            "checks": [f"{'ok' if c.passed else 'NO'} {c.rule_id}" for c in decision.checks]}


class Preview:
    """The preview step of one dialer: offers, accepts, the two legs of each accepted call."""

    def __init__(self, store: Store, rules: Rules, campaigns: dict[str, Campaign], clock: Clock,
                 calls: dict[str, Call], collectors: Collectors, follow: Callable[[Call], None], publish: Callable[[Any], None],
                 spawn: Callable[[Coroutine[Any, Any, None]], None]):
        self.store = store
        self.rules = rules
        self.campaigns = {n: c for n, c in campaigns.items() if c.has_preview}
        self.clock = clock
        self.calls = calls
        self.collectors = collectors
        self.follow = follow
        self.publish = publish  # the daemon's bus: placed, blocked (and the rule)
        self.spawn = spawn
        self.ami: Any = None
        self.dialing: dict[str, Dialing] = {}  # call id → the accepted offer being dialled
        self.skips_seen: set[int] = set()
        self.offer_every = 1.0  # seconds between looks for the next debtor to offer
        self._offered_at = float("-inf")
        self.server_id: str | None = None  # the dialer server placing the calls (attempts carry it)

    @property
    def active(self) -> bool:
        return bool(self.campaigns)

    def is_preview(self, camp: Campaign, segment: str | None) -> bool:
        return camp.mode_of(segment) == "preview"

    # -- the step, about every poll ------------------------------------------------------------------
    async def tick(self) -> None:
        if not self.active or self.ami is None:
            return
        ts = self.clock.timestamp()
        for o in offers_store.offers(self.store, states=("offered",)):
            if o["expires_at"] <= ts and offers_store.set_offer_state(
                    self.store, o["id"], "expired", ts, from_states=("offered",), reason="timeout"):
                # nobody answered the screen: pause the collector so the next debtor is not offered to an empty desk
                set_agent_state(self.store, o["agent"], "paused", ts, reason="preview timeout", actor="dialer")
                log_event(log, "preview.expired", agent=o["agent"], debtor_id=o["debtor_id"])
        for o in offers_store.offers(self.store, states=("skipped",), since=ts - 86400.0):
            if o["id"] not in self.skips_seen:  # the daemon's clock decides when a skipped debtor comes back
                self.skips_seen.add(o["id"])
                core.set_next_allowed(self.store, o["debtor_id"], ts + SKIP_HOLD_SECONDS)
        for o in offers_store.offers(self.store, states=("accepted",)):
            await self._start(o, ts)
        for d in list(self.dialing.values()):
            if d.call is None and ts - d.started > AGENT_ANSWER_SECONDS:
                await self._give_up(d, "the collector's phone did not answer", ts)
        self._release_free(ts)
        if ts - self._offered_at >= self.offer_every:
            self._offered_at = ts
            for camp in self.campaigns.values():
                await self._offer(camp, ts)

    def _release_free(self, ts: float) -> None:
        """Collectors held for an offer that is over (skipped, expired, blocked, failed) are free again."""
        for name in list(self.collectors.held):
            if offers_store.open_offer(self.store, name) is None and not any(
                    d.offer["agent"] == name for d in self.dialing.values()):
                self.collectors.held.discard(name)
                cur = self.collectors.live.get(name)
                if cur is None or cur.state == TALKING:
                    self.collectors.live[name] = CollectorLive(READY, ts)

    def free_collectors(self, ts: float) -> list[str]:
        """Ready collectors with no offer, no call and no wrap-up."""
        desired = agent_states(self.store)
        out = []
        for name in self.collectors.names:
            if desired.get(name, {}).get("state", "ready") != "ready" or name in self.collectors.held:
                continue
            cur = self.collectors.live.get(name) or CollectorLive()
            if cur.state in (TALKING, WRAPUP):  # wrap-up ends in Collectors.apply_states (disposition or time)
                continue
            if offers_store.open_offer(self.store, name) is None:
                out.append(name)
        return out

    async def _offer(self, camp: Campaign, ts: float) -> None:
        free = self.free_collectors(ts)
        if not free:
            return
        taken = offers_store.offered_debtors(self.store) | {c.debtor_id for c in self.calls.values()}
        now = self.clock.now()
        for cand in core.due_debtors(self.store, camp.name, ts, limit=200):
            if not free:
                break
            if cand.debtor_id in taken or not self.is_preview(camp, cand.segment):
                continue
            decision = check_attempt(self.store, debtor_id=cand.debtor_id, account_id=cand.account_id,
                                     campaign=camp.name, rules=self.rules, now=now)
            if not decision.allowed:  # not now: looked at again when the gate says it may be
                nxt = decision.next_allowed_at.timestamp() if decision.next_allowed_at else ts + 86400.0
                core.set_next_allowed(self.store, cand.debtor_id, nxt)
                continue
            agent = free.pop(0)
            verdict = verdict_summary(decision)
            oid = offers_store.create_offer(self.store, agent=agent, campaign=camp.name, debtor_id=cand.debtor_id,
                                            account_id=cand.account_id, segment=cand.segment, at=ts,
                                            expires_at=ts + camp.preview_seconds, verdict=verdict)
            if oid is None:
                continue
            taken.add(cand.debtor_id)
            self.collectors.hold(agent)
            core.push_screen_pop(self.store, agent, f"offer-{oid}", cand.debtor_id, {
                "preview": {"offer": oid, "campaign": camp.name, "expires_in": camp.preview_seconds,
                            "accept": f"dialer agent accept {agent}",
                            "skip": f"dialer agent skip {agent} --reason …"},
                "gate": verdict}, ts)
            log_event(log, "preview.offered", agent=agent, debtor_id=cand.debtor_id, offer=oid)

    # -- accept: the collector's phone, then the debtor's -------------------------------------------
    async def _start(self, offer: dict[str, Any], ts: float) -> None:
        camp = self.campaigns.get(offer["campaign"])
        if camp is None or not offers_store.set_offer_state(self.store, offer["id"], "dialing", ts,
                                                            from_states=("accepted",)):
            return
        call_id = f"{camp.name[:12]}-{uuid.uuid4().hex[:12]}"
        d = Dialing(offer, call_id, ts)
        self.dialing[call_id] = d
        self.collectors.hold(offer["agent"])
        self.collectors.live[offer["agent"]] = CollectorLive(TALKING, ts)
        ring = max(self.rules.profile_for(camp.profile, camp.name).abandon.min_ring_seconds, camp.ring_seconds)
        try:
            await self.ami.send({
                "Action": "Originate", "Channel": f"PJSIP/{offer['agent']}", "Context": "dialer-preview",
                "Exten": "agent", "Priority": "1", "Timeout": str(int(AGENT_ANSWER_SECONDS * 1000)),
                "ChannelId": call_id + AGENT_LEG, "Async": "true", "CallerID": f"preview <{offer['id']}>",
                "Variable": [f"DIALER_CALL_ID={call_id}", f"DIALER_RING={int(ring) + 5}"]}, timeout=5.0)
        except Exception as exc:  # noqa: BLE001
            await self._give_up(d, f"originate to the collector failed: {exc}", ts)
            return
        log_event(log, "preview.collector_leg", agent=offer["agent"], call=call_id)

    def on_ami_event(self, msg: dict[str, Any]) -> None:
        """AMI listener: the collector's leg answered (dial the debtor) or hung up before the debtor's leg."""
        event = ev.parse(msg)
        if isinstance(event, ev.DialerPreviewReady) and event.call_id in self.dialing:
            d = self.dialing[event.call_id]
            if d.channel is None:
                d.channel = event.channel
                self.spawn(self._dial_debtor(d))
        elif isinstance(event, ev.DialAnswered) and event.call_id in self.dialing:
            d = self.dialing[event.call_id]
            now = self.clock.timestamp()
            core.record_call_event(self.store, d.call_id, "agent_connect", now, {"agent": d.offer["agent"],
                                                                                 "mode": PREVIEW})
            log_event(log, "agent.connect", call=d.call_id, agent=d.offer["agent"], mode=PREVIEW)
        elif msg.get("Event") == "Hangup" and str(msg.get("Uniqueid", "")).endswith(AGENT_LEG):
            d = self.dialing.get(str(msg["Uniqueid"])[: -len(AGENT_LEG)])
            if d is not None and d.call is None and d.channel is None:
                self.spawn(self._give_up(d, f"the collector's phone did not answer (cause {msg.get('Cause')})",
                                         self.clock.timestamp()))

    async def _dial_debtor(self, d: Dialing) -> None:
        offer, now = d.offer, self.clock.now()
        camp = self.campaigns[offer["campaign"]]
        decision = take_attempt(self.store, call_id=d.call_id, debtor_id=offer["debtor_id"],
                                account_id=offer["account_id"], campaign=camp.name, phone=None, rules=self.rules,
                                now=now, server_id=self.server_id)
        ts = now.timestamp()
        if not decision.allowed:
            self.publish(oe.GateBlocked(camp.name, decision.rule_id or "unknown", decision.reason, ts))
            offers_store.set_offer_state(self.store, offer["id"], "blocked", ts, from_states=("dialing",),
                                         reason=decision.rule_id)
            core.push_screen_pop(self.store, offer["agent"], f"offer-{offer['id']}", offer["debtor_id"],
                                 {"preview": {"offer": offer["id"], "blocked": decision.rule_id},
                                  "gate": verdict_summary(decision)}, ts)
            await self._end(d, ts, hangup=True)
            return
        profile = self.rules.profile_for(camp.profile, camp.name)
        call = Call(d.call_id, offer["debtor_id"], camp.name, decision.phone or "", offer["segment"],
                    placed_at=ts, mode=PREVIEW)
        call.agent = offer["agent"]
        d.call = call
        self.calls[d.call_id] = call
        try:
            tracked = await self.ami.originate(
                d.call_id, call.phone, context="dialer-preview", exten="debtor",
                ring_timeout=max(profile.abandon.min_ring_seconds, camp.ring_seconds),
                caller_id=caller_id_for(profile, camp.caller_id), variables={"DIALER_AGENT_CHANNEL": d.channel})
        except Exception as exc:  # noqa: BLE001
            self.calls.pop(d.call_id, None)
            core.update_attempt(self.store, d.call_id, state="ended", outcome="failed", ended_at=ts, at=ts)
            offers_store.set_offer_state(self.store, offer["id"], "failed", ts, from_states=("dialing",),
                                         reason=str(exc))
            self.publish(oe.OriginateFailed(d.call_id, camp.name, str(exc), ts))
            await self._end(d, ts, hangup=True)
            return
        call.tracked = tracked
        core.update_attempt(self.store, d.call_id, state="ringing", agent=offer["agent"], at=ts)
        offers_store.set_offer_state(self.store, offer["id"], "placed", ts, from_states=("dialing",),
                                     call_id=d.call_id)
        self.publish(oe.CallPlaced(d.call_id, camp.name, PREVIEW, ts))
        self.follow(call)
        log_event(log, "preview.placed", call=d.call_id, agent=offer["agent"], debtor_id=offer["debtor_id"])

        async def after() -> None:
            await tracked.done
            end = self.clock.timestamp()
            offers_store.set_offer_state(self.store, offer["id"], "done", end, from_states=("placed",))
            await self._end(d, end, hangup=True, wrapup=True)

        self.spawn(after())

    async def _give_up(self, d: Dialing, why: str, ts: float) -> None:
        offers_store.set_offer_state(self.store, d.offer["id"], "failed", ts, from_states=("dialing",), reason=why)
        log_event(log, "preview.failed", level=logging.WARNING, agent=d.offer["agent"], reason=why)
        await self._end(d, ts, hangup=True)

    async def _end(self, d: Dialing, ts: float, *, hangup: bool, wrapup: bool = False) -> None:
        """The accepted offer is over: hang up the collector's leg if it is still up, free the collector
        (after wrap-up when a call was placed)."""
        self.dialing.pop(d.call_id, None)
        agent = d.offer["agent"]
        self.collectors.held.discard(agent)
        if wrapup:
            self.collectors.start_wrapup(agent, d.call_id, ts)
        else:
            self.collectors.live[agent] = CollectorLive(READY, ts)
        if hangup and self.ami is not None:
            try:  # Asterisk finds a channel by its uniqueid too: <call id>-agent
                await self.ami.send({"Action": "Hangup", "Channel": d.call_id + AGENT_LEG, "Cause": "16"},
                                    timeout=5.0)
            except Exception:  # noqa: BLE001 - already gone
                pass
