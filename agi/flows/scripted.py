"""Drive the script engine over an AGI channel: play its prompts, hear the caller, report outcomes and transfers.

Two ways to hear the caller:
- keys only (no `media`): a `Listen` becomes GET DATA on the last prompt before it;
- live audio (`media`, a `CallMedia` of `agi/ports.py`): the caller's audio is tapped from the start of the
  call (`agi/media/playback.py:VoiceSession`); prompts are CONTROL STREAM FILE that voice or keys interrupt
  (the same `Interruption`, handed to the engine as its `BargeIn`), except `must_finish` ones; a false
  interruption (a cough) resumes the prompt; each endpointed `Utterance` goes through `recognize`, the
  recognizer hook (see `Recognize`), and its result (`Speech` or `NoInput`) to the engine.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Awaitable, Callable

from agi.channel import Hangup
from agi.media.frames import Interruption, Utterance
from agi.media.playback import VoiceSession
from agi.media.tap import CallAudio
from agi.ports import CallChannel, CallMedia, CallPorts, PromptRenderer
from agi.script.engine import Engine
from agi.script.model import (
    Action,
    BargeIn,
    CallerHangup,
    Debtor,
    Dtmf,
    End,
    Event,
    Listen,
    NoInput,
    Record,
    Say,
    Script,
    Speech,
    Transfer,
)
from common import vocab
from common.log import log_event
from common.wav import duration

log = logging.getLogger("agi.flows.scripted")

DIGITS = "0123456789*#"
SILENCE = "silence/1"  # Asterisk core sound: GET DATA needs a file when no prompt precedes the Listen

Listener = Callable[[CallChannel, Listen, "str | None"], Awaitable[Event]]
"""(channel, listen, path of the prompt to play while listening or None) -> the caller's event."""

Recognize = Callable[[Utterance, Listen, str], Awaitable[Any]]
"""The recognizer hook: (one endpointed utterance, what the node listens for, the script's locale) ->
`Speech(text, confidence)`, or `NoInput()` when nothing was said in it (noise), or a `Heard`
(agi/media/answers.py) whose `.event` is one of those, or None with a `.confirm_question` to ask first.
`agi.media.speech.CallSpeech` is the live one (Whisper/Vosk per language): with it the flow also
- asks "did you say …?" (rendered by the TTS in the call's language), hears the reply (voice, or key 1 yes /
  2 no) and acts only on a confirmed answer (`hook.resolve`); anything else is the node's no-match path;
- lets the voice session screen a short sound that stopped a prompt (`hook.words`): words are an answer,
  a cough or 嗯 resumes the prompt;
- writes the recognizer's words, timing and backend into the callee's transcript turn (`meta`)."""


async def no_recognizer(utterance: Utterance, listen: Listen, locale: str) -> Speech | NoInput:
    """Without a recognizer the bot knows *that* the caller spoke, not *what*: `Speech("", 0.0)`, which the
    engine treats as not understood (its no-match path: "Sorry, I did not catch that…"). Never NoInput: the
    caller did answer, and a no-input retry would tell them they were not heard."""
    return Speech("", 0.0)


@dataclass
class CallResult:
    """How a scripted call ended."""

    reason: str
    verified: bool
    outcomes: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    transferred_to: str | None = None
    prompts_played: list[str] = field(default_factory=list)


def _strip_wav(path: Path | str) -> str:
    p = str(path)
    return p[:-4] if p.endswith(".wav") else p


async def dtmf_listener(channel: CallChannel, listen: Listen, prompt: str | None) -> Event:
    """Collect keys with GET DATA (1 key for menus, N digits for verification); timeout -> NoInput."""
    wanted = listen.grammar.digits or 1
    digits = await channel.get_data(prompt or SILENCE, int(listen.timeout * 1000), wanted)
    return Dtmf(digits) if digits else NoInput()


class _Clock:
    def __init__(self, now: Callable[[], float]):
        self.now, self.t0 = now, now()

    def __call__(self) -> float:
        return round(self.now() - self.t0, 3)


_default_tts: PromptRenderer | None = None


def default_tts() -> PromptRenderer:
    """One process-wide TTS (voices/manifest.yaml, cache under voices/cache/), created on first use."""
    global _default_tts
    if _default_tts is None:
        from agi.media.tts import TTS

        _default_tts = TTS()
    return _default_tts


