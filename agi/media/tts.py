"""One TTS interface for the bot's prompts: Piper (or espeak-ng `cmn-latn-pinyin` until a Piper zh voice is
fetched), resampled to 8 kHz mono 16-bit WAV with soxr and cached by a hash of (voice, text) under `voices/cache/`.

The offline Chinese voice is espeak-ng `cmn-latn-pinyin` fed tone-numbered pinyin: `zh_spoken()` first writes
numbers, dates, amounts and phone numbers the Chinese way (一千二百三十四元五角, 二零二四年, 幺三八…), then
pypinyin (with a small debt-domain phrase list: 还款 huan2, not hai2) turns the Han characters into pinyin.
Never `-v cmn`: on Debian 12 it reads Chinese as English-pronounced pinyin (docs/MODELS.md).

The voice per locale comes from `voices/manifest.yaml`: the first voice in a locale's `prefer` list that is
installed wins (a fetched Piper voice under `voices/<name>/`, a Python package, or espeak-ng).
"""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import soxr

from common.paths import REPO
from common.yamlfile import ConfigError, load_file

ROOT = REPO
VOICES_DIR = ROOT / "voices"
MANIFEST = VOICES_DIR / "manifest.yaml"
CACHE_DIR = VOICES_DIR / "cache"
RATE = 8000
ENGINES = ("piper", "espeak")


@dataclass(frozen=True)
class VoiceSpec:
    """One voice from the manifest, resolved against what is installed here."""

    name: str
    engine: str  # piper | espeak
    locale: str
    model: Path | None = None  # piper .onnx (config beside it: .onnx.json)
    espeak_voice: str | None = None
    speed: int | None = None  # espeak words per minute

    @property
    def cache_id(self) -> str:
        """Identity of the voice for the cache key (a changed model file is a different voice)."""
        if self.model is not None:
            st = self.model.stat()
            return f"piper:{self.name}:{st.st_size}"
        return f"espeak:{self.espeak_voice}:{self.speed}:{ZH_READING_VERSION}"


def _package_model(package: str) -> Path | None:
    """The .onnx inside an installed voice package (found at run time, not hard-coded)."""
    try:
        mod = importlib.import_module(package)
    except ModuleNotFoundError:
        return None
    if hasattr(mod, "model_path"):
        p = Path(mod.model_path())
        return p if p.exists() else None
    base = Path(getattr(mod, "__file__", "") or "").parent
    found = sorted(base.rglob("*.onnx"))
    return found[0] if found else None


def load_voices(manifest: str | Path = MANIFEST, voices_dir: str | Path | None = None) -> dict[str, list[VoiceSpec]]:
    """locale -> installed voices in order of preference (first = used). Errors name file, line and field."""
    loc = load_file(manifest)
    data = loc.data if isinstance(loc.data, dict) else {}
    vdir = Path(voices_dir) if voices_dir else Path(manifest).resolve().parent
    voices = data.get("voices") or {}
    if not isinstance(voices, dict):
        raise loc.error(("voices",), "expected a mapping of voice name -> voice")
    locales = data.get("locales") or {}
    if not isinstance(locales, dict) or not locales:
        raise loc.error(("locales",), "expected a mapping of locale -> {prefer: [voice, ...]}")
    out: dict[str, list[VoiceSpec]] = {}
    for locale, spec in locales.items():
        prefer = (spec or {}).get("prefer") if isinstance(spec, dict) else None
        if not isinstance(prefer, list) or not prefer:
            raise loc.error(("locales", locale, "prefer"), "expected a non-empty list of voice names")
        out[locale] = []
        for i, name in enumerate(prefer):
            v = voices.get(name)
            if not isinstance(v, dict):
                raise loc.error(("locales", locale, "prefer", i), f"unknown voice {name!r}")
            engine = v.get("engine")
            if engine not in ENGINES:
                raise loc.error(("voices", name, "engine"), f"unknown engine {engine!r} ({', '.join(ENGINES)})")
            if engine == "espeak":
                if shutil.which("espeak-ng"):
                    out[locale].append(VoiceSpec(name, "espeak", locale,
                                                 espeak_voice=str(v.get("espeak_voice", "cmn-latn-pinyin")),
                                                 speed=v.get("speed")))
                continue
            model = vdir / name / f"{name}.onnx"  # fetched by `dialer models fetch --voice`
            if not model.exists() and v.get("package"):
                model = _package_model(str(v["package"])) or model
            if model.exists():
                out[locale].append(VoiceSpec(name, "piper", locale, model=model))
    return out


