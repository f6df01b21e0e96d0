"""Test audio for the media unit tests: speech rendered by espeak-ng (English `en-us`, Mandarin
`cmn-latn-pinyin`, never plain `cmn`), a cough, hiss and line noise, mixed at known times, as 16-bit 8 kHz PCM."""
from __future__ import annotations

import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from common.wav import read_wav

RATE = 8000


@lru_cache(maxsize=None)
def speech(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        raw, out = Path(d) / "raw.wav", Path(d) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
        x, _ = read_wav(out)
    return np.asarray(x, dtype=np.float64)


@lru_cache(maxsize=None)
def sox_sound(*effects: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        subprocess.run(["sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(out), *effects], check=True,
                       capture_output=True)
        x, _ = read_wav(out)
    return np.asarray(x, dtype=np.float64)


def cough() -> np.ndarray:
    return sox_sound("synth", "0.32", "brownnoise", "synth", "0.32", "sine", "amod", "120", "fade", "q", "0.005",
                     "0.32", "0.25", "highpass", "200", "gain", "-n", "-3")


def hiss(seconds: float) -> np.ndarray:
    return sox_sound("synth", str(seconds), "whitenoise", "gain", "-n", "-12")


def timeline(total: float, parts: list[tuple[float, np.ndarray]], noise_db: float | None = -55.0,
             seed: int = 7) -> bytes:
    """`total` seconds of line noise at `noise_db` dBFS with each (at, sound) added at `at` seconds."""
    n = int(total * RATE)
    x = np.zeros(n)
    if noise_db is not None:
        x += np.random.default_rng(seed).normal(0, 32768 * 10 ** (noise_db / 20), n)
    for at, sound in parts:
        a = int(at * RATE)
        b = min(n, a + len(sound))
        x[a:b] += sound[: b - a]
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()
