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
from datetime import date
from pathlib import Path
from typing import Any, Callable, Coroutine

from agi.channel import AGIChannel
from agi.ports import CallMedia
from agi.server import AGIRequest, FastAGIServer
from common import vocab
from common.clock import Clock
from common.log import log_event
from dialer.calls import events as ev
from dialer.calls.bot import Bots, render_notices
from dialer.calls.call import AGENT, BOT, PREVIEW, Call
from dialer.calls.collectors import Collectors, collector_callback, keep_collector_fields
from dialer.calls.disposition import Disposition, settle
from dialer.calls.escalation import Escalation
from dialer.calls.hopper import COLLECTOR_MODES, Hopper
from dialer.calls.inbound import INBOUND_PREFIX, Inbound
from dialer.calls.ports import StorePorts
from dialer.calls.preview import Preview
from dialer.calls.recovery import (
    cel_path_for,
    live_call_ids,
    live_channels,
    read_cdr,
    read_cel,
    userfield_tags,
)
from dialer.calls.retry import next_allowed
from dialer.campaign.config import Campaign
from dialer.gate.rules import Rules
from dialer.observe import events as oe
from dialer.observe.bus import Bus
from dialer.observe.tally import Tally
from dialer.pacing.estimator import Estimator
from dialer.pacing.floor import PaceState
from dialer.pacing.pacers import PredictivePacer, ProgressivePacer
from dialer.qa.recordings import Recorder, rec_dir_for
from dialer.store import Store, core
from dialer.telephony.ami import AMIController, AmiMedia, TrackedCall, classify
from dialer.telephony.pbx import PbxConnection

log = logging.getLogger("dialer.calls.daemon")

DEFAULT_GRACE = 120.0  # seconds live calls get to finish when the daemon stops
STORE_WAIT = 5.0  # seconds a store call waits for a lost PostgreSQL server before dialing pauses


