"""The recognizer hook of a live call: `CallSpeech` is what `run_script(..., recognize=...)` takes.

- The model: one recognizer per language per process, loaded off the event loop (`await preload(lang)`), decoded
  by the process's shared recognition service (agi/media/recognition.py: a pool sized from the cores, earliest
  deadline first; CTranslate2 releases the GIL), so one call's decoding never blocks another call's audio.
- A deadline per utterance (`deadline_s` from the end of the turn's endpointing): a hearing not done by then
  becomes `Speech("", 0)` (`how="late"`), the node's no-match path ("sorry, I did not catch that…"): an
  overloaded pool makes the bot ask again, never hang.
- One turn: `await speech(utterance, listen, locale)` -> `Heard` (agi/media/answers.py): `.event` is
  `Speech(text, confidence)` or `NoInput()`, or None with `.confirm_question` ("did you say …?") to ask first;
  the flow then plays the question, hears the reply (voice or key 1/2) and calls `resolve`.
- A provisional endpoint (`early_decode_ms` of quiet, before the turn's `end_silence_ms`): `prefetch(utterance)`
  starts the hearing at once, so the decode runs while the end-of-turn silence runs out; the turn's utterance
  (same start and end when the caller said no more) takes that hearing. If the caller talks on, it is
  cancelled. Skipped when the pool is behind (no speculative work on an overloaded pool).
- A short answer over a question ("yes", "是"): the barge-in policy would take it for a false interruption (a
  cough) and resume the prompt; `words(utterance)` lets the voice session ask the recognizer first: words
  make it an answer, a cough or a filler (嗯, um) still resumes. The Heard is kept, so it is decoded once.
- Voice cues (agi/media/cues.py): each answer's loudness, pitch and rate against this caller's first answers,
  and anger / distress words, give `Speech.cues` ("agitated", "distressed"), which the script's `on_cue` routes.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from agi.media.answers import Heard, hear, resolve_confirmation
from agi.media.asr import Recognition, Recognizer
from agi.media.cues import Cues, CueTracker
from agi.media.recognition import DeadlineMissed, RecognitionService, shared_service
from agi.script.model import Grammar, Listen, NoInput, Speech


FILLERS = {"嗯", "嗯嗯", "啊", "哦", "呃", "额", "唉", "哎", "喂", "um", "uh", "hmm", "mm", "mhm", "ah", "oh", "er",
           "erm", "huh", "hm"}
CONFIRM_LISTEN = Listen(Grammar(intents=("confirm_identity", "deny_identity"),
                                dtmf=(("1", "confirm_identity"), ("2", "deny_identity"))), timeout=5.0)
YES_KEYS, NO_KEYS = ("1",), ("2",)


def lang_of(locale: str) -> str:
    return "zh" if locale.lower().startswith("zh") else "en"


async def preload(lang: str) -> Recognizer:
    """Load (once per process) the language's recognizer, off the event loop."""
    return await shared_service().preload(lang)


def is_filler(text: str) -> bool:
    """Only hesitation sounds (嗯, 啊, um): not an answer."""
    words = re.findall(r"[\u4e00-\u9fff]|[a-z']+", text.lower())
    return not words or all(w in FILLERS for w in words) or "".join(words) in FILLERS


