"""Speech recognition behind one interface, chosen per language: an endpointed utterance (16-bit PCM, 8 or
16 kHz mono) in, a `Recognition` (text, confidence, no-speech probability, timing, backend) out.

Backends:
- `WhisperRecognizer`: Whisper through CTranslate2 (tiny.en for English, multilingual base for Mandarin; both
  ship inside pinned PyPI packages and are joined into `models/asr/` by scripts/setup). Loaded from a directory
  path only (a model *name* would download from a hub). int8, one thread, greedy, language forced, a 10-s
  encoder window instead of 30 s (5x less CPU) and a token cap (prompt + ~10 tokens a second: without it a clip
  looped). Results whose no-speech probability is above `no_speech_gate` are discarded (Whisper "hears" 真是的
  in digital silence). Chinese output is normalised to Simplified (OpenCC t2s).
- `VoskRecognizer`: where an official Vosk model has been fetched (`dialer models fetch --asr`), optionally with
  a phrase list that is checked against the model's vocabulary at load (Vosk silently drops unknown words).

`recognizer_for(lang)` picks Vosk when an official model for the language is installed, else Whisper.
Decoding runs once per utterance (no streaming): barge-in comes from the VAD, never from here.
"""
from __future__ import annotations

import json
import re
import threading
import time
import wave
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

import numpy as np

from agi.media.models import MODELS_DIR, ModelMissing, load_asr_manifest, packaged_model_dir

RATE = 16000  # what Whisper takes
WINDOW_SECONDS = 10.0
NO_SPEECH_GATE = 0.6
SILENCE_DBFS = -60.0  # below this the utterance is digital silence: not decoded at all


@dataclass(frozen=True)
class Recognition:
    """What a recognizer heard in one utterance. `text` is empty when it heard no speech."""

    text: str
    confidence: float  # 0..1 (Whisper: exp of the mean token log-probability)
    no_speech_prob: float  # 0..1 (Vosk: 0 when it returned words, 1 when not)
    start: float  # seconds into the call (from the utterance)
    end: float
    backend: str  # e.g. "whisper:whisper-base", "vosk:vosk-model-small-cn-0.22"
    lang: str
    cpu_seconds: float  # process CPU time spent decoding
    raw_text: str = ""  # before the no-speech gate and normalisation

    @property
    def is_speech(self) -> bool:
        return bool(self.text)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class UtteranceLike(Protocol):
    """The endpointed turn the audio path produces (agi/media/frames.py `Utterance`): 16-bit mono PCM at
    8 kHz, from `start` to `end` seconds into the call. `sample_rate` is optional (8000 when absent)."""

    pcm: bytes
    start: float
    end: float


class Recognizer(Protocol):
    name: str
    lang: str

    def recognize(self, pcm: bytes, sample_rate: int = 8000, *, start: float = 0.0, end: float | None = None,
                  prompt: str | None = None) -> Recognition: ...


class AudioError(ValueError):
    """A WAV the recognizer cannot take; the message is one line naming the file."""


# ------------------------------------------------------------------ audio helpers

def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def dbfs(audio: np.ndarray) -> float:
    if audio.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-6))


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return audio
    import soxr

    return soxr.resample(audio, rate, RATE, quality="HQ").astype(np.float32)


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """(pcm16 mono bytes, sample rate) of an 8 or 16 kHz WAV; AudioError (one line) for anything else."""
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            frames = w.readframes(n)
    except FileNotFoundError:
        raise AudioError(f"{p}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{p}: not a PCM WAV file" + (f" ({exc})" if str(exc) else "")) from None
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if width != 2:
        raise AudioError(f"{p}: {8 * width}-bit samples; expected 16-bit PCM")
    if rate not in (8000, 16000):
        raise AudioError(f"{p}: {rate} Hz; expected 8000 or 16000 Hz")
    if n == 0:
        raise AudioError(f"{p}: no audio frames")
    if channels != 1:
        a = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
        frames = a.mean(axis=1).astype("<i2").tobytes()
    return frames, rate


# ------------------------------------------------------------------ Whisper log-mel features (numpy)

N_FFT, HOP = 400, 160


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as Whisper's filterbank uses."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log = f >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), lin)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """The triangular, area-normalised (Slaney) mel filterbank for 16 kHz, n_fft 400: (n_mels, 201)."""
    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), n_mels + 2))
    fdiff = np.diff(hz)
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[:, None]
    return weights.astype(np.float32)


def log_mel(audio16k: np.ndarray, seconds: float = WINDOW_SECONDS, n_mels: int = 80) -> np.ndarray:
    """Whisper's input for one window: audio padded (or cut) to `seconds`, 25-ms Hann STFT every 10 ms
    (centred, reflect-padded), power -> mel -> log10, floored 8 below the peak, scaled: (n_mels, 100*seconds)."""
    n = int(seconds * RATE)
    x = np.zeros(n, dtype=np.float32)
    x[:min(n, audio16k.size)] = audio16k[:n]
    x = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    spec = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (frames, 201)
    spec = spec[:-1]  # Whisper drops the last frame
    mel = mel_filters(n_mels) @ spec.T.astype(np.float32)
    logm = np.log10(np.maximum(mel, 1e-10))
    logm = np.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).astype(np.float32)


