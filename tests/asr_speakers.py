"""Test speakers for recognition tests: Debian's real recorded Asterisk prompts (one human speaker, 8 kHz),
the Piper joe voice (en-US) and espeak-ng `cmn-latn-pinyin` (Mandarin), all as 8 kHz 16-bit mono PCM."""
from __future__ import annotations

import io
import subprocess
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr

SOUNDS = Path("/usr/share/asterisk/sounds/en")
PAD = np.zeros(2400, dtype="<i2")  # 0.3 s of silence either side, as the endpointer's pre-roll and hangover


def _to_8k(a: np.ndarray, rate: int) -> np.ndarray:
    if rate == 8000:
        return a.astype("<i2")
    out = soxr.resample(a.astype(np.float32) / 32768.0, rate, 8000, quality="HQ")
    return np.clip(out * 32767, -32768, 32767).astype("<i2")


def _read(path: Path) -> np.ndarray:
    assert path.exists(), f"{path} missing: scripts/setup installs asterisk-core-sounds-en-wav"
    with wave.open(str(path)) as w:
        return _to_8k(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate())


def real(*names: str) -> bytes:
    """Real recorded human speech: Debian's Asterisk core sounds, words joined with 80 ms gaps."""
    gap = np.zeros(640, dtype="<i2")
    parts = [PAD]
    for n in names:
        parts += [_read(SOUNDS / f"{n}.wav"), gap]
    return np.concatenate(parts + [PAD]).tobytes()


@lru_cache(maxsize=64)
def piper(text: str) -> bytes:
    from piper import PiperVoice

    from agi.media.tts import TTS

    voice = TTS(cache_dir=Path("/tmp")).voice_for("en-US")  # noqa: S108 (only voice lookup, no render)
    pv = PiperVoice.load(str(voice.model))
    chunks = [_to_8k(c.audio_int16_array, c.sample_rate) for c in pv.synthesize(text)]
    return np.concatenate([PAD, *chunks, PAD]).tobytes()


@lru_cache(maxsize=64)
def espeak_zh(text: str, speed: int | None = None) -> bytes:
    """Mandarin from espeak-ng cmn-latn-pinyin, fed the same pinyin the bot's offline voice uses."""
    from agi.media.tts import zh_pinyin

    cmd = ["espeak-ng", "-v", "cmn-latn-pinyin", "--stdout"] + (["-s", str(speed)] if speed else [])
    out = subprocess.run(cmd + ["--", zh_pinyin(text)], capture_output=True, check=True, timeout=30).stdout
    with wave.open(io.BytesIO(out)) as w:
        a = _to_8k(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate())
    return np.concatenate([PAD, a, PAD]).tobytes()


def silence(seconds: float = 2.0) -> bytes:
    return np.zeros(int(8000 * seconds), dtype="<i2").tobytes()


def noise(seconds: float = 2.0, dbfs: float = -45.0, seed: int = 7) -> bytes:
    """Low white-ish noise (line hiss) at about `dbfs`, telephone band."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, int(8000 * seconds))
    x = np.convolve(x, np.ones(3) / 3, mode="same")
    x *= (10 ** (dbfs / 20)) * 32768 / np.sqrt(np.mean(x ** 2))
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path