# ------------------------------------------------------------------ reading Chinese text aloud

ZH_READING_VERSION = 1  # part of the cache key: bump when zh_spoken()/pinyin output changes
_DIG = "零一二三四五六七八九"
_PHONE_DIG = "零幺二三四五六七八九"  # 1 is 幺 in phone numbers, as operators say it
# Debt-domain words pypinyin reads wrongly (还款 as hai2 kuan3); phrase -> one tone-numbered syllable per character.
_ZH_PHRASES = {
    "还款": "huan2 kuan3", "还钱": "huan2 qian2", "还上": "huan2 shang4", "还不上": "huan2 bu5 shang4",
    "还不起": "huan2 bu5 qi3", "没还": "mei2 huan2", "还没还": "hai2 mei2 huan2", "归还": "gui1 huan2",
    "偿还": "chang2 huan2", "按时还": "an4 shi2 huan2", "分期还": "fen1 qi1 huan2", "商量": "shang1 liang5",
}


def _zh_int(n: int, two: bool = True) -> str:
    """1234 -> 一千二百三十四, 10 -> 十, 20000 -> 两万, 100005 -> 十万零五."""
    if n == 0:
        return "零"
    if n >= 10 ** 8:
        hi, lo = divmod(n, 10 ** 8)
        return _zh_int(hi) + "亿" + (("零" if lo < 10 ** 7 else "") + _zh_int(lo) if lo else "")
    if n >= 10 ** 4:
        hi, lo = divmod(n, 10 ** 4)
        return ("两" if hi == 2 else _zh_int(hi)) + "万" + (("零" if lo < 1000 else "") + _zh_int(lo, two=False) if lo else "")
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero:
                out += "零"
            word = "两" if (d == 2 and two and unit in ("千", "百") and not out) else _DIG[d]
            out += ("" if (d == 1 and unit == "十" and not out) else word) + unit
            zero = False
        elif out:
            zero = True
    return out


def _zh_amount(whole: str, frac: str | None, unit: str) -> str:
    """1234.50元 -> 一千二百三十四元五角; 3.5% style decimals -> 三点五."""
    n = _zh_int(int(whole))
    if unit in ("元", "块"):
        jiao = int(frac[0]) if frac else 0
        fen = int(frac[1]) if frac and len(frac) > 1 else 0
        out = n + unit
        if jiao:
            out += _DIG[jiao] + "角"
        if fen:
            out += ("零" if not jiao else "") + _DIG[fen] + "分"
        return out
    return n + ("点" + "".join(_DIG[int(c)] for c in frac) if frac and frac.strip("0") else "") + unit


