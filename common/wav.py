"""Audio measurements: how long a WAV is and how much speech it holds (tests, benchmarks, the demo)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels()).mean(axis=1)
    return data, rate


def active_seconds(path: Path, threshold_db: float = -40.0, frame_ms: int = 20) -> float:
    """Seconds of 20-ms frames louder than `threshold_db` dBFS (speech, not silence or comfort noise)."""
    data, rate = read_wav(path)
    n = int(rate * frame_ms / 1000)
    frames = len(data) // n
    if frames == 0:
        return 0.0
    x = data[: frames * n].reshape(frames, n) / 32768.0
    rms = np.sqrt((x ** 2).mean(axis=1) + 1e-12)
    return float((20 * np.log10(rms) > threshold_db).sum() * frame_ms / 1000)


def wav_info(path: str | Path) -> tuple[int, int, int, float]:
    """(rate, channels, sample width, seconds) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / float(w.getframerate())


def duration(path: str | Path) -> float:
    """Seconds of audio in a WAV file: the one duration helper (prompts, carrier audio, recordings)."""
    return wav_info(path)[3]
