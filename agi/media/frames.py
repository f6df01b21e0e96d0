"""The frames of a call's live audio path, in pipecat's tiers (our own small version, no code copied).

`SystemFrame`s (an interruption, speech started/stopped, the caller gone) jump the pipeline's queue;
`DataFrame`s (caller audio, an endpointed utterance, a transcript, prompt audio) keep their order.
`Uninterruptible` marks output an interruption must not cut (a `must_finish` prompt).
Times are seconds from the start of the call (the AGI session), on the flow's clock.
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = FRAME_SAMPLES * 2  # 16-bit PCM


class Frame:
    """Anything that moves along a call's pipeline."""


class SystemFrame(Frame):
    """Handled before any queued data frame (an interruption must not wait behind audio)."""


class DataFrame(Frame):
    """Ordered data: audio, utterances, transcripts."""


class Uninterruptible:
    """Mixin: an interruption leaves this frame (and the work it stands for) alone."""


@dataclass(frozen=True)
class AudioIn(DataFrame):
    """20 ms of the caller's audio, 16-bit little-endian PCM at 8 kHz mono, starting `at` seconds into the call."""

    pcm: bytes
    at: float


@dataclass(frozen=True)
class SpeechStarted(SystemFrame):
    """The VAD confirmed speech; `at` is the onset (the first voiced frame of the trigger), not the decision."""

    at: float
    decided_at: float


@dataclass(frozen=True)
class SpeechStopped(SystemFrame):
    """The VAD heard the end-of-turn silence after speech that began at `started`; speech ended at `at`."""

    at: float
    started: float


@dataclass(frozen=True)
class Interruption(SystemFrame):
    """The caller took the turn while the bot was speaking: by voice or by key (`digit`).

    Keys and voice produce the same frame; the flow turns it into the engine's `BargeIn`."""

    at: float
    source: str  # "voice" | "dtmf"
    digit: str | None = None


@dataclass(frozen=True)
class CallerHangup(SystemFrame):
    at: float


@dataclass(frozen=True)
class Utterance(DataFrame):
    """One endpointed turn of the caller: PCM 16-bit 8 kHz mono, from `start` to `end` seconds into the call.

    This is what a recognizer (agi/media/asr.py) receives; `pcm` includes a short pre-roll before the
    VAD's onset so the first phoneme is not clipped (`start` is the start of `pcm`)."""

    pcm: bytes
    start: float
    end: float
    speech_start: float = 0.0  # the VAD's onset (>= start)

    @property
    def seconds(self) -> float:
        return round(self.end - self.start, 3)

    @property
    def speech_seconds(self) -> float:
        return round(self.end - self.speech_start, 3)


@dataclass(frozen=True)
class EarlyTurn(DataFrame):
    """A provisional endpoint: the caller has been quiet for `early_decode_ms` (less than the end of turn).
    `utterance` is what the turn's `Utterance` will be if no more speech comes (same pcm, start and end), so a
    recognizer can start on it while the endpointing silence runs out."""

    utterance: Utterance


@dataclass(frozen=True)
class Transcript(DataFrame):
    """What a recognizer made of one utterance."""

    text: str
    confidence: float
    start: float
    end: float


@dataclass(frozen=True)
class PromptAudio(DataFrame):
    """A prompt the bot plays (a WAV path without extension), from `offset_ms` into it."""

    path: str
    prompt_id: str
    offset_ms: int = 0


@dataclass(frozen=True)
class MustFinishPrompt(PromptAudio, Uninterruptible):
    """A legally required sentence: never cut by an interruption."""