def zh_spoken(text: str) -> str:
    """A Chinese prompt with every number written as it is read aloud: amounts (元/块, with 角/分), years
    (二零二四年, digit by digit), phone numbers and long digit strings (幺 for 1), percentages, dates and counts."""
    s = text.replace("，", "，")

    def phone(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "".join(_PHONE_DIG[int(c)] for c in digits)

    s = re.sub(r"\+?\d[\d\- ]{5,}\d", phone, s)  # phone numbers, account numbers: digit by digit
    s = re.sub(r"(\d{4})(?=\s*年)", lambda m: "".join(_DIG[int(c)] for c in m.group(1)), s)
    s = re.sub(r"(\d+(?:\.\d+)?)\s*%", lambda m: "百分之" + _zh_amount(*(m.group(1).split(".") + [None])[:2], ""), s)
    s = re.sub(r"(\d[\d,]*)(?:\.(\d+))?\s*(元|块|)",
               lambda m: _zh_amount(m.group(1).replace(",", ""), m.group(2), m.group(3)), s)
    return s


def zh_pinyin(text: str) -> str:
    """Chinese text -> tone-numbered pinyin for espeak-ng `cmn-latn-pinyin` (punctuation and Latin words kept)."""
    from pypinyin import Style, lazy_pinyin

    s = zh_spoken(text)
    out: list[str] = []
    i = 0
    for m in re.finditer("|".join(sorted(map(re.escape, _ZH_PHRASES), key=len, reverse=True)), s):
        out += lazy_pinyin(s[i:m.start()], style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: [x])
        out += _ZH_PHRASES[m.group(0)].split()
        i = m.end()
    out += lazy_pinyin(s[i:], style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: [x])
    text_out = " ".join(out)
    for cn, ascii_ in (("，", ","), ("。", "."), ("？", "?"), ("！", "!"), ("：", ":"), ("；", ";"), ("、", ",")):
        text_out = text_out.replace(cn, ascii_)
    return re.sub(r"\s+", " ", text_out).strip()


def espeak_command(voice: "VoiceSpec", text: str, *mode: str) -> list[str]:
    """The espeak-ng command line that speaks `text` with `voice` (`mode`: "--stdout", or "-x", "-q")."""
    name = voice.espeak_voice or "cmn-latn-pinyin"
    cmd = ["espeak-ng", "-v", name, *mode]
    if voice.speed:
        cmd += ["-s", str(voice.speed)]
    spoken = zh_pinyin(text) if name.startswith("cmn") else text
    return cmd + ["--", spoken]


def _wav_bytes(pcm: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def to_8k(audio: np.ndarray, rate: int) -> np.ndarray:
    """int16 mono at `rate` -> int16 mono at 8 kHz (soxr HQ)."""
    if rate == RATE:
        return audio.astype(np.int16)
    out = soxr.resample(audio.astype(np.float32) / 32768.0, rate, RATE, quality="HQ")
    return np.clip(out * 32767.0, -32768, 32767).astype(np.int16)


@dataclass
class TTSStats:
    hits: int = 0
    misses: int = 0
    render_seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass
class TTS:
    """Text -> cached 8 kHz WAV. Thread-safe; Piper voices load once, on first use."""

    cache_dir: Path = CACHE_DIR
    manifest: Path = MANIFEST
    voices_dir: Path | None = None
    stats: TTSStats = field(default_factory=TTSStats)

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        self._voices = load_voices(self.manifest, self.voices_dir)
        self._piper: dict[Path, Any] = {}
        self._lock = threading.Lock()

    # -- voices -----------------------------------------------------------------------------
    def voice_for(self, locale: str) -> VoiceSpec:
        options = self._voices.get(locale) or []
        if not options:
            raise ConfigError(self.manifest, None, f"locales.{locale}",
                              "no installed voice for this locale (run `dialer models fetch --voice`"
                              " or install espeak-ng)")
        return options[0]

    def _piper_voice(self, model: Path) -> Any:
        with self._lock:
            if model not in self._piper:
                from piper import PiperVoice

                self._piper[model] = PiperVoice.load(str(model))
            return self._piper[model]

    # -- synthesis --------------------------------------------------------------------------
    def stream(self, text: str, locale: str) -> Iterator[np.ndarray]:
        """8 kHz int16 chunks as they are synthesised (one per sentence with Piper), uncached."""
        voice = self.voice_for(locale)
        if voice.engine == "piper":
            pv = self._piper_voice(voice.model)  # type: ignore[arg-type]
            for chunk in pv.synthesize(text):
                yield to_8k(chunk.audio_int16_array, chunk.sample_rate)
            return
        proc = subprocess.run(espeak_command(voice, text, "--stdout"), capture_output=True, check=True, timeout=30)
        with wave.open(io.BytesIO(proc.stdout)) as w:
            rate = w.getframerate()
            audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        yield to_8k(audio, rate)

    def cache_path(self, text: str, locale: str) -> Path:
        voice = self.voice_for(locale)
        key = hashlib.sha256(f"{voice.cache_id}\n{text}".encode()).hexdigest()
        return self.cache_dir / locale / f"{key}.wav"

    def render(self, text: str, locale: str) -> Path:
        """The prompt as an 8 kHz mono 16-bit WAV (path ends in .wav); synthesised once, then cached."""
        path = self.cache_path(text, locale)
        if path.exists():
            self.stats.hits += 1
            return path
        t0 = time.perf_counter()
        chunks = list(self.stream(text, locale))
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        if pcm.size == 0:
            raise ValueError(f"no audio for {text!r} ({locale})")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_wav_bytes(pcm))
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.stats.misses += 1
        self.stats.render_seconds += time.perf_counter() - t0
        self.stats.audio_seconds += pcm.size / RATE
        return path

    def render_static(self, script: Any, values: Mapping[str, str] | None = None) -> dict[str, Path]:
        """Render every prompt of a script whose slots are all known at campaign load
        (institution, collector name, call-back number); per-call prompts are rendered during the call."""
        from agi.script.model import STATIC_SLOTS
        from agi.script.render import render

        static = {k: v for k, v in (values or {}).items() if k in STATIC_SLOTS}
        out = {}
        for pid, prompt in script.prompts.items():
            if all(s in static for s in prompt.slots):
                out[pid] = self.render(render(prompt, static), script.locale)
        return out


