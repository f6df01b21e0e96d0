"""Voice activity: a pure `VadAnalyzer` (20 ms frames in; onset, end of turn and utterances out) and
`VadProcessor`, the thin step that feeds it from a call's audio frames.

webrtcvad decides voiced / unvoiced per frame, gated by level (a frame quieter than `min_level_db` is never
speech) and by spectral flatness (a frame as flat as hiss, above `max_flatness`, is not either). Speech is confirmed when `start_frames` of the last `start_window` frames are voiced (a multi-frame
trigger: one loud click is not speech); the onset is the first voiced frame of that window. The turn ends
after `end_silence_ms` without a voiced frame (endpointing), and the analyzer emits one `Utterance` with a
short pre-roll. webrtcvad misfires on noise it has heard for under a second (docs/ARCHITECTURE.md), so one
analyzer is fed every frame from the start of the call and keeps its state across nodes; `set_params`
changes the thresholds per node without resetting it.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from agi.media.frames import FRAME_BYTES, FRAME_MS, AudioIn, EarlyTurn, Frame, SpeechStarted, SpeechStopped, Utterance
from agi.script.model import VoiceParams

PREROLL_FRAMES = 15  # 300 ms of audio kept before the onset, so a recognizer hears the first phoneme
FRAME_S = FRAME_MS / 1000.0


_WINDOW = np.hanning(FRAME_BYTES // 2)


def level_db(pcm: bytes) -> float:
    """RMS level of 16-bit PCM in dBFS (-120 for digital silence)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if not len(x):
        return -120.0
    rms = math.sqrt(float(np.mean(x * x)))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -120.0