# ------------------------------------------------------------------ Whisper

@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text) if re.search(r"[\u4e00-\u9fff]", text) else text


def looped(text: str) -> bool:
    """A decode that repeats itself (转人工。转人工。转人工…, 轻轻轻轻…): Whisper echoing its prompt or looping
    on audio it cannot read. zlib compression ratio above 2.4, as Whisper's own fallback rule, or one
    character/word making up most of a long output."""
    import zlib

    b = text.encode("utf-8")
    if len(b) >= 12 and len(b) / len(zlib.compress(b)) > 2.4:
        return True
    parts = [x.strip() for x in re.split(r"[。，、,.!?！？;；]+", text.lower()) if x.strip()]
    if len(parts) >= 3 and max(parts.count(x) for x in set(parts)) >= 3:
        return True
    units = re.findall(r"[\u4e00-\u9fff]", text) or re.findall(r"\w+", text.lower())
    return len(units) >= 6 and max(units.count(u) for u in set(units)) / len(units) > 0.5


class WhisperRecognizer:
    """Whisper (CTranslate2 format) from a model directory. Thread-safe; `inter_threads` decodes at a time per
    instance, on one copy of the weights."""

    def __init__(self, model_dir: str | Path, lang: str, *, threads: int = 1, window: float = WINDOW_SECONDS,
                 no_speech_gate: float = NO_SPEECH_GATE, silence_dbfs: float = SILENCE_DBFS,
                 inter_threads: int = 1):
        import ctranslate2
        from tokenizers import Tokenizer

        path = Path(model_dir)
        if not (path / "model.bin").is_file():
            raise ModelMissing(f"{path}: no model.bin (load Whisper from an installed model directory)")
        self.model_dir, self.lang, self.window = path, lang, window
        self.no_speech_gate, self.silence_dbfs = no_speech_gate, silence_dbfs
        self.name = f"whisper:{path.name}"
        self.model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8",
                                                intra_threads=threads, inter_threads=inter_threads)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        cfg = json.loads((path / "config.json").read_text())
        self.n_mels = int(cfg.get("num_mel_bins") or cfg.get("feature_size") or 80)
        self.multilingual = bool(self.model.is_multilingual)
        self._tok = {t: self.tokenizer.token_to_id(t) for t in
                     ("<|startoftranscript|>", "<|notimestamps|>", "<|transcribe|>", "<|startofprev|>",
                      "<|endoftext|>", f"<|{lang}|>")}
        if self.multilingual and self._tok[f"<|{lang}|>"] is None:
            raise ModelMissing(f"{path}: this model has no language {lang!r}")
        if not self.multilingual and lang != "en":
            raise ModelMissing(f"{path}: an English-only model cannot recognise {lang!r}")
        # decodes at once: the model's replicas share its weights (recognition.py's pool sets inter_threads)
        self._lock = threading.Semaphore(max(1, inter_threads))

    def _prompt(self, prompt: str | None) -> list[int]:
        t = self._tok
        ids: list[int] = []
        if prompt:
            ids = [t["<|startofprev|>"]] + self.tokenizer.encode(" " + prompt.strip(),
                                                                 add_special_tokens=False).ids[-100:]
        ids.append(t["<|startoftranscript|>"])
        if self.multilingual:
            ids += [t[f"<|{self.lang}|>"], t["<|transcribe|>"]]
        ids.append(t["<|notimestamps|>"])
        return ids

    def recognize(self, pcm: bytes, sample_rate: int = 8000, *, start: float = 0.0, end: float | None = None,
                  prompt: str | None = None) -> Recognition:
        import ctranslate2

        c0 = time.process_time()
        audio = pcm_to_float(pcm)
        seconds = audio.size / sample_rate
        end = start + seconds if end is None else end
        if dbfs(audio) < self.silence_dbfs:
            return Recognition("", 0.0, 1.0, start, end, self.name, self.lang, time.process_time() - c0)
        audio = to_16k(audio, sample_rate)
        window = max(1.0, min(self.window, 30.0))
        if seconds > window:  # a long turn: decode its last window (the answer is at the end)
            audio = audio[-int(window * RATE):]
            seconds = window
        feats = log_mel(audio, window, self.n_mels)[None]
        prompt_ids = self._prompt(prompt)
        cap = len(prompt_ids) + int(10 * seconds) + 6
        with self._lock:
            res = self.model.generate(ctranslate2.StorageView.from_array(feats), [prompt_ids], beam_size=1,
                                      max_length=cap, return_scores=True, return_no_speech_prob=True,
                                      suppress_blank=True)[0]
        eot = self._tok["<|endoftext|>"]
        ids = [i for i in res.sequences_ids[0] if i < eot]
        raw = self.tokenizer.decode(ids).replace("\ufffd", "").strip()  # a cap can cut a character in half
        score = float(res.scores[0]) if res.scores else -10.0
        confidence = float(np.clip(np.exp(score), 0.0, 1.0))
        no_speech = float(res.no_speech_prob)
        text = to_simplified(raw) if self.lang == "zh" else raw
        if no_speech > self.no_speech_gate or not re.search(r"\w", text) or looped(text):
            text = ""
        return Recognition(text, confidence, no_speech, start, end, self.name, self.lang,
                           time.process_time() - c0, raw)