class Dialer:
    """One dialer process next to one PBX."""

    def __init__(self, store: Store, pbx: PbxConnection, rules: Rules, campaigns: list[Campaign], *,
                 clock: Clock | None = None, tts: Any = None, poll: float = 0.25, agi_port: int | None = None,
                 cdr_path: Path | None = None, collector_modes: bool = True, live_qa: bool = True,
                 webhooks: bool = True, server_id: str | None = None):
        self.store = store
        self.pbx = pbx
        self.rules = rules
        self.campaigns = {c.name: c for c in campaigns}
        self.clock = clock or Clock()
        self.poll = poll
        self.agi_port = agi_port if agi_port is not None else pbx.agi_port
        self.cdr_path = cdr_path or Path(pbx.cdr_path)
        self.ports = StorePorts(store, self.clock)
        self.recorder = Recorder(store, rec_dir_for(self.cdr_path), self.clock.timestamp)  # per-leg files → audit
        self.live_qa = live_qa
        self.live: Any = None
        self.webhooks = webhooks  # deliver the outbox to the lender's endpoints (dialer/api/webhooks.py)
        self._unsubscribe: list[Callable[[], None]] = []
        self.bots = Bots(self.ports, self.clock, tts)
        self.calls: dict[str, Call] = {}
        # what the daemon does goes on its bus (dialer/observe): the tally of the run is one subscriber; the
        # CLI adds the narration, metrics and the wallboard. `publish` is for other parts too (live QA alerts).
        self.bus = Bus()
        self.publish = self.bus.publish
        self.tally = Tally()
        self.bus.subscribe(self.tally)
        self.ami: AMIController | None = None
        self.agi: FastAGIServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._qa_rules: Any = None
        self._detectors: Any = None
        self._stopping = asyncio.Event()
        self._recovering = 0  # settlements of ended calls of a previous process still running
        self.pacing: dict[str, PaceState] = {}
        for c in campaigns if collector_modes else ():
            if c.dial_mode in COLLECTOR_MODES:
                pacer = PredictivePacer(c.pacing) if c.dial_mode == "predictive" else ProgressivePacer()
                self.pacing[c.name] = PaceState(pacer, Estimator(patience=self._profile(c).abandon.connect_within_seconds))
        wrap_up = max((self._profile(c).abandon.wrap_up_seconds for c in campaigns
                       if c.name in self.pacing or c.has_preview), default=0.0)
        self.collectors = Collectors(store, self.clock, list(pbx.members), self.pacing, wrap_up, self._spawn)
        self.hopper = Hopper(store, rules, self.campaigns, self.clock, self.calls, self.collectors,
                             _load_propensity_model(), self._follow, self.publish)
        self.preview = Preview(store, rules, self.campaigns, self.clock, self.calls, self.collectors, self._follow,
                               self.publish, self._spawn)
        self.hopper.preview = self.preview
        self.inbound = Inbound(store, self.clock, self.campaigns, self.calls, self.bots, self._settle)
        self.inbound.notice = self.hopper.notice  # one dict, rendered at start
        self.hopper.bot_room = self.bots.bot_room  # recognition pool capacity paces bot calls (pacing/bots.py)
        self.escalation = Escalation(store, rules, self.campaigns, self.clock)  # plans by stage (calls/escalation.py)
        self.hopper.escalation = self.escalation if self.escalation.has_plans() else None
        # several servers on one store (docs/STORE.md): attempts carry the id; the hopper leases and heartbeats
        self.server_id = self.hopper.server_id = self.preview.server_id = self.inbound.server_id = server_id

    @property
    def stats(self) -> Tally:
        """What the run did so far, counted from the bus (placed, blocked, ended, outcomes, …)."""
        return self.tally

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
        from dialer.qa import detect

        self.hopper.register()  # refused while another live process runs under this server id
        # QA 2's detectors score every bot call at its end; loaded once (about 2 s), off the event loop. A
        # missing encoder or head is an error here, never a silent fallback to the lexicons.
        self._detectors = await asyncio.to_thread(detect.load)
        self.agi = FastAGIServer({"call": self._agi_call, "inbound": self.inbound},
                                 token=self.pbx.agi_token, port=self.agi_port, admit=self._admit,
                                 observe=lambda result: self.publish(oe.AgiSession(result)))
        await self.agi.start()
        self.ami = AMIController(self.pbx.ami_host, self.pbx.ami_port, self.pbx.ami_user, self.pbx.ami_secret)
        self.ami.dial_plan = self.pbx.dial_plan() if hasattr(self.pbx, "dial_plan") else None  # a real trunk's
        self.ami.listeners.append(self._on_ami_event)
        self.hopper.ami = self.collectors.ami = self.preview.ami = self.ami
        self.ami.listeners.append(self.preview.on_ami_event)
        await self.ami.connect()
        media = AmiMedia(self.ami)  # the bot hears the caller: ChanSpy tap + ControlPlayback barge-in
        if self.live_qa:  # live QA of collector calls (dialer/qa/live.py): tap, recognise, alert, whisper/end
            from dialer.qa.live import CollectorMonitor
            from dialer.qa.rules import qa_rules

            self._qa_rules = self._qa_rules or qa_rules(self.rules)
            self.live = CollectorMonitor(self.ami, self.store, self._qa_rules, detectors=self._detectors,
                                         tts=self.bots.tts, wall=self.clock.timestamp)
            if self.pacing:
                await asyncio.to_thread(self.live.warm)
            from dialer.qa import live as qa_live

            self._unsubscribe.append(qa_live.subscribe(self._on_live_alert))
        self.bots.media = CallMedia(media, media.playback)
        self._observe_recognition()
        await self.reconcile()
        await self.recorder.start()
        if self.webhooks:  # at least once, leased batches: a `dialer webhooks run` beside it never double-sends
            from dialer.api.webhooks import Deliverer

            self._spawn(Deliverer(self.store, poll=1.0).run(self._stopping))
        self.hopper.info.update(await asyncio.to_thread(self.bots.prerender, list(self.campaigns.values()),
                                                        set(self.pacing)))
        self.hopper.notice.update(await asyncio.to_thread(
            render_notices, self.bots.tts, list(self.campaigns.values()),
            lambda camp: self._profile(camp).recording_notice.text_for(camp.locale)))
        if self.pacing:
            self.warm_estimators()
            await self.collectors.apply_states()

    def enter_disposition(self, agent: str, outcome: str, *, amount: str | None = None, date_text: str | None = None,
                          note: str | None = None) -> dict[str, Any]:
        """A collector's disposition entered on the wallboard: `dialer agent dispo`'s function at the daemon's clock
        (raises collectors.DispositionError, a ValueError, with the reason)."""
        from dialer.calls.collectors import enter_disposition

        return enter_disposition(self.store, agent, outcome, at=self.clock.timestamp(), amount=amount,
                                 date_text=date_text, note=note)

    def warm_estimators(self, days: float = 7.0) -> dict[str, int]:
        """The day starts from each paced campaign's own history (its last `days` days of settled calls), not
        the estimator's generic priors: the same Estimator the simulator's pacer uses, fed the same events."""
        from dialer.pacing.estimator import warm
        from dialer.store.dispositions import floor_history

        now = self.clock.timestamp()
        used = {}
        for name, st in self.pacing.items():
            used[name] = warm(st.estimator, floor_history(self.store, name, now - days * 86400.0, now),
                              self.collectors.pace_now(now))
            if used[name]:
                log_event(log, "pacing.warmed", campaign=name, calls=used[name])
        return used

    async def reconcile(self) -> int:
        """Settle the attempts a previous process left open as a clean run would have (calls/recovery.py):
        calls still up are adopted and followed to their end in the background (the hopper dials other
        debtors meanwhile); the rest are settled from the facts written while they ran, the CDR and the CEL.
        Returns how many open attempts were found."""
        assert self.ami is not None
        rows = core.open_attempts(self.store, self.server_id)  # this server's own: never another's live calls
        if not rows:
            return 0
        calls = [self._rebuild(row) for row in rows]
        for call in calls:  # followed before we look, so a hang-up between the look and now is not missed
            self.ami.calls[call.call_id] = call.tracked  # type: ignore[assignment]
        live = await live_call_ids(self.ami)
        cel = read_cel(cel_path_for(self.cdr_path)) if live else {}
        for call, row in zip(calls, rows):
            if call.call_id in live:
                answered = cel.get(call.call_id)
                if call.tracked is not None and not call.tracked.answered and answered and answered.answered:
                    # answered while no daemon listened: AMI will not say so again
                    call.tracked.answered_at = answered.answered_at
                    at = self.clock.timestamp() - (time.time() - (answered.answered_at or time.time()))
                    call.answered_t = at
                    core.update_attempt(self.store, call.call_id, state="answered", answered_at=at, at=at)
                self.calls[call.call_id] = call
                self.publish(oe.CallAdopted(call.call_id, call.campaign))
                core.record_call_event(self.store, call.call_id, "adopted", self.clock.timestamp(), {})
                log_event(log, "call.adopted", call=call.call_id, debtor_id=call.debtor_id)
                self._follow(call, reconciled=True)
            else:
                self.ami.calls.pop(call.call_id, None)
                self._recovering += 1  # counted from now: `run(until_idle=True)` waits for it
                self._spawn(self._settle_ended(call, row))
        return len(rows)

    def _wall(self, t: float | None) -> float | None:
        """A time of the process clock (`--at`) as wall-clock time (what AMI and TrackedCall use)."""
        return None if t is None else time.time() - (self.clock.timestamp() - t)

    def _rebuild(self, row: dict[str, Any]) -> Call:
        """A call of a previous process, as the store remembers it: ids and mode, the floor's facts (AMD,
        greeting end, queue result, collector), and the bot's record (calls/ports.py restore)."""
        camp = self.campaigns.get(row["campaign"])
        segment = (core.get_debtor(self.store, row["debtor_id"]) or {}).get("segment")
        seg = next((s for s in camp.segments if s.name == segment), None) if camp else None
        mode = AGENT if camp and camp.name in self.pacing and camp.dial_mode_for(seg) in COLLECTOR_MODES else BOT
        if camp is not None and camp.dial_mode_for(seg) == "preview" and row["agent"]:
            mode = PREVIEW
        call = Call(row["id"], row["debtor_id"], row["campaign"], row["phone"], segment, placed_at=row["placed_at"],
                    mode=mode, inbound=bool(row["inbound"]))
        call.answered_t = row["answered_at"]
        for e in core.call_events(self.store, call.call_id):
            kind, data = e["kind"], e["data"]
            if kind == "amd" and data.get("status") == "MACHINE":
                call.machine = True
            elif kind == "greeting_end":
                call.human_t = e["at"]
            elif kind == "queue_result" and data.get("status"):
                call.queue_status = data["status"]
            elif kind == "info_played":
                call.info_played = True
            elif kind == "agent_connect":
                call.connected_t, call.agent = e["at"], data.get("agent")
        rec = self.ports.restore(call.call_id)
        if rec is not None:
            self.ports.calls[call.call_id] = rec
        tracked = TrackedCall(call_id=call.call_id, number=call.phone, placed_at=self._wall(call.placed_at) or 0.0)
        tracked.answered_at = self._wall(row["answered_at"])
        call.tracked = tracked
        return call

    async def _settle_ended(self, call: Call, row: dict[str, Any]) -> None:
        """A call that ended while no daemon ran: its outcome from the CDR (answered?) and the CEL (hang-up
        cause, dial status), refined as always by what the bot and the floor recorded while it ran."""
        try:
            await self._settle_ended_now(call, row)
        finally:
            self._recovering -= 1

    async def _settle_ended_now(self, call: Call, row: dict[str, Any]) -> None:
        cdr = cel = None
        for _ in range(12):  # the CDR and CEL are written shortly after the channel is destroyed
            cdr = read_cdr(self.cdr_path).get(call.call_id)
            cel = read_cel(cel_path_for(self.cdr_path)).get(call.call_id)
            if cdr is not None and cel is not None and cel.hung_up:
                break
            await asyncio.sleep(0.25)
        now = self.clock.timestamp()
        tracked = call.tracked
        assert tracked is not None
        if cdr is None and cel is None:  # Asterisk never saw the call
            core.update_attempt(self.store, call.call_id, state="unknown", outcome=vocab.UNKNOWN, ended_at=now,
                                actor="reconcile", at=now)
            self.ports.calls.pop(call.call_id, None)
            self._schedule(call.debtor_id, call.campaign, call.call_id, Disposition(vocab.UNKNOWN))
            outcome = vocab.UNKNOWN
        else:
            answered = tracked.answered or bool(cdr and cdr.answered) or bool(cel and cel.answered)
            if answered and tracked.answered_at is None:
                tracked.answered_at = ((cel.answered_at if cel else None) or (cdr.answer_epoch if cdr else None)
                                       or tracked.placed_at)
            tracked.hangup_cause = cel.cause if cel else None
            tracked.dial_status = cel.dial_status if cel else None
            if (cel is not None and cel.hung_up) or answered:
                outcome = classify(answered, tracked.dial_status, tracked.hangup_cause)
            else:
                outcome = cdr.outcome if cdr else vocab.UNKNOWN
            tracked.finish(outcome)
            rec = self.ports.calls.get(call.call_id)
            tags = userfield_tags(cdr.userfield) if cdr else {}
            if tags.get("amd") == "MACHINE":
                call.machine = True
            if call.mode == AGENT and call.queue_status is None and tags.get("queue"):
                call.queue_status = tags["queue"]  # the queue gave up while no daemon listened: abandoned
            if answered and call.mode == BOT and call.machine and rec is not None and not rec.kinds:
                rec.kinds.append(vocab.MACHINE)  # AMD said machine before the bot could say so
            outcome = self._settle(call) or outcome
        core.record_call_event(self.store, call.call_id, "reconciled", now,
                               {"source": "+".join(k for k, v in (("cdr", cdr), ("cel", cel)) if v) or "none",
                                "outcome": outcome, "cdr_disposition": cdr.disposition if cdr else None,
                                "cause": cel.cause if cel else None, "billsec": cdr.billsec if cdr else None})
        source = "+".join(k for k, v in (("cdr", cdr), ("cel", cel)) if v) or "none"
        self.publish(oe.CallReconciled(call.call_id, call.campaign, outcome, source))
        log_event(log, "reconciled", call=call.call_id, outcome=outcome, source="cdr" if cdr else "none")

    async def run(self, *, until_idle: bool = False, max_seconds: float | None = None,
                  grace: float = DEFAULT_GRACE) -> Tally:
        """Place calls until idle (`until_idle`), `max_seconds` or `request_stop()` (SIGTERM); then stop
        gracefully: no new calls, live calls finish (up to `grace` s) and are settled."""
        t0 = time.monotonic()
        why = "stop requested"
        while not self._stopping.is_set():
            idle = await self._tick_or_pause(until_idle)
            self.publish(oe.Tick(self.clock.timestamp(), len(self.calls)))
            if until_idle and idle and not self._recovering and not self.collectors.settling():
                why = "nothing left to dial"
                break
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                log_event(log, "daemon.time_limit", level=logging.WARNING, active=len(self.calls))
                why = "time limit"
                break
            try:
                await asyncio.wait_for(self._stopping.wait(), self.poll)
            except asyncio.TimeoutError:
                pass
        self.publish(oe.Stopping(len(self.calls), why))
        await self.drain(grace)
        return self.tally

    # -- the database went away (a PostgreSQL restart): pause dialing, reconnect with backoff, go on ----------
    async def _tick_or_pause(self, check_idle: bool) -> bool:
        """One hopper tick (then: is there nothing left to dial?). A store call waits up to STORE_WAIT s for a
        lost PostgreSQL server, then fails at once until it is back. Once the connection is known lost, no
        call is placed: probe with backoff, the event loop free for the calls in flight; when it is back (or
        another store call reconnected meanwhile), finish what the outage cut short, then dial on."""
        from dialer.store import StoreUnavailable

        conn: Any = self.store.conn
        if getattr(conn, "wait", 0) > STORE_WAIT:
            conn.wait = STORE_WAIT
        doubt: list[str] = []
        error = "the connection was lost" if getattr(conn, "lost", False) else None
        if error is None:
            try:
                if self.hopper.escalation is not None:
                    self.escalation.tick()  # SMS, letter and legal-review tasks through the gate into the outbox
                await self.hopper.tick()
                idle = check_idle and self.hopper.idle()
                if getattr(conn, "outages", 0) == getattr(self, "_outages_seen", 0):
                    return idle
            except StoreUnavailable as exc:
                doubt = [exc.call_id] if exc.call_id else []
                error = str(exc).splitlines()[0]
        t0, delay = time.monotonic(), 0.25
        if error is not None:
            log_event(log, "daemon.store_lost", level=logging.WARNING, active=len(self.calls), error=error,
                      doubt=",".join(doubt) or None)
            while not self._stopping.is_set() and not conn.ping():
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, 5.0)
            if self._stopping.is_set():
                return False
        try:
            fixed = self._after_outage(doubt)
        except StoreUnavailable:
            return False  # away again: the next tick pauses again
        self._outages_seen = getattr(conn, "outages", 0)
        log_event(log, "daemon.store_back", level=logging.WARNING, seconds=round(time.monotonic() - t0, 1),
                  active=len(self.calls), finished=fixed)
        return False

    def _after_outage(self, doubt: list[str]) -> int:
        """What the outage cut short, done now: an attempt recorded whose call was never placed (in doubt at
        COMMIT) ends 'failed' (it still counts); a call placed whose 'ringing' was not written is followed; a
        call that ended while the store was away is settled. Returns how many."""
        fixed, now = 0, self.clock.timestamp()
        for call_id in doubt:
            row = core.get_attempt(self.store, call_id)
            if call_id not in self.calls and row is not None and row["state"] == "placed":
                core.update_attempt(self.store, call_id, state="ended", outcome="failed", ended_at=now, at=now)
                fixed += 1
        for call in list(self.calls.values()):
            tracked = call.tracked
            row = core.get_attempt(self.store, call.call_id)
            if tracked is None or call.inbound or row is None or row["state"] == "ended":
                continue
            if row["state"] == "placed":
                core.update_attempt(self.store, call.call_id, state="ringing", at=call.placed_at)
                self._follow(call)
                fixed += 1
            elif tracked.done.done() and time.time() - (tracked.ended_at or 0.0) > 1.0:  # its settle failed
                if call.record is not None:
                    self.ports.calls.setdefault(call.call_id, call.record)
                self._settle(call)
                fixed += 1
        return fixed

    def request_stop(self) -> None:
        """Stop placing calls; `run` then lets the live ones finish (SIGTERM)."""
        if not self._stopping.is_set():
            log_event(log, "daemon.stop_requested", active=len(self.calls))
        self._stopping.set()

    async def drain(self, grace: float = DEFAULT_GRACE) -> None:
        """No new calls; wait up to `grace` s for live calls (and recoveries) to end and be settled; hang up
        what is still up then, and settle it (the next start would otherwise find it open)."""
        self._stopping.set()
        live = len(self.calls)
        deadline = time.monotonic() + grace
        while (self.calls or self._recovering) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        drained, hung_up = max(0, live - len(self.calls)), 0
        left = [c for c in self.calls.values() if not c.inbound]
        if left and self.ami is not None and self.ami.connected.is_set():
            try:
                channels = await live_channels(self.ami)
                for call in left:
                    for name in channels.get(call.call_id, ()):
                        await self.ami.send({"Action": "Hangup", "Channel": name, "Cause": "16"})
                        hung_up += 1
            except Exception:  # noqa: BLE001 - what stays open is settled by the next start's recovery
                log.exception("hanging up calls at stop failed")
            end = time.monotonic() + 5.0
            while any(not c.inbound for c in self.calls.values()) and time.monotonic() < end:
                await asyncio.sleep(0.1)
        self.publish(oe.Drained(drained, hung_up))
        if self.calls:
            log_event(log, "daemon.stop_open_calls", level=logging.WARNING, open=len(self.calls))

    def _observe_recognition(self) -> None:
        """Each decode's time onto the bus (the recognizer latency metric), from the decoder's thread."""
        from agi.media.recognition import shared_service

        svc = self.bots.recognition or shared_service()
        loop = asyncio.get_running_loop()

        def decoded(lang: str, seconds: float, backend: str) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.publish, oe.RecognizerTiming(seconds, lang, backend))

        svc.on_decoded.append(decoded)
        self._unsubscribe.append(lambda: svc.on_decoded.remove(decoded) if decoded in svc.on_decoded else None)

    def _on_live_alert(self, alert: Any) -> None:
        """A live QA alert (dialer/qa/live.py) onto the bus: the wallboard and metrics show it."""
        call = self.calls.get(alert.call_id)
        self.publish(oe.QaAlert(alert.call_id, call.campaign if call else "", (alert.rule,), alert.raised_at,
                                live=True, detail=f"{alert.policy}: {alert.evidence}"))

    async def stop(self) -> None:
        self._stopping.set()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self.live is not None:
            await self.live.stop()
        await self.recorder.drain()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ami is not None:
            await self.ami.close()
        if self.agi is not None:
            await self.agi.stop()
        self.hopper.unregister()

    # -- AGI: an outbound call answered ----------------------------------------------------------------
    async def _admit(self, req: AGIRequest, ch: AGIChannel) -> bool:
        """Only a call live on our PBX gets a session: one this daemon placed and has not settled, or a
        call-back whose channel is up on the PBX and carries that id. A session forged for an unknown or
        ended call (even with the token) is refused before anything is looked up or recorded."""
        if req.path == "call":
            call = self.calls.get(req.call_id)
            return call is not None and not call.inbound
        if req.path == "inbound":
            channel = req.env.get("agi_channel", "")
            if not req.call_id.startswith(INBOUND_PREFIX) or not channel or self.ami is None:
                return False
            try:
                resp = await self.ami.send({"Action": "Getvar", "Channel": channel, "Variable": "DIALER_CALL_ID"},
                                           timeout=5.0)
            except (asyncio.TimeoutError, OSError):
                return False
            return hasattr(resp, "get") and resp.get("Response") == "Success" and resp.get("Value") == req.call_id
        return False

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
                if call.mode == PREVIEW:  # the collector is on the line already: the debtor is bridged to them
                    self._play_notice(call)
        elif isinstance(event, ev.ChannelHangup):
            self.calls.pop(INBOUND_PREFIX + event.uniqueid, None)  # a call-back's channel is gone
        elif isinstance(event, ev.AgentConnect):
            self._agent_connect(event, now)
        elif isinstance(event, ev.DialerNoticePlayed):  # evidence the callee was told (docs/RECORDINGS.md)
            call = self._call_for(event.call_id)
            if call is not None:
                core.record_call_event(self.store, call.call_id, "recording_notice", now,
                                       {"complete": event.complete})
        elif isinstance(event, ev.AgentComplete):
            if self.pacing:
                self.collectors.completed(event, now)
        elif isinstance(event, (ev.DialerAMD, ev.DialerHuman, ev.DialerQueueResult, ev.DialerInfoPlayed,
                                ev.DialerMachineMessage)):
            call = self.calls.get(event.call_id)
            if self.pacing and call is not None and call.mode == AGENT:
                self._floor_event(call, event, now)
            elif call is not None and isinstance(event, ev.DialerAMD):  # a bot call's AMD: written when it happens
                core.record_call_event(self.store, call.call_id, "amd", now, {"status": event.status, "cause": event.cause})
                call.apply(event, now)
        self.publish(event)  # after the daemon's own state took it in: observers see the floor as it is now

    def _floor_event(self, call: Call, event: ev.CallEvent, now: float) -> None:
        """A collector-mode call's dialplan step: AMD result, end of greeting, queue result, information played."""
        if isinstance(event, ev.DialerAMD):
            answered = call.answered_t if call.answered_t is not None else now
            if event.screened:
                for est in self.collectors.estimators(call.campaign):
                    est.observe_screen(self.collectors.pace_now(now), event.status != "MACHINE", now - answered)
            with self.store.transaction():
                core.record_call_event(self.store, call.call_id, "amd", now, {"status": event.status, "cause": event.cause})
                if event.status == "MACHINE":
                    core.update_attempt(self.store, call.call_id, machine=True, at=now)
        elif isinstance(event, ev.DialerHuman):  # the abandon clock starts at the end of the greeting
            core.record_call_event(self.store, call.call_id, "greeting_end", now, {"pbx_epoch": event.at})
        elif isinstance(event, ev.DialerQueueResult) and event.status:
            with self.store.transaction():  # nobody took the call in time: abandoned, written when it happens
                core.record_call_event(self.store, call.call_id, "queue_result", now, {"status": event.status})
                if not call.machine and call.connected_t is None:
                    core.update_attempt(self.store, call.call_id, abandoned=True, at=now)
        elif isinstance(event, ev.DialerInfoPlayed):
            core.record_call_event(self.store, call.call_id, "info_played", now, {})
        elif isinstance(event, ev.DialerMachineMessage):  # the campaign's AMD policy: a message was left
            core.record_call_event(self.store, call.call_id, "machine_message", now, {"complete": event.complete})
        call.apply(event, now)

    def _agent_connect(self, event: ev.AgentConnect, now: float) -> None:
        """A collector took a call: talking (collector modes), and the debtor's screen pops on their desk."""
        if self.pacing and self.collectors.connected(event, now):
            call = self.calls.get(event.uniqueid)
            if call is not None and call.mode == AGENT:
                call.apply(event, now)
                camp = self.campaigns.get(call.campaign)
                patience = self._profile(camp).abandon.connect_within_seconds if camp else 2.0
                if call.human_t is not None and now - call.human_t > patience:  # late: abandoned, written now
                    core.update_attempt(self.store, call.call_id, abandoned=True, at=now)
                for est in self.collectors.estimators(call.campaign):
                    est.observe_connect(self.collectors.pace_now(now), event.ring_time)
        call = self._call_for(event.uniqueid)
        if call is not None:
            self.collectors.pop_screen(call, self.ports.calls.get(call.call_id), event, now)
            if call.mode == AGENT:  # a bot call's notice was played before the bot spoke
                self._play_notice(call)

    def _play_notice(self, call: Call) -> None:
        """The profile's recording notice on a collector's call, once the collector is connected (both hear it)."""
        notice = self.hopper.notice.get(call.campaign)
        channel = call.tracked.channel if call.tracked is not None else None
        if notice and channel and self.ami is not None:
            from dialer.qa.recordings import play_notice

            async def play() -> None:
                await play_notice(self.ami, call.call_id, channel, notice)

            self._spawn(play())

    # -- the end of a call: settle, write, schedule ----------------------------------------------------
    def _follow(self, call: Call, reconciled: bool = False) -> None:
        async def follow() -> None:
            assert call.tracked is not None
            await call.tracked.done
            await asyncio.sleep(0.05)  # let the AGI session write its last outcome
            outcome = self._settle(call)
            if reconciled:
                self.publish(oe.CallReconciled(call.call_id, call.campaign, outcome, "ami"))
                now = self.clock.timestamp()
                core.record_call_event(self.store, call.call_id, "reconciled", now,
                                       {"source": "ami", "outcome": outcome,
                                        "cause": call.tracked.hangup_cause})

        self._spawn(follow())

    def _settle(self, call: Call) -> str:
        """Write how the call ended (disposition.settle), score the bot's transcript, schedule the debtor.
        Returns the outcome."""
        call.record = self.ports.calls.pop(call.call_id, None)
        now = self.clock.timestamp()
        camp = self.campaigns.get(call.campaign)
        patience = self._profile(camp).abandon.connect_within_seconds if camp else 2.0
        tracked = call.tracked
        if call.mode == AGENT and tracked is not None and not tracked.answered and tracked.outcome in vocab.NOT_ANSWERED:
            for est in self.collectors.estimators(call.campaign):
                est.observe_dial(self.collectors.pace_now(now), False, now - call.placed_at)
        disp = settle(call, now=now, patience=patience, wall_now=time.time())
        fields = keep_collector_fields(self.store, call.call_id, disp.fields)
        core.update_attempt(self.store, call.call_id, at=now, **fields)
        self.publish(oe.CallSettled(call.call_id, call.campaign, disp.outcome, disp.abandoned, disp.kind,
                                    bool(call.record and call.record.verified) or bool(fields.get("conversation")),
                                    call.mode, call.inbound, fields.get("agent") or disp.fields.get("agent"), now))
        if disp.abandoned:
            core.record_call_event(self.store, call.call_id, "abandoned", now,
                                   {"greeting_end": call.human_t, "queue_status": call.queue_status,
                                    "info_played": call.info_played, "connected": call.connected_t})
        if disp.outcome == vocab.UNALLOCATED:
            core.mark_phone(self.store, call.debtor_id, call.phone, vocab.UNALLOCATED, at=now)
        if tracked is not None and tracked.answered and not (call.inbound and call.record and call.record.transfer):
            self.recorder.hung_up(call.call_id)
        if call.mode != AGENT and call.record and call.record.turns:
            self._score(call)
        if call.inbound:
            if disp.kind == vocab.PROMISE:  # otherwise a call-back does not move the debtor's next call
                self._schedule(call.debtor_id, call.campaign, call.call_id, disp)
            if call.record and call.record.transfer is not None:
                call.transfer = call.record.transfer  # stays until the collector answers or the caller hangs up
            else:
                self.calls.pop(call.call_id, None)
            return disp.outcome
        self._schedule(call.debtor_id, call.campaign, call.call_id, disp)
        self.calls.pop(call.call_id, None)
        log_event(log, "call.end", call=call.call_id, debtor_id=call.debtor_id, outcome=disp.outcome,
                  disposition=disp.kind, abandoned=disp.abandoned, agent=disp.fields.get("agent"),
                  cause=disp.fields.get("hangup_cause"))
        return disp.outcome

    def _schedule(self, debtor_id: str, campaign: str, call_id: str, disp: Disposition) -> None:
        """When may this debtor be called next (retry.next_allowed); None: done with them."""
        camp = self.campaigns.get(campaign)
        now = self.clock.timestamp()
        promise = core.promises_for(self.store, call_id=call_id) if disp.kind == vocab.PROMISE else []
        segment = (core.get_debtor(self.store, debtor_id) or {}).get("segment")
        seg = next((s for s in camp.segments if s.name == segment), None) if camp else None
        made = len(core.attempts_for_debtor(self.store, debtor_id))
        nxt = next_allowed(disp, seg, made, date.fromisoformat(promise[0]["due_date"]) if promise else None, now=now)
        if collector_callback(self.store, call_id):  # the collector agreed a call-back time during the call: it stands
            return
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
                      "agent": "bot", "campaign": call.campaign,
                      "institution": camp.institution if camp else None}
        try:
            if self._qa_rules is None:  # the gate's reading of the rules file, not a second one
                from dialer.qa.rules import qa_rules

                self._qa_rules = qa_rules(self.rules)
            result = score_call(self.store, transcript, self._qa_rules, at=self.clock.timestamp(),
                                detectors=self._detectors)
            write_head(self.store)
        except Exception:  # noqa: BLE001 - QA must never stop the dialer; the call stays unscored for `qa run`
            log.exception("QA scoring failed for call %s", call.call_id)
            return
        if result.violations:
            rules = tuple(sorted({v.rule for v in result.violations}))
            self.publish(oe.QaAlert(call.call_id, call.campaign, rules, self.clock.timestamp(), score=result.score))
            log_event(log, "qa.alert", level=logging.WARNING, call=call.call_id, score=result.score,
                      rules=",".join(rules))


def _load_propensity_model() -> Any:
    """The trained propensity model under models/propensity/, or None (ranking then falls back)."""
    from dialer.strategy.rescore import load_model_or_none

    return load_model_or_none("models/propensity")
