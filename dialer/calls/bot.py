"""The voice bot's side of a call: which flow answers it (the segment's script, or the hand-written DTMF flow),
the script runner with the debtor's record, the bot's name per locale, and the abandoned-call information
message; static prompts are rendered once at start."""
from __future__ import annotations

import dataclasses
import logging
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from agi.channel import AGIChannel
from agi.flows.dtmf_verify import DtmfVerifyFlow
from agi.ports import CallContext, CallMedia
from agi.server import AGIRequest
from common.clock import Clock
from common.log import log_event
from dialer.calls.ports import StorePorts
from dialer.campaign.config import Campaign

log = logging.getLogger("dialer.calls.bot")

BOT_NAMES = {"en-US": "Alex", "zh-CN": "小安"}  # the voice assistant's name, said with "an automated assistant"
INFO_TEXT = {  # said when no collector was free in time: identity and call-back number, nothing about a debt
    "en-US": "This is {institution}. Please call us back at {callback}. Thank you.",
    "zh-CN": "这里是{institution}，请回电{callback}。谢谢。",
}


def info_text(locale: str, institution: str, callback_number: str) -> str:
    """The abandoned-call information message: who called and the number to call back, digit by digit."""
    digits = " ".join(ch for ch in callback_number if ch.isdigit())
    return INFO_TEXT.get(locale, INFO_TEXT["en-US"]).format(institution=institution, callback=digits)


class Bots:
    """One flow per script id, loaded on first use; the TTS engine, made on first use."""

    def __init__(self, ports: StorePorts, clock: Clock, tts: Any = None, media: CallMedia | None = None):
        self.ports = ports
        self.clock = clock
        self._tts = tts
        self.media = media  # live audio (tap + prompt stop) once the daemon's AMI is up; None: keys only
        self._flows: dict[str, Any] = {}
        self._no_asr: set[str] = set()  # languages whose recognizer could not be loaded (logged once)
        self._room_reason = ""
        self.recognition: Any = None  # agi.media.recognition.RecognitionService; None: the process's shared one

    @property
    def tts(self) -> Any:
        if self._tts is None:
            from agi.media.tts import TTS

            self._tts = TTS()  # cached by (voice, text) under voices/cache/
        return self._tts

    async def speech_for(self, locale: str, today: date) -> Any:
        """The call's recognizer hook (agi.media.speech.CallSpeech), its model loaded once per process and
        language off the event loop; None (keys and "I heard you" only) when the model is not installed."""
        from agi.media.models import ModelMissing
        from agi.media.recognition import shared_service
        from agi.media.speech import CallSpeech, lang_of

        lang = lang_of(locale)
        if lang in self._no_asr:
            return None
        service = self.recognition or shared_service()
        try:
            rec = await service.preload(lang)
        except (ModelMissing, OSError, ValueError) as exc:
            self._no_asr.add(lang)
            log_event(log, "asr.unavailable", level=logging.WARNING, lang=lang, error=str(exc))
            return None
        return CallSpeech(lang, today, recognizer=rec, service=service)

    def bot_room(self, active: int) -> int | None:
        """New bot calls the shared recognition pool can take now (dialer/pacing/bots.py); None: no limit
        (keys only, or nothing decoded yet)."""
        if self.media is None:
            return None
        from agi.media.recognition import shared_service
        from dialer.pacing.bots import bot_room

        decision = bot_room((self.recognition or shared_service()).load(), active)
        if decision.reason != self._room_reason:
            self._room_reason = decision.reason
            log_event(log, "pace.bots", room=decision.room, capacity=decision.capacity, reason=decision.reason,
                      active=active)
        return decision.room

    def flow_for(self, campaigns: dict[str, Campaign], attempt: dict[str, Any], segment: str | None) -> Any:
        """The flow of the debtor's segment (the campaign's first segment if the debtor has none)."""
        camp = campaigns.get(attempt["campaign"]) or self.ports.campaign(attempt["campaign"])
        seg = next((s for s in camp.segments if s.name == segment), camp.segments[0])
        return self.flow_for_script(camp, seg.script)

    def flow_for_script(self, camp: Campaign, key: str) -> Any:
        from agi.script.loader import HandlerRef, load_by_id

        if key not in self._flows:
            local = Path(camp.file).parent / "scripts" if camp.file else None
            script = load_by_id(key, local if local is not None and (local / f"{key}.yaml").exists() else None)
            if isinstance(script, HandlerRef) and script.handler == "dtmf_verify":
                self._flows[key] = DtmfVerifyFlow(self.ports, self.tts)
            else:
                self._flows[key] = ScriptFlow(self, script)
        return self._flows[key]

    def prerender(self, campaigns: list[Campaign], collector_modes: set[str]) -> dict[str, str]:
        """Render every campaign script's static prompts once, at load (per-call prompts render during calls),
        and the information message of each collector-mode campaign. Returns campaign → message path
        (without extension)."""
        t0, n = time.monotonic(), 0
        info: dict[str, str] = {}
        for camp in campaigns:
            if camp.name in collector_modes:
                wav = self.tts.render(info_text(camp.locale, camp.institution, camp.callback_number), camp.locale)
                info[camp.name] = str(Path(wav).resolve().with_suffix(""))
                n += 1
            for seg in camp.segments:
                flow = self.flow_for_script(camp, seg.script)
                if isinstance(flow, ScriptFlow) and hasattr(self.tts, "render_static"):
                    n += len(self.tts.render_static(flow.script, {
                        "institution": camp.institution, "callback_number": camp.callback_number,
                        "collector_name": BOT_NAMES.get(camp.locale, "")}))
        if n:
            log_event(log, "prompts.prerendered", prompts=n, seconds=round(time.monotonic() - t0, 2))
        return info


