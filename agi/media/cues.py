"""Voice cues: is the caller getting agitated or distressed? Per utterance loudness, pitch and speaking rate
(numpy only), measured against the caller's own first utterances, plus anger and distress vocabularies in
Mandarin and English → `agitated` / `distressed`, which a script branches on (`on_cue:`, docs/VOICE.md).

- loudness: the energy of the voiced frames, dBFS (a shout: +6 dB or more over the caller's baseline);
- pitch: the median fundamental of the voiced frames by autocorrelation, 70–400 Hz (raised when agitated);
- rate: the recognizer's words (English) or characters (Mandarin) per second of speech, or, when there is
  no text, energy peaks (syllable nuclei) per second.
The baseline is the mean of the caller's first `baseline_turns` utterances with words: the cue is a change in
this caller, never a comparison with other people's voices. Agitated = a word of anger, or louder by
`loud_db` together with faster (`fast_ratio`) or higher (`pitch_ratio`). Distressed = a word of distress.

Not validated on real labelled calls: the thresholds were set on synthetic speech (espeak-ng at different
speeds, amplitudes and pitches). A phone network's automatic gain control flattens loudness; treat the
signal as a hint for routing to a person, never as a judgement about the caller.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

FRAME = 160  # 20 ms at 8 kHz

ANGER = {
    "en": ("stop calling", "stop harassing", "harass", "harassment", "leave me alone", "shut up", "fuck", "damn",
           "bloody", "screw you", "go to hell", "idiot", "stupid", "sick of", "fed up", "how dare", "i'll sue",
           "sue you", "report you", "piss off", "bastard", "scam"),
    "zh": ("别再打", "不要再打", "烦死", "骚扰", "滚", "他妈", "去死", "混蛋", "王八蛋", "神经病", "有病", "投诉你",
           "报警", "闭嘴", "骗子", "烦不烦", "讨厌", "妈的", "你们有完没完"),
}
DISTRESS = {
    "en": ("kill myself", "want to die", "end it all", "suicide", "can't go on", "cannot go on", "can't cope",
           "cannot cope", "hopeless", "no way out", "i'm crying", "desperate", "lost my job", "can't feed",
           "nothing left", "breaking down", "please help me"),
    "zh": ("不想活", "活不下去", "想死", "自杀", "走投无路", "崩溃", "绝望", "没法活", "失业了", "吃不上饭",
           "求求你", "我在哭", "撑不下去", "没有办法了"),
}


@dataclass(frozen=True)
class VoiceFeatures:
    """One utterance's measures (None where it could not be measured)."""

    loudness_db: float | None  # dBFS of the voiced frames
    pitch_hz: float | None  # median F0 of the voiced frames
    rate: float | None  # words (en) / characters (zh) per second of speech, or syllable peaks per second
    rate_kind: str  # "text" | "peaks" | ""
    voiced_s: float


@dataclass(frozen=True)
class Cues:
    """What one utterance showed, against this caller's baseline."""

    agitated: bool = False
    distressed: bool = False
    reasons: tuple[str, ...] = ()  # e.g. ("louder +8.1 dB", "faster x1.6", "word:滚")
    features: VoiceFeatures | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("distressed", self.distressed), ("agitated", self.agitated)) if on)


@dataclass(frozen=True)
class CueParams:
    baseline_turns: int = 2  # the caller's first utterances with words are their baseline
    loud_db: float = 6.0  # louder by this much over the baseline: raised voice
    fast_ratio: float = 1.3  # this much faster than the baseline
    pitch_ratio: float = 1.15  # this much higher than the baseline


def _frames(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    return x[: n * FRAME].reshape(n, FRAME) if n else np.zeros((0, FRAME))


def _voiced(frames: np.ndarray) -> np.ndarray:
    power = np.mean(frames * frames, axis=1) + 1e-12
    db = 10 * np.log10(power)
    if not len(db):
        return np.zeros(0, dtype=bool)
    return (db > -50.0) & (db >= db.max() - 25.0)


def _pitch(x: np.ndarray, voiced: np.ndarray, rate: int) -> float | None:
    lo, hi = int(rate / 400), int(rate / 70)
    f0s = []
    win = 2 * FRAME
    for i in np.flatnonzero(voiced):
        seg = x[i * FRAME: i * FRAME + win]
        if len(seg) < win:
            continue
        seg = seg - seg.mean()
        spec = np.fft.rfft(seg, 2 * win)
        ac = np.fft.irfft(spec * np.conj(spec))[: win]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] >= 0.4:
            f0s.append(rate / lag)
    return float(np.median(f0s)) if len(f0s) >= 3 else None