def flatness(pcm: bytes) -> float:
    """Spectral flatness of one frame (0: tonal, like voiced speech; ~0.5: white noise)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) != len(_WINDOW):
        return 0.0
    p = np.abs(np.fft.rfft(x * _WINDOW)) ** 2 + 1e-9
    return float(np.exp(np.mean(np.log(p))) / np.mean(p))


def webrtc_classifier(mode: int) -> "Classifier":
    """webrtcvad on 8 kHz 20 ms frames; `set_mode` keeps its noise estimate."""
    import webrtcvad

    vad = webrtcvad.Vad(mode)

    class _C:
        def __call__(self, pcm: bytes) -> bool:
            return vad.is_speech(pcm, 8000)

        def set_mode(self, m: int) -> None:
            vad.set_mode(m)

    return _C()


Classifier = Callable[[bytes], bool]


@dataclass(frozen=True)
class FrameDecision:
    """What the analyzer made of one frame (for the barge-in policy and for tests)."""

    at: float
    voiced: bool
    speaking: bool


class VadAnalyzer:
    """Frames in, `SpeechStarted` / `SpeechStopped` + `Utterance` out. Pure apart from webrtcvad's state:
    time comes from the frames (`AudioIn.at`), nothing reads a clock."""

    def __init__(self, params: VoiceParams | None = None, classify: Classifier | None = None):
        self.params = params or VoiceParams()
        self.classify = classify or webrtc_classifier(self.params.vad_mode)
        self._window: deque[tuple[float, bool]] = deque(maxlen=self.params.start_window)
        self._preroll: deque[AudioIn] = deque(maxlen=PREROLL_FRAMES)
        self._turn: list[AudioIn] = []
        self.speaking = False
        self.onset: float | None = None
        self.last_voiced: float | None = None  # end of the last voiced frame
        self.frames = 0
        self.last: FrameDecision | None = None
        self._early_for: float | None = None  # the last_voiced an EarlyTurn was emitted for

    def set_params(self, params: VoiceParams) -> None:
        """New thresholds for the next node; the classifier's state and a turn in progress are kept."""
        if params.vad_mode != self.params.vad_mode and hasattr(self.classify, "set_mode"):
            self.classify.set_mode(params.vad_mode)  # type: ignore[attr-defined]
        if params.start_window != self.params.start_window:
            self._window = deque(self._window, maxlen=params.start_window)
        self.params = params

    def voiced(self, pcm: bytes) -> bool:
        if len(pcm) != FRAME_BYTES:
            return False
        if level_db(pcm) < self.params.min_level_db:
            return False
        if flatness(pcm) > self.params.max_flatness:
            return False  # hiss and white noise: webrtcvad calls much of it speech
        return bool(self.classify(pcm))

    def feed(self, frame: AudioIn) -> list[Frame]:
        """One 20 ms frame; returns what it completed (an onset, or an end of turn and its utterance)."""
        p = self.params
        self.frames += 1
        voiced = self.voiced(frame.pcm)
        out: list[Frame] = []
        if voiced:
            self.last_voiced = frame.at + FRAME_S
        if not self.speaking:
            self._window.append((frame.at, voiced))
            self._preroll.append(frame)
            if sum(v for _, v in self._window) >= p.start_frames:
                self.speaking = True
                self.onset = next(t for t, v in self._window if v)
                self._turn = list(self._preroll)
                self._window.clear()
                out.append(SpeechStarted(at=round(self.onset, 3), decided_at=round(frame.at + FRAME_S, 3)))
        else:
            self._turn.append(frame)
            assert self.onset is not None and self.last_voiced is not None
            silent_for = frame.at + FRAME_S - self.last_voiced
            too_long = frame.at + FRAME_S - self.onset >= p.max_utterance_s
            if silent_for * 1000 >= p.end_silence_ms - 1e-6 or too_long:
                out += self._end(self.last_voiced if not too_long else frame.at + FRAME_S)
            elif (p.early_decode_ms and silent_for * 1000 >= p.early_decode_ms - 1e-6
                  and self._early_for != self.last_voiced):
                self._early_for = self.last_voiced
                out.append(EarlyTurn(self._utterance(self.last_voiced)))
        self.last = FrameDecision(frame.at, voiced, self.speaking)
        return out

    def _utterance(self, end: float) -> Utterance:
        assert self.onset is not None
        start = self._turn[0].at if self._turn else self.onset
        # keep the audio up to the end of speech plus one frame of tail
        keep = [f for f in self._turn if f.at < end + FRAME_S]
        pcm = b"".join(f.pcm for f in keep)
        return Utterance(pcm=pcm, start=round(start, 3), end=round(end, 3), speech_start=round(self.onset, 3))

    def _end(self, end: float) -> list[Frame]:
        assert self.onset is not None
        utterance = self._utterance(end)
        onset = self.onset
        self.speaking, self.onset = False, None
        self._turn, self._window = [], deque(maxlen=self.params.start_window)
        self._preroll.clear()
        return [SpeechStopped(at=round(end, 3), started=round(onset, 3)), utterance]

    def end_turn(self) -> list[Frame]:
        """Close the turn in progress at its last voiced frame (after a false interruption, so the next
        sound is a new onset rather than part of the cough's turn)."""
        if not self.speaking or self.last_voiced is None:
            return []
        return self._end(self.last_voiced)

    def flush(self, at: float) -> list[Frame]:
        """The call ended (or the stream stopped) while the caller was speaking: close the turn."""
        if not self.speaking or self.last_voiced is None:
            return []
        return self._end(min(self.last_voiced, at))


def analyze(frames: list[AudioIn], params: VoiceParams | None = None,
            classify: Classifier | None = None) -> list[Frame]:
    """Every frame through one analyzer (and a final flush): the list of what it emitted."""
    vad = VadAnalyzer(params, classify)
    out: list[Frame] = []
    for f in frames:
        out += vad.feed(f)
    if frames:
        out += vad.flush(frames[-1].at + FRAME_S)
    return out


def frames_of(pcm: bytes, start: float = 0.0) -> list[AudioIn]:
    """16-bit 8 kHz PCM → 20 ms `AudioIn` frames (a short last frame is dropped)."""
    n = len(pcm) // FRAME_BYTES
    return [AudioIn(pcm[i * FRAME_BYTES:(i + 1) * FRAME_BYTES], round(start + i * FRAME_S, 3)) for i in range(n)]
