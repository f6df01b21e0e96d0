"""One call's voice session: the tap's frames through `VoiceTurns` in a background task, prompts played as
`Playback`s that voice or keys can interrupt (never a `must_finish` one), false interruptions resumed from
`endpos`, and the caller's endpointed utterances handed to the flow.

A prompt is `CONTROL STREAM FILE`; confirmed speech over an interruptible one sends `PlaybackControl.stop`
(AMI ControlPlayback, < 2.5 ms) at once, then waits for the policy: a real interruption ends the prompt,
a short sound plays the rest of it from where it stopped (`offsetms` = `endpos`). No AGI command is ever
cancelled midway (the session would lose its place in the reply stream): listening polls keys in short
`WAIT FOR DIGIT` slices and checks for an utterance between them.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from agi.media.bargein import DroppedUtterance, ResumePrompt, StopPrompt, VoiceTurns
from agi.media.frames import EarlyTurn, Frame, Interruption, SpeechStarted, SpeechStopped, Utterance
from agi.media.pipeline import FrameQueue
from agi.media.tap import CallAudio
from agi.ports import CallChannel, PlaybackControl
from agi.script.model import VoiceParams
from common.log import log_event

log = logging.getLogger("agi.media.playback")

POLL_MS = 100  # WAIT FOR DIGIT slice while listening
DIGITS = "0123456789*#"


def silence_file(directory: Path) -> str:
    """A POLL_MS-long silent WAV (8 kHz 16-bit mono) in `directory`, made once; returns it without extension."""
    import wave

    path = Path(directory) / f"listen-silence-{POLL_MS}ms.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\x00\x00" * (8 * POLL_MS))
        tmp.replace(path)
    return str(path.with_suffix(""))


@dataclass
class Playback:
    """A prompt as it was played (LiveKit's SpeechHandle shape): interrupted or not, resumed how often."""

    prompt_id: str
    path: str
    allow_interruptions: bool
    started: float = 0.0
    ended: float = 0.0
    interruption: Interruption | None = None
    resumes: int = 0
    stopped_at_ms: list[int] = field(default_factory=list)  # endpos of each stop, ms into the prompt

    @property
    def interrupted(self) -> bool:
        return self.interruption is not None


class VoiceSession:
    """Live audio for one call. `start()` at answer, `close()` at hang-up (tap, socket and task go)."""

    def __init__(self, audio: CallAudio, playback: PlaybackControl, call_id: str, channel: str,
                 now: Callable[[], float], params: VoiceParams | None = None, classify: Any = None):
        self.audio, self.playback, self.call_id, self.channel = audio, playback, call_id, channel
        self.now = now
        self.turns = VoiceTurns(params or VoiceParams(), classify)
        self.utterances = FrameQueue()
        self.facts: list[dict[str, Any]] = []  # what happened, for the transcript, tests and bench/voice.py
        self._decision: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self.frames = 0
        # With a recognizer: does a short sound that stopped a prompt hold words ("yes", "是")? Then it is an
        # answer, not a false interruption (a cough, 嗯 still resume). None: the VAD's timing alone decides.
        self.screen: Callable[[Utterance], Awaitable[bool]] | None = None
        self._pending_resume: ResumePrompt | None = None
        self._screens: set[asyncio.Task] = set()
        # With a recognizer: a provisional endpoint (EarlyTurn) starts the decode while the end-of-turn
        # silence runs out; the turn's Utterance then finds it done or under way (CallSpeech.prefetch).
        self.early: Callable[[Utterance], None] | None = None

    async def start(self) -> "VoiceSession":
        await self.audio.start()
        self._task = asyncio.create_task(self._run(), name=f"voice-{self.call_id}")
        return self

    def set_params(self, params: VoiceParams) -> None:
        self.turns.set_params(params)

    # -- the frame task -----------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            async for frame in self.audio.frames():
                self.frames += 1
                for out in self.turns.feed(frame):
                    await self._handle(out)
                if self._pending_resume is not None:  # no utterance came with it: nothing to screen
                    self._decide(self._pending_resume)
                    self._pending_resume = None
            for out in self.turns.flush():
                await self._handle(out)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the call goes on with keys only
            log.exception("voice session failed call=%s", self.call_id)
        finally:
            self._decide(None)
            self.utterances.put(None)

    async def _handle(self, out: Frame) -> None:
        if isinstance(out, StopPrompt):
            t0 = time.monotonic()
            try:
                await self.playback.stop(self.call_id, self.channel)
            except Exception as exc:  # noqa: BLE001
                log_event(log, "bargein.stop_failed", level=logging.WARNING, call_id=self.call_id, error=str(exc))
            self._fact("stop", onset=out.onset, at=out.at, stop_ms=round((time.monotonic() - t0) * 1000, 2),
                       wall=round(time.time(), 4))
        elif isinstance(out, ResumePrompt):
            self._fact("false_interruption", onset=out.onset, at=out.at, speech_ms=out.speech_ms)
            if self.screen is not None:
                self._pending_resume = out  # its utterance follows in the same batch: ask the recognizer
            else:
                self._decide(out)
        elif isinstance(out, Interruption):
            self._fact("interruption", onset=out.at, source=out.source)
            self._decide(out)
        elif isinstance(out, Utterance):
            self._fact("utterance", start=out.start, speech_start=out.speech_start, end=out.end)
            self.utterances.put(out)
        elif isinstance(out, DroppedUtterance):
            u = out.utterance
            pending, self._pending_resume = self._pending_resume, None
            if pending is not None and out.reason == "false_interruption" and self.screen is not None:
                task = asyncio.create_task(self._screen(pending, u), name=f"screen-{self.call_id}")
                self._screens.add(task)
                task.add_done_callback(self._screens.discard)
                return
            if pending is not None:
                self._decide(pending)
            self._fact("dropped_utterance", reason=out.reason, speech_start=u.speech_start, end=u.end)
        elif isinstance(out, EarlyTurn):
            if self.early is not None:
                self.early(out.utterance)
        elif isinstance(out, (SpeechStarted, SpeechStopped)):
            self._fact("speech_started" if isinstance(out, SpeechStarted) else "speech_stopped", at=out.at)

    async def _screen(self, resume: ResumePrompt, u: Utterance) -> None:
        """A short sound stopped the prompt: words make it the caller's answer (the prompt stays stopped and
        the utterance goes to the flow); no words resume the prompt, as without a recognizer."""
        assert self.screen is not None
        try:
            words = await self.screen(u)
        except Exception as exc:  # noqa: BLE001 - recognizer trouble: behave as without one
            log_event(log, "voice.screen_failed", level=logging.WARNING, call_id=self.call_id, error=str(exc))
            words = False
        if not words or self._decision is None or self._decision.done():
            self._fact("dropped_utterance", reason="false_interruption", speech_start=u.speech_start, end=u.end)
            self._decide(resume)
            return
        p = self.turns.prompt
        if p is not None:
            p.decided = "interrupt"
        self.turns.accept_from = u.speech_start
        self._fact("short_answer", onset=resume.onset, speech_ms=resume.speech_ms, end=u.end)
        self._fact("interruption", onset=resume.onset, source="voice")
        self._fact("utterance", start=u.start, speech_start=u.speech_start, end=u.end)
        self.utterances.put(u)
        self._decide(Interruption(at=resume.onset, source="voice"))

    def _fact(self, kind: str, **data: Any) -> None:
        self.facts.append({"kind": kind, **data})
        log_event(log, f"voice.{kind}", call_id=self.call_id, **data)

    def _decide(self, value: Any) -> None:
        if self._decision is not None and not self._decision.done():
            self._decision.set_result(value)

    # -- prompts ------------------------------------------------------------------------------
    async def play(self, channel: CallChannel, path: str, prompt_id: str, *, interruptible: bool,
                   escape: str = "", duration_ms: int | None = None) -> tuple[Playback, str | None]:
        """Play one prompt; returns how it went and the key that interrupted it, if one did."""
        pb = Playback(prompt_id, path, interruptible, started=self.now())
        offset = 0
        while True:
            self._decision = asyncio.get_running_loop().create_future()
            self.turns.prompt_started(self.now(), interruptible)
            self._fact("play", prompt_id=prompt_id, offset_ms=offset, interruptible=interruptible,
                       wall=round(time.time(), 4))
            digit, endpos = await channel.control_stream_file(path, escape if interruptible else "", offset)
            self._fact("played", prompt_id=prompt_id, endpos=endpos, wall=round(time.time(), 4))
            state = self.turns.prompt
            if digit:
                pb.interruption = self.turns.key_pressed(self.now(), digit)
                self._fact("interruption", onset=pb.interruption.at, source="dtmf")
                break
            if state is None or state.stopped_at is None:
                break  # played to the end
            pos = endpos if endpos is not None and endpos >= 0 else None  # CONTROL STREAM FILE: ms into the file
            if pos is not None:
                pb.stopped_at_ms.append(pos)
            p = self.turns.params
            try:
                decision = await asyncio.wait_for(
                    asyncio.shield(self._decision),
                    (p.false_interruption_ms + p.resume_silence_ms) / 1000 + (4.0 if self.screen else 1.0))
            except asyncio.TimeoutError:
                decision = Interruption(at=state.onset or self.now(), source="voice")
            if isinstance(decision, Interruption) or decision is None:
                pb.interruption = decision if isinstance(decision, Interruption) else None
                break
            # a false interruption: the rest of the prompt, from where it stopped
            if pos is None or (duration_ms is not None and pos >= duration_ms - 40):
                break
            offset = max(0, pos - p.resume_rewind_ms)
            pb.resumes += 1
            self._fact("resume", prompt_id=prompt_id, offset_ms=offset)
        self.turns.prompt_ended(self.now())
        self._decision = None
        pb.ended = self.now()
        return pb, digit

    # -- listening ----------------------------------------------------------------------------
    async def listen(self, channel: CallChannel, timeout: float, fill: str | None = None) -> Utterance | str | None:
        """Wait for the caller's turn: an utterance, a key (returned as its digit), or None after `timeout`
        seconds without speech (a turn in progress at the deadline is waited for).

        `fill`, a short silent file (path without extension), is played in each slice instead of WAIT FOR
        DIGIT: the line then carries silence while the bot listens, as a phone line does (without it no RTP
        flows, and the far end cannot tell a silent bot from a dead line: Asterisk's WaitForSilence never
        fires)."""
        self.turns.listening(self.now())
        deadline = self.now() + timeout
        while True:
            while not self.utterances.empty():
                item = self.utterances.get_nowait()
                if item is None:
                    self.utterances.put(None)  # the stream ended: keys only from here
                    break
                if isinstance(item, Utterance):
                    return item
            speaking = self.turns.vad.speaking
            if self.now() >= deadline and not speaking:
                return None
            if fill:
                digit, _ = await channel.stream_file(fill, DIGITS)
            else:
                digit = await channel.wait_for_digit(POLL_MS)
            if digit:
                self.turns.key_pressed(self.now(), digit)
                return digit

    def drain(self) -> None:
        """Forget utterances queued so far (they answered nothing the bot asks next)."""
        kept = []
        while not self.utterances.empty():
            item = self.utterances.get_nowait()
            if item is None:
                kept.append(item)
        for item in kept:
            self.utterances.put(item)

    async def close(self) -> None:
        for task in list(self._screens):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.audio.close()
        self._decide(None)