@dataclass
class CallSpeech:
    """One call's recognizer hook (the debtor's local `today` resolves dates said in words)."""

    lang: str
    today: date
    payday: int | None = None
    recognizer: Recognizer | None = None
    service: RecognitionService | None = None  # None: the process's shared service
    deadline_s: float | None = None  # None: the service's default

    def __post_init__(self) -> None:
        self._heard: dict[tuple[float, float], Heard] = {}
        self._early: dict[tuple[float, float], tuple[asyncio.Task, Listen | None]] = {}  # hearings started on a provisional endpoint
        self.early_used = 0  # turns whose hearing was started early (bench/voice.py reports it)
        self.cues = CueTracker(self.lang)  # loudness, pitch, rate against this caller's first turns + words
        self.last_cues: Cues | None = None
        self.listen: Listen | None = None  # the node listening now (set by the flow; used to screen short answers)

    async def _hear(self, utterance: Any, listen: Listen | None) -> Heard:
        key = (round(float(utterance.start), 3), round(float(utterance.end), 3))
        if key in self._heard:
            return self._heard.pop(key)
        early = self._early.pop(key, None)
        for stale, _ in self._early.values():  # the caller talked on after those pauses
            stale.cancel()
        self._early.clear()
        if early is not None:
            task, early_listen = early
            if early_listen == listen and not task.cancelled():
                self.early_used += 1
                return await task
            task.cancel()  # heard for another question: hear it again for this one
        return await self._decode(utterance, listen)

    def prefetch(self, utterance: Any) -> None:
        """A provisional endpoint: start hearing the turn now (the frame task calls this; it never waits)."""
        key = (round(float(utterance.start), 3), round(float(utterance.end), 3))
        if key in self._early or key in self._heard:
            return
        for old in [k for k in self._early if k[0] == key[0]]:  # the same turn, an earlier pause: superseded
            self._early.pop(old)[0].cancel()
        service = self.service or shared_service()
        load = service.load()
        if load.queued >= load.workers:
            return
        listen = self.listen
        self._early[key] = (asyncio.get_running_loop().create_task(self._decode(utterance, listen)), listen)

    async def _decode(self, utterance: Any, listen: Listen | None) -> Heard:
        service = self.service or shared_service()
        deadline = time.monotonic() + (self.deadline_s if self.deadline_s is not None
                                       else service.deadline_for(self.lang))
        rec = self.recognizer

        def decode(model: Recognizer) -> Heard:
            return hear(utterance, listen, rec or model, today=self.today, payday=self.payday)

        try:
            return await service.run(self.lang, decode, deadline=deadline)
        except DeadlineMissed:
            return late(utterance, self.lang)

    async def __call__(self, utterance: Any, listen: Listen, locale: str) -> Heard:
        heard = await self._hear(utterance, listen)
        if heard.how == "late" or not heard.recognition.is_speech:
            return heard
        cues = self.cues.observe(utterance.pcm, heard.recognition.text, int(getattr(utterance, "sample_rate", 8000)))
        self.last_cues = cues
        if cues.names and isinstance(heard.event, Speech):
            heard = replace(heard, event=replace(heard.event, cues=cues.names))
        return heard

    async def words(self, utterance: Any) -> bool:
        """Did the caller say words (not a cough, not 嗯)? The Heard is kept for the turn's `__call__`."""
        heard = await self._hear(utterance, self.listen)
        if heard.how == "late":
            return False  # not heard in time: the prompt resumes (the caller can answer after it)
        key = (round(float(utterance.start), 3), round(float(utterance.end), 3))
        self._heard[key] = heard
        return heard.recognition.is_speech and not is_filler(heard.recognition.text)

    async def reply(self, utterance: Any) -> Heard:
        """The caller's answer to "did you say …?"."""
        return await self._hear(utterance, CONFIRM_LISTEN)

    def resolve(self, pending: Heard, reply: Heard | str | None) -> Speech:
        """Yes (by voice or key 1) -> Speech(the candidate answer); anything else -> Speech("", 0): the node's
        no-match path asks again. The bot never acts on an answer the caller did not confirm."""
        if isinstance(reply, str):
            yes = reply in YES_KEYS and pending.match is not None
        elif reply is None:
            yes = False
        else:
            yes = isinstance(resolve_confirmation(pending, reply, lang=self.lang, today=self.today), Speech)
        if yes and pending.match is not None:
            return Speech(pending.match.answer, pending.match.score)
        return Speech("", 0.0)


def late(utterance: Any, lang: str) -> Heard:
    """An utterance the pool did not decode before its deadline: the node's no-match path (ask again)."""
    r = Recognition("", 0.0, 1.0, float(utterance.start), float(utterance.end), "late", lang, 0.0)
    return Heard(r, Speech("", 0.0), None, "late")


def transcript_meta(heard: Heard) -> dict[str, Any]:
    """What the callee's transcript turn carries about the recognizer's hearing (QA reads `text` as usual)."""
    r = heard.recognition
    meta: dict[str, Any] = {"backend": r.backend, "confidence": round(r.confidence, 3),
                            "no_speech_prob": round(r.no_speech_prob, 3), "asr_start": round(r.start, 3),
                            "asr_end": round(r.end, 3), "how": heard.how, "cpu_seconds": round(r.cpu_seconds, 3)}
    if heard.match is not None:
        meta["matched"] = heard.match.answer
    cues = getattr(heard.event, "cues", ())
    if cues:
        meta["cues"] = list(cues)
    if heard.event is None and heard.confirm_question:
        meta["confirm"] = heard.confirm_question
    return meta


__all__ = ["CallSpeech", "CONFIRM_LISTEN", "NoInput", "Speech", "is_filler", "lang_of", "late", "preload",
           "transcript_meta"]
