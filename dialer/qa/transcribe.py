"""Transcripts from the PBX's recordings: each leg VAD-gated (silence is never decoded), its utterances
recognised through agi/media/asr.py, the two legs merged into one transcript with speakers and timings
(docs/CONTRACTS.md shape, source `asr`), ready for `dialer qa run`.

Resumable: each leg's text is committed as soon as it is done (store table leg_transcripts) and the call's
transcript once both legs are; a restarted batch skips what is committed, so a crash loses nothing and
redoes nothing finished (at most the one leg it was decoding). A leg whose file no longer matches the
hash sealed at hang-up is refused, never transcribed.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agi.media.asr import WINDOW_SECONDS, Recognizer, read_wav, recognize_utterance
from agi.media.frames import Utterance
from agi.media.vad import analyze, frames_of
from agi.script.model import VoiceParams
from common.log import log_event
from dialer.gate import zones
from dialer.store import Store
from dialer.store import recordings as rec_store
from dialer.store.audit import file_sha256, write_head
from dialer.store.qa import save_transcript

log = logging.getLogger("dialer.qa.transcribe")

# leg → speaker: what the debtor said, and what the debtor heard (the bot, or the collector)
LEG_SPEAKERS = {"callee": "callee", "heard": "agent"}
# a recording's turns: endpointed at 0.6 s of silence, cut before Whisper's 10-s window
RECORDING_VAD = VoiceParams(end_silence_ms=600, max_utterance_s=WINDOW_SECONDS - 0.5)
RATE = 8000


@dataclass
class LegText:
    turns: list[dict[str, Any]]
    audio_seconds: float
    speech_seconds: float
    cpu_seconds: float
    backend: str


def _pcm8k(path: Path) -> bytes:
    pcm, rate = read_wav(path)
    if rate == RATE:
        return pcm
    import soxr

    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    y = soxr.resample(x, rate, RATE)
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


def speech_pieces(pcm: bytes, *, gate: bool = True, params: VoiceParams = RECORDING_VAD) -> list[Utterance]:
    """What the recogniser is given: the VAD's utterances (gate), or the whole leg in 10-s windows."""
    if gate:
        return [f for f in analyze(frames_of(pcm), params) if isinstance(f, Utterance)]
    step = int((WINDOW_SECONDS - 0.5) * RATE) * 2
    return [Utterance(pcm[i:i + step], i / 2 / RATE, min(len(pcm), i + step) / 2 / RATE, i / 2 / RATE)
            for i in range(0, len(pcm), step)]


def transcribe_pcm(pcm: bytes, recognizer: Recognizer, speaker: str, *, gate: bool = True) -> LegText:
    """One leg's audio (16-bit 8 kHz mono) → its turns [{speaker, text, start, end, confidence}]."""
    cpu0 = time.process_time()
    pieces = speech_pieces(pcm, gate=gate)
    turns = []
    backend = getattr(recognizer, "name", type(recognizer).__name__)
    for u in pieces:
        r = recognize_utterance(recognizer, u)
        backend = r.backend
        if r.text:
            turns.append({"speaker": speaker, "text": r.text, "start": round(r.start, 2), "end": round(r.end, 2),
                          "confidence": round(r.confidence, 3)})
    return LegText(turns, round(len(pcm) / 2 / RATE, 3), round(sum(u.seconds for u in pieces), 3),
                   round(time.process_time() - cpu0, 3), backend)


def transcribe_file(path: Path, recognizer: Recognizer, speaker: str, *, gate: bool = True) -> LegText:
    return transcribe_pcm(_pcm8k(path), recognizer, speaker, gate=gate)


@dataclass
class BatchSummary:
    calls: int = 0            # transcripts saved in this run
    legs: int = 0             # legs decoded in this run
    legs_resumed: int = 0     # legs a previous (interrupted) run had already committed
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    cpu_seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _transcript(facts: dict[str, Any], legs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = json.loads(facts.get("config_json") or "{}")
    started = zones.local_time(facts["placed_at"], facts.get("phone"), facts.get("timezone"))
    turns = sorted((t for leg in LEG_SPEAKERS for t in legs[leg]["turns"]), key=lambda t: (t["start"], t["end"]))
    return {"call_id": facts["call_id"], "lang": (facts.get("locale") or "en")[:2],
            "jurisdiction": facts.get("profile") or "cn", "started_at": started.isoformat(),
            "turns": [{k: t[k] for k in ("speaker", "text", "start", "end")} for t in turns],
            "agent": facts.get("agent") or "bot", "campaign": facts.get("campaign"),
            "institution": config.get("institution")}


def transcribe_batch(store: Store, recognizer_for: Callable[[str], Recognizer], *, since: float | None = None,
                     gate: bool = True, actor: str = "qa", now: Callable[[], float] = time.time,
                     on_call: Callable[[str, BatchSummary], None] | None = None,
                     calls: list[str] | None = None) -> BatchSummary:
    """Transcribe every recorded call (since `since`) that has no transcript yet; see the module doc."""
    todo = calls if calls is not None else rec_store.calls_to_transcribe(store, tuple(LEG_SPEAKERS), since=since)
    summary = BatchSummary()
    for call_id in todo:
        try:
            _one_call(store, call_id, recognizer_for, gate, actor, now, summary)
        except Exception as exc:  # noqa: BLE001 - one bad call is named and the batch goes on
            summary.failed[call_id] = str(exc)
            log_event(log, "qa.transcribe_failed", level=logging.WARNING, call=call_id, error=str(exc))
        if on_call is not None:
            on_call(call_id, summary)
    return summary


def _one_call(store: Store, call_id: str, recognizer_for: Callable[[str], Recognizer], gate: bool, actor: str,
              now: Callable[[], float], summary: BatchSummary) -> None:
    facts = rec_store.transcribe_facts(store, call_id)
    if facts is None:
        raise ValueError(f"call {call_id}: not in the store's attempts")
    recs = {r["leg"]: r for r in rec_store.recordings_for(store, call_id)}
    done = rec_store.leg_transcripts(store, call_id)
    lang = (facts.get("locale") or "en")[:2]
    for leg, speaker in LEG_SPEAKERS.items():
        if leg in done:
            summary.legs_resumed += 1
            continue
        rec = recs[leg]
        path = Path(rec["path"])
        if file_sha256(path) != rec["sha256"]:
            raise ValueError(f"call {call_id} leg {leg}: {path} differs from the hash sealed at hang-up "
                             "(dialer audit verify); not transcribed")
        text = transcribe_file(path, recognizer_for(lang), speaker, gate=gate)
        rec_store.save_leg_transcript(store, call_id, leg, speaker, text.turns, audio_seconds=text.audio_seconds,
                                      speech_seconds=text.speech_seconds, cpu_seconds=text.cpu_seconds,
                                      recording_sha256=rec["sha256"], backend=text.backend, at=now())
        summary.legs += 1
        summary.audio_seconds += text.audio_seconds
        summary.speech_seconds += text.speech_seconds
        summary.cpu_seconds += text.cpu_seconds
        done[leg] = {"turns": text.turns}
    save_transcript(store, _transcript(facts, done), source="asr", actor=actor, at=now())
    write_head(store)
    summary.calls += 1