# ------------------------------------------------------------------ Vosk

class VoskRecognizer:
    """A Vosk model directory; with `phrases`, a closed grammar checked against the model's vocabulary."""

    def __init__(self, model_dir: str | Path, lang: str, phrases: Iterable[str] | None = None):
        import vosk

        vosk.SetLogLevel(-1)
        path = Path(model_dir)
        if not path.is_dir():
            raise ModelMissing(f"{path}: no Vosk model here (dialer models fetch --asr {lang})")
        self.model_dir, self.lang, self.name = path, lang, f"vosk:{path.name}"
        self.model = vosk.Model(str(path))
        self.phrases: list[str] | None = None
        if phrases is not None:
            self.phrases = list(phrases)
            unknown = self.unknown_words(self.phrases)
            if unknown:
                raise ValueError(f"{path.name}: phrase list has words the model does not know "
                                 f"(Vosk would drop them silently): {', '.join(sorted(unknown))}")

    def unknown_words(self, phrases: Iterable[str]) -> set[str]:
        words = {w for p in phrases for w in p.split() if w != "[unk]"}
        return {w for w in words if self.model.vosk_model_find_word(w) < 0}

    def recognize(self, pcm: bytes, sample_rate: int = 8000, *, start: float = 0.0, end: float | None = None,
                  prompt: str | None = None) -> Recognition:
        import vosk

        c0 = time.process_time()
        seconds = len(pcm) / 2 / sample_rate
        end = start + seconds if end is None else end
        if self.phrases is not None:
            grammar = self.phrases + (["[unk]"] if self.model.vosk_model_find_word("[unk]") >= 0 else [])
            rec = vosk.KaldiRecognizer(self.model, sample_rate, json.dumps(grammar, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(self.model, sample_rate)
        rec.SetWords(True)
        for i in range(0, len(pcm), 8000):
            rec.AcceptWaveform(pcm[i:i + 8000])
        result = json.loads(rec.FinalResult())
        words = [w for w in result.get("result", []) if w.get("word") != "[unk]"]
        raw = result.get("text", "")
        text = " ".join(w["word"] for w in words)
        if self.lang == "zh":
            text = to_simplified(text.replace(" ", ""))
        conf = float(np.mean([w.get("conf", 0.0) for w in words])) if words else 0.0
        return Recognition(text, conf, 0.0 if text else 1.0, start, end, self.name, self.lang,
                           time.process_time() - c0, raw)


# ------------------------------------------------------------------ choosing a recognizer

WHISPER_FOR = {"en": "whisper-tiny.en", "zh": "whisper-base"}
_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def fetched_vosk_model(lang: str, models_dir: str | Path = MODELS_DIR) -> Path | None:
    """The official Vosk model for `lang` if `dialer models fetch --asr` installed it, else None."""
    for entry in load_asr_manifest():
        folder = Path(models_dir) / entry.name
        if entry.key == lang and (folder / "conf").is_dir():
            return folder
    return None


def recognizer_for(lang: str, *, models_dir: str | Path = MODELS_DIR, backend: str | None = None,
                   inter_threads: int = 1) -> Recognizer:
    """The recognizer for a call's language (loaded once per process): a fetched official Vosk model, else
    Whisper from `models/asr/`. `backend` "whisper" or "vosk" forces one. ModelMissing (one line) if none."""
    if lang not in WHISPER_FOR:
        raise ValueError(f"unknown language {lang!r} (zh or en)")
    vosk_dir = fetched_vosk_model(lang, models_dir) if backend in (None, "vosk") else None
    if backend == "vosk" and vosk_dir is None:
        raise ModelMissing(f"no official Vosk model for {lang!r} in {models_dir} (dialer models fetch --asr {lang})")
    key = (lang, str(vosk_dir) if vosk_dir else f"whisper:{models_dir}:{inter_threads}")
    with _CACHE_LOCK:
        if key not in _CACHE:
            if vosk_dir:
                _CACHE[key] = VoskRecognizer(vosk_dir, lang)
            else:
                _CACHE[key] = WhisperRecognizer(packaged_model_dir(WHISPER_FOR[lang], models_dir), lang,
                                                inter_threads=inter_threads)
        return _CACHE[key]


def recognize_utterance(recognizer: Recognizer, utterance: Any, *, prompt: str | None = None) -> Recognition:
    """Recognise an endpointed `Utterance` (anything with `pcm`, `start`, `end`; optional `sample_rate`)."""
    return recognizer.recognize(utterance.pcm, int(getattr(utterance, "sample_rate", 8000) or 8000),
                                start=float(utterance.start), end=float(utterance.end), prompt=prompt)