def render_notices(tts: Any, campaigns: list[Campaign], notice_of: Any) -> dict[str, str]:
    """Campaign → its profile's recording notice in the campaign's locale, rendered once at start (path without
    extension); campaigns whose profile requires none are left out. `notice_of(campaign)` is the text or None."""
    out: dict[str, str] = {}
    for camp in campaigns:
        text = notice_of(camp)
        if text:
            out[camp.name] = str(Path(tts.render(text, camp.locale)).resolve().with_suffix(""))
    return out


class ScriptFlow:
    """Runs a voice-bot script (agi/script/) for a call."""

    def __init__(self, bots: Bots, script: Any):
        self.bots = bots
        self.script = script

    async def __call__(self, req: AGIRequest, ch: AGIChannel) -> None:
        from agi.flows.scripted import run_script

        ports = self.bots.ports
        ctx = await ports.lookup(req.call_id)
        if ctx is None:
            return
        if req.params.get("amd") == "MACHINE":
            await leave_machine_message(ch, ports, req.call_id, ctx, self.bots.tts)
            return
        today = ports.local_date(ctx.debtor_id, ctx.phone, self.bots.clock.timestamp())  # the debtor's, not UTC's
        extra = {}
        if self.bots.media is not None:
            speech = await self.bots.speech_for(self.script.locale, today)
            if speech is not None:
                extra["recognize"] = speech
        result = await run_script(ch, self.script, script_debtor(ctx), ports, call_id=req.call_id,
                                  tts=self.bots.tts, today=today, queue_app=False, media=self.bots.media, **extra)
        if result.transferred_to:
            await ch.set_variable("DIALER_NEXT", "queue")


async def leave_machine_message(ch: Any, ports: Any, call_id: str, ctx: CallContext, tts: Any) -> None:
    """An answering machine (AMD): the limited-content message — who called and the number to call
    back, no debtor name, nothing about a debt — then the outcome `machine`."""
    import asyncio

    text = info_text(ctx.locale, ctx.institution, ctx.callback_number)
    wav = await asyncio.to_thread(tts.render, text, ctx.locale)
    t0 = time.monotonic()
    await ch.control_stream_file(str(Path(wav).with_suffix("")), "")
    await ports.record_transcript_turn(call_id, "agent", text, 0.0, time.monotonic() - t0)
    await ports.record_outcome(call_id, "machine", {"kind": "machine"})
    await ch.hangup()


def script_debtor(ctx: CallContext) -> Any:
    """The script engine's Debtor from the call's context (fields the engine's Debtor does not have are left out)."""
    from agi.script.model import Debtor

    due = ctx.extra.get("due_date")
    names = {f.name for f in dataclasses.fields(Debtor)}
    values = {"debtor_id": ctx.debtor_id, "name": ctx.name,
              "birth_year": str(ctx.birth_year) if ctx.birth_year else None,
              "id_last4": ctx.extra.get("id_last4"), "amount_owed": Decimal(str(ctx.amount_owed)),
              "currency": ctx.currency, "days_past_due": ctx.days_past_due,
              "due_date": date.fromisoformat(due) if due else None, "institution": ctx.institution,
              "phone": ctx.phone, "callback_number": ctx.callback_number, "account_id": ctx.account_id,
              "collector_name": BOT_NAMES.get(ctx.locale, ""),
              "verify_failures_today": int(ctx.extra.get("verify_failures_today") or 0)}
    return Debtor(**{k: v for k, v in values.items() if k in names})