def _peaks(x: np.ndarray, rate: int) -> int:
    hop = rate // 100  # 10 ms
    n = len(x) // hop
    if n < 5:
        return 0
    env = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    env = np.convolve(env, np.ones(5) / 5, mode="same")
    top = env.max()
    count, last = 0, -100
    for i in range(3, n - 3):
        if env[i] < top - 20 or env[i] != env[i - 3:i + 4].max() or i - last < 8:
            continue
        if env[i] - env[max(0, i - 12):i].min() >= 3.0:
            count, last = count + 1, i
    return count


def _text_units(text: str, lang: str) -> int:
    if lang == "zh":
        return len(re.findall(r"[\u4e00-\u9fff]", text)) or len(re.findall(r"[A-Za-z']+", text))
    return len(re.findall(r"[A-Za-z0-9']+", text))


def measure(pcm: bytes, text: str = "", lang: str = "en", rate: int = 8000) -> VoiceFeatures:
    """Loudness, pitch and speaking rate of one utterance (16-bit mono PCM)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    frames = _frames(x)
    voiced = _voiced(frames)
    if not voiced.any():
        return VoiceFeatures(None, None, None, "", 0.0)
    loud = 10 * math.log10(float(np.mean(frames[voiced] ** 2)) + 1e-12)
    idx = np.flatnonzero(voiced)
    span = (idx[-1] - idx[0] + 1) * FRAME / rate
    voiced_s = float(voiced.sum() * FRAME / rate)
    units = _text_units(text, lang) if text else 0
    if units and span > 0.2:
        speed, kind = float(units / span), "text"
    else:
        peaks = _peaks(x[idx[0] * FRAME:(idx[-1] + 1) * FRAME], rate)
        speed, kind = (float(peaks / span), "peaks") if peaks and span > 0.2 else (None, "")
    return VoiceFeatures(round(loud, 2), _pitch(x, voiced, rate), speed, kind, round(voiced_s, 3))


def words_of(text: str, lang: str) -> tuple[list[str], list[str]]:
    """The anger and distress words in `text` (both vocabularies, case-folded)."""
    t = text.lower().replace("’", "'")
    found = []
    for vocab in (ANGER, DISTRESS):
        hits = [w for w in vocab.get(lang, ()) + vocab["en" if lang == "zh" else "zh"] if w in t]
        found.append(hits)
    return found[0], found[1]


@dataclass
class CueTracker:
    """One caller's cues over a call: the first utterances with words set the baseline."""

    lang: str = "en"
    params: CueParams = field(default_factory=CueParams)

    def __post_init__(self) -> None:
        self.baseline: list[VoiceFeatures] = []

    def _base(self, attr: str, kind: str | None = None) -> float | None:
        vals = [getattr(f, attr) for f in self.baseline
                if getattr(f, attr) is not None and (kind is None or f.rate_kind == kind)]
        return float(np.mean(vals)) if vals else None

    def observe(self, pcm: bytes, text: str = "", rate: int = 8000) -> Cues:
        """One caller utterance (and what the recognizer heard in it) → its cues."""
        feats = measure(pcm, text, self.lang, rate)
        anger, distress = words_of(text, self.lang)
        reasons = [f"word:{w}" for w in anger + distress]
        agitated = bool(anger)
        p = self.params
        if len(self.baseline) < p.baseline_turns:
            if text and feats.loudness_db is not None and not anger and not distress:
                self.baseline.append(feats)
        else:
            louder = fast = higher = False
            base_loud = self._base("loudness_db")
            if feats.loudness_db is not None and base_loud is not None:
                louder = feats.loudness_db - base_loud >= p.loud_db
                if louder:
                    reasons.append(f"louder +{feats.loudness_db - base_loud:.1f} dB")
            base_rate = self._base("rate", feats.rate_kind) if feats.rate_kind else None
            if feats.rate is not None and base_rate:
                fast = feats.rate / base_rate >= p.fast_ratio
                if fast:
                    reasons.append(f"faster x{feats.rate / base_rate:.2f}")
            base_pitch = self._base("pitch_hz")
            if feats.pitch_hz is not None and base_pitch:
                higher = feats.pitch_hz / base_pitch >= p.pitch_ratio
                if higher:
                    reasons.append(f"higher x{feats.pitch_hz / base_pitch:.2f}")
            agitated = agitated or (louder and (fast or higher))
        return Cues(agitated, bool(distress), tuple(reasons), feats)


__all__ = ["ANGER", "DISTRESS", "CueParams", "CueTracker", "Cues", "VoiceFeatures", "measure", "words_of"]