async def run_script(channel: CallChannel, script: Script, debtor: Debtor, ports: CallPorts, *,
                     today: date, call_id: str = "", tts: PromptRenderer | None = None,
                     listener: Listener = dtmf_listener, queue_app: bool = True,
                     monotonic: Callable[[], float] = time.monotonic, media: CallMedia | None = None,
                     recognize: Recognize = no_recognizer, voice_facts: list | None = None) -> CallResult:
    """Run one call from the first prompt to End/Transfer/hangup. Returns how it ended.

    `today` is the debtor's local date (promise dates resolve against it); `call_id` defaults to the
    channel's unique id, `tts` to the process-wide TTS. With `media` the caller's voice is heard (see the
    module's docstring); `voice_facts`, if given, receives what the voice session saw (stops, resumes,
    utterances) for tests and benchmarks."""
    call_id = call_id or str(getattr(channel, "uniqueid", "") or "")
    tts = tts or default_tts()
    engine = Engine(script, debtor, today=today)
    clock = _Clock(monotonic)
    result = CallResult(reason="", verified=False)
    log_event(log, "script_start", call_id=call_id, script=script.id, debtor_id=debtor.debtor_id)

    voice: VoiceSession | None = None

    async def start_voice() -> None:
        nonlocal voice
        name = str(getattr(channel, "channel_name", "") or "")
        if media is None or not name:
            return
        audio = CallAudio(media.tap, call_id, name, clock)
        session = VoiceSession(audio, media.playback, call_id, name, clock, script.voice)
        try:
            from agi.media.playback import silence_file

            state["fill"] = silence_file(Path(getattr(tts, "cache_dir", "voices/cache")))
            voice = await session.start()
        except Exception as exc:  # noqa: BLE001 - a call without its tap still works with keys
            log_event(log, "voice.unavailable", level=logging.WARNING, call_id=call_id, error=str(exc))

    async def settle_action(action: Action) -> bool:
        """An action other than Say and Listen, the same with or without live audio: report a Record;
        carry out a Transfer or an End. True when the call's part in the script is over."""
        if isinstance(action, Record):
            await report(action)
        elif isinstance(action, Transfer):
            await transfer(action)
            return True
        elif isinstance(action, End):
            result.reason = action.reason
            if action.reason != "caller_hangup":
                await channel.hangup()
            return True
        return False

    async def voice_say(action: Say, escape: str, interruptible: bool) -> tuple[Interruption | None, str | None]:
        assert voice is not None
        wav = await asyncio.to_thread(tts.render, action.text, script.locale)
        path = _strip_wav(wav)
        pb, digit = await voice.play(channel, path, action.prompt_id, interruptible=interruptible, escape=escape,
                                     duration_ms=int(duration(wav) * 1000))
        await ports.record_transcript_turn(call_id, "agent", action.text, pb.started, pb.ended)
        result.prompts_played.append(action.prompt_id)
        return pb.interruption, digit

    async def voice_perform(actions: list[Action]) -> Event | None:
        """`perform` with live audio: prompts interruptible by voice and keys alike, answers by either."""
        assert voice is not None
        voice.drain()  # a turn that ended after the last answer was taken answers nothing asked now
        listen = next((a for a in actions if isinstance(a, Listen)), None)
        says = [a for a in actions if isinstance(a, Say)]
        if listen is not None:
            voice.set_params(listen.voice)
            if hook is not None:
                hook.listen = listen
        escape = DIGITS if listen and (listen.grammar.dtmf or listen.grammar.digits) else ""
        # As with keys: only prompts after the last must-finish one can be interrupted (the caller has not
        # heard the question before it), and a must-finish prompt never is.
        last_must = max((i for i, a in enumerate(says) if a.must_finish), default=-1)
        interruption: Interruption | None = None
        pressed: str | None = None
        for action in actions:
            if isinstance(action, Say):
                if interruption and not action.must_finish:
                    continue  # an interruption drops queued prompts except what must finish
                can_barge = interruption is None and not action.must_finish and says.index(action) > last_must
                got, digit = await voice_say(action, escape if can_barge else "", can_barge)
                if got is not None:
                    interruption, pressed = got, digit
                    more = engine.handle(BargeIn())  # the engine's answer to an interruption: listen
                    listen = next((a for a in more if isinstance(a, Listen)), listen)
            elif await settle_action(action):
                return None
        if listen is None:
            return None
        state["factor"] = bool(listen.grammar.digits)
        got_key: str | None = pressed
        utterance: Utterance | None = None
        if got_key is None:
            heard = await voice.listen(channel, listen.timeout, state.get("fill"))
            if isinstance(heard, Utterance):
                utterance = heard
            elif isinstance(heard, str):
                got_key = heard
            else:
                return NoInput()
        if got_key is not None:
            wanted = listen.grammar.digits or 1
            rest = ""
            if wanted > 1:
                rest = await channel.get_data(SILENCE, int(listen.timeout * 1000), wanted - 1) or ""
            return Dtmf(got_key + rest)
        assert utterance is not None
        event, heard = await recognized(utterance, listen)
        if heard is not None and event is None and heard.confirm_question:
            event = await confirm(heard, listen)
        return event

    async def recognized(utterance: Utterance, listen: Listen) -> tuple[Event | None, Any]:
        """The hook's hearing of one turn, written to the transcript: (event or None, Heard or None)."""
        got = await recognize(utterance, listen, script.locale)
        heard = got if hasattr(got, "recognition") else None
        event = heard.event if heard is not None else got
        if heard is not None:
            from agi.media.speech import transcript_meta

            r = heard.recognition
            text = r.text or "[no speech]"
            await ports.record_transcript_turn(call_id, "callee", text, utterance.speech_start, utterance.end,
                                               meta=transcript_meta(heard))
        else:
            text = event.text if isinstance(event, Speech) and event.text else "[speech]"
            await ports.record_transcript_turn(call_id, "callee", text, utterance.speech_start, utterance.end)
        return event, heard

    async def confirm(pending: Any, listen: Listen) -> Event:
        """Ask "did you say …?" in the call's language, hear yes/no (voice or key 1/2), act only on a yes."""
        from agi.media.speech import CONFIRM_LISTEN

        assert voice is not None
        voice.set_params(listen.voice)
        hook.listen = CONFIRM_LISTEN
        _, digit = await voice_say(Say("confirm", pending.confirm_question), DIGITS, True)
        reply: Any = digit
        if digit is None:
            got = await voice.listen(channel, CONFIRM_LISTEN.timeout, state.get("fill"))
            if isinstance(got, Utterance):
                _, reply = await recognized(got, CONFIRM_LISTEN)
            else:
                reply = got
        elif digit:
            await ports.record_transcript_turn(call_id, "callee", digit, clock(), clock())
        event = hook.resolve(pending, reply)
        log_event(log, "speech.confirm", call_id=call_id, asked=pending.confirm_question,
                  confirmed=bool(event.text))
        return event

    async def say(action: Say, escape: str) -> str | None:
        path = _strip_wav(await asyncio.to_thread(tts.render, action.text, script.locale))
        start = clock()
        # CONTROL STREAM FILE: an AMI ControlPlayback stop (barge-in) can cut it; keys end it as usual
        digit, _ = await channel.control_stream_file(path, "" if action.must_finish else escape)
        await ports.record_transcript_turn(call_id, "agent", action.text, start, clock())
        result.prompts_played.append(action.prompt_id)
        return digit

    async def perform(actions: list[Action]) -> Event | None:
        """Carry out the engine's actions; return the caller's next event, or None when the call is over."""
        listen = next((a for a in actions if isinstance(a, Listen)), None)
        says = [a for a in actions if isinstance(a, Say)]
        deferred = says[-1] if listen and says and not says[-1].must_finish else None
        escape = DIGITS if listen and listen.grammar.dtmf or (listen and listen.grammar.digits) else ""
        # Keys barge in only after the last must-finish prompt: a key pressed before the caller has
        # heard the question (e.g. during the account notice) is not taken as an answer.
        last_must = max((i for i, a in enumerate(says) if a.must_finish), default=-1)
        pressed: str | None = None
        for action in actions:
            if isinstance(action, Say):
                if action is deferred:
                    continue
                if pressed and not action.must_finish:
                    continue  # barge-in by key: drop queued prompts except what must finish
                can_barge = not pressed and says.index(action) > last_must
                digit = await say(action, escape if can_barge else "")
                pressed = pressed or digit
            elif await settle_action(action):
                return None
        if listen is None:
            return None
        if pressed:
            wanted = listen.grammar.digits or 1
            rest = ""
            if wanted > 1:
                rest = await channel.get_data(SILENCE, int(listen.timeout * 1000), wanted - 1) or ""
            event: Event = Dtmf(pressed + rest)
        else:
            prompt = None
            if deferred is not None:
                prompt = _strip_wav(await asyncio.to_thread(tts.render, deferred.text, script.locale))
                start = clock()
            event = await listener(channel, listen, prompt)
            if deferred is not None:
                await ports.record_transcript_turn(call_id, "agent", deferred.text, start, clock())
                result.prompts_played.append(deferred.prompt_id)
        state["factor"] = bool(listen.grammar.digits)
        return event

    async def report(action: Record) -> None:
        data = dict(action.data)
        result.outcomes.append(action.outcome)
        await ports.record_outcome(call_id, action.outcome, data)
        if action.outcome == "wrong_number":
            await ports.mark_phone(debtor.debtor_id, debtor.phone, "wrong_number")
        elif action.outcome == "cease":
            await ports.add_cease(debtor.debtor_id)
        log_event(log, "outcome", call_id=call_id, kind=action.outcome, verified=engine.verified)

    async def transfer(action: Transfer) -> None:
        context = {**action.context, "call_id": call_id, "debtor_id": debtor.debtor_id, "queue": action.queue}
        result.transferred_to = action.queue
        result.reason = "transfer"
        await ports.transfer_context(call_id, context)
        await channel.set_variable("BOT_CALL_ID", call_id)
        await channel.set_variable("BOT_DEBTOR_ID", debtor.debtor_id)
        await channel.set_variable("BOT_VERIFIED", "1" if context.get("verified") else "0")
        await channel.set_variable("BOT_REASON", context.get("reason", ""))
        await channel.set_variable("BOT_INTENTS", ",".join(context.get("intents", [])))
        if context.get("promise"):
            await channel.set_variable("BOT_PROMISE", json.dumps(context["promise"], sort_keys=True))
        await channel.exec("UserEvent", f"{vocab.BOT_TRANSFER},{vocab.CALL_ID_HEADER}: {call_id},Queue: {action.queue},"
                                        f"Verified: {context.get('verified')}")
        log_event(log, "transfer", call_id=call_id, queue=action.queue, verified=context.get("verified"))
        if queue_app:
            await channel.exec("Queue", action.queue)

    state: dict[str, Any] = {"factor": False}
    hook = recognize if hasattr(recognize, "resolve") else None  # agi.media.speech.CallSpeech
    await start_voice()
    if voice is not None and hook is not None and hasattr(hook, "words"):
        voice.screen = hook.words
        voice.early = getattr(hook, "prefetch", None)  # decode on the provisional endpoint
    actions = engine.start()
    try:
        while True:
            event = await (voice_perform(actions) if voice is not None else perform(actions))
            if event is None:
                break
            at = clock()
            was_verified = engine.verified
            actions = engine.handle(event)
            if engine.verified and not was_verified:  # a fact the compliance gate reads: reported when it happens
                await ports.record_outcome(call_id, "verified", {"verified": True})
            if isinstance(event, Dtmf):
                # Keys go into the transcript as pressed ("1"); a verification factor never does: only
                # whether it matched (the QA lexicons read "[verified]" as the callee's confirmation).
                text = event.digit
                if state["factor"]:
                    text = "[verified]" if engine.verified and not was_verified else "[not verified]"
                await ports.record_transcript_turn(call_id, "callee", text, at, at)
    except Hangup:
        for action in engine.handle(CallerHangup()):
            if isinstance(action, End):
                result.reason = action.reason
    finally:
        if voice is not None:
            await voice.close()
            if voice_facts is not None:
                voice_facts.extend(voice.facts)
    result.verified = engine.verified
    result.path = list(engine.state.path)
    log_event(log, "script_end", call_id=call_id, reason=result.reason, verified=result.verified)
    return result
