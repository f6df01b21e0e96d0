"""Batched Whisper decoding in isolation: utterances per second (and per CPU-second) when CTranslate2's
`Whisper.generate()` gets a batch of utterances at once, against one utterance per call — the lever the
recognition pool (agi/media/recognition.py) would use for a burst of answers.

    python -m bench.asr_batch [--batches 1,2,4,8] [--windows 10,5] [--rounds 4] [--json]
    python -m bench.asr_batch --accuracy      # what a shorter window costs in words (English WER, real speech)

For each model (tiny.en for English, base for Mandarin), window length and batch size B, the same utterances
(short debtor answers: Piper English, espeak-ng Mandarin) are decoded in batches of B on one thread, and, as the
pool does today, B=1 on `threads` decoder threads side by side (inter_threads). Wall time and process CPU time.
Run it alone (on a shared machine the figures move with the neighbours' load; say so beside them)."""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import numpy as np

from agi.media.asr import RATE, WHISPER_FOR, log_mel, pcm_to_float, to_16k
from agi.media.models import packaged_model_dir

EN = ["Yes.", "No, that is not me.", "I will pay tomorrow.", "I already paid.", "Let me talk to a person.",
      "Nineteen eighty-four.", "Next Friday.", "Stop calling me."]
ZH = ["是的", "不是", "我明天还", "我已经还了", "转人工", "一九八四年", "下周五", "你打错了"]


def clips(lang: str) -> list[np.ndarray]:
    from tests.asr_speakers import espeak_zh, piper

    said = [piper(t) for t in EN] if lang == "en" else [espeak_zh(t) for t in ZH]
    return [to_16k(pcm_to_float(p), 8000) for p in said]


class Batcher:
    """One model, decoding a list of clips in one generate() call (greedy, language forced, as asr.py)."""

    def __init__(self, lang: str, inter_threads: int = 1):
        import ctranslate2
        from tokenizers import Tokenizer

        path = packaged_model_dir(WHISPER_FOR[lang])
        self.model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8", intra_threads=1,
                                                inter_threads=inter_threads)
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        ids = [tok.token_to_id("<|startoftranscript|>")]
        if self.model.is_multilingual:
            ids += [tok.token_to_id(f"<|{lang}|>"), tok.token_to_id("<|transcribe|>")]
        self.prompt = ids + [tok.token_to_id("<|notimestamps|>")]
        self.tok = tok
        self.eot = tok.token_to_id("<|endoftext|>")

    def decode(self, audio: list[np.ndarray], window: float) -> list[str]:
        import ctranslate2

        feats = np.stack([log_mel(a, window) for a in audio])
        longest = max(a.size for a in audio) / RATE
        res = self.model.generate(ctranslate2.StorageView.from_array(feats), [self.prompt] * len(audio),
                                  beam_size=1, max_length=len(self.prompt) + int(10 * longest) + 6,
                                  return_no_speech_prob=True, suppress_blank=True)
        return [self.tok.decode([i for i in r.sequences_ids[0] if i < self.eot]).strip() for r in res]


def timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def bench(lang: str, batches: list[int], windows: list[float], rounds: int, threads: int) -> list[dict[str, Any]]:
    audio = clips(lang)
    one = Batcher(lang)
    out = []
    for window in windows:
        one.decode(audio[:1], window)  # warm
        for b in batches:
            n = max(b, 8) * rounds
            items = [audio[i % len(audio)] for i in range(n)]
            wall, cpu = timed(lambda: [one.decode(items[i:i + b], window) for i in range(0, n, b)])
            out.append({"lang": lang, "window_s": window, "batch": b, "threads": 1, "utterances": n,
                        "utt_per_s": round(n / wall, 2), "utt_per_cpu_s": round(n / cpu, 2),
                        "ms_per_batch": round(1000 * wall / (n / b), 1)})
            print(json.dumps(out[-1]), flush=True)
        # today's pool: `threads` decoder threads, one utterance each, on one model (inter_threads)
        pool = Batcher(lang, inter_threads=threads)
        n = 8 * rounds
        items = [audio[i % len(audio)] for i in range(n)]

        def run_pool() -> None:
            it = iter(items)
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        a = next(it, None)
                    if a is None:
                        return
                    pool.decode([a], window)

            ts = [threading.Thread(target=worker) for _ in range(threads)]
            [t.start() for t in ts]
            [t.join() for t in ts]

        pool.decode(audio[:1], window)
        wall, cpu = timed(run_pool)
        out.append({"lang": lang, "window_s": window, "batch": 1, "threads": threads, "utterances": n,
                    "utt_per_s": round(n / wall, 2), "utt_per_cpu_s": round(n / cpu, 2),
                    "ms_per_batch": round(1000 * wall / n * threads, 1)})
        print(json.dumps(out[-1]), flush=True)
        # both threads batching: `threads` x batch 4
        n = 8 * rounds

        def run_pool_batched(b: int = 4) -> None:
            chunks = iter([items[i:i + b] for i in range(0, n, b)])
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        c = next(chunks, None)
                    if c is None:
                        return
                    pool.decode(c, window)

            ts = [threading.Thread(target=worker) for _ in range(threads)]
            [t.start() for t in ts]
            [t.join() for t in ts]

        wall, cpu = timed(run_pool_batched)
        out.append({"lang": lang, "window_s": window, "batch": 4, "threads": threads, "utterances": n,
                    "utt_per_s": round(n / wall, 2), "utt_per_cpu_s": round(n / cpu, 2),
                    "ms_per_batch": round(1000 * wall / (n / 4) * threads, 1)})
        print(json.dumps(out[-1]), flush=True)
    return out


def trim_repeats(text: str, lang: str) -> str:
    """A short window makes Whisper repeat itself ("1984 1984 1984…"): keep the first of the repeats."""
    import re

    toks = re.findall(r"[\u4e00-\u9fff]", text) if lang == "zh" else text.split()
    norm = [re.sub(r"\W", "", t.lower()) for t in toks]
    for n in range(1, len(norm) // 2 + 1):
        if norm[n:2 * n] == norm[:n]:
            return ("" if lang == "zh" else " ").join(toks[:n])
    return text


def window_accuracy(real: int = 40) -> list[dict[str, Any]]:
    """English word error rate (Debian's real recorded prompts through a µ-law round trip, and the Piper
    answers) and CPU per utterance at a 10-s window, a 5-s window and a window fitted to the utterance
    (its length + 1.5 s, 3-10 s), each with and without cutting repeats."""
    from agi.media.asr import WhisperRecognizer, looped
    from bench.asr import EN_SYNTH, en_words, error_rate, real_clips, ulaw_round_trip
    from tests.asr_speakers import piper

    items = [(ulaw_round_trip(p), t) for p, t in real_clips(real)] + [(ulaw_round_trip(piper(t)), t) for t in EN_SYNTH]
    rec = WhisperRecognizer(packaged_model_dir(WHISPER_FOR["en"]), "en")
    rows = []
    for w in (10.0, 5.0, "fitted"):
        plain, trimmed, cpu = [], [], 0.0
        for pcm, ref in items:
            rec.window = float(min(10.0, max(3.0, np.ceil(len(pcm) / 16000 + 1.5)))) if w == "fitted" else w
            r = rec.recognize(pcm, 8000)
            cpu += r.cpu_seconds
            cut = trim_repeats(r.raw_text, "en")
            plain.append((en_words(ref), en_words(r.text)))
            trimmed.append((en_words(ref), en_words("" if looped(cut) else cut)))
        rows.append({"window_s": w, "utterances": len(items), "wer": error_rate(plain),
                     "wer_repeats_cut": error_rate(trimmed), "cpu_ms_per_utt": round(1000 * cpu / len(items))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--windows", default="10,5")
    ap.add_argument("--langs", default="en,zh")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--accuracy", action="store_true", help="English WER and CPU per window length instead")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.accuracy:
        window_accuracy()
        return
    rows = []
    for lang in a.langs.split(","):
        rows += bench(lang, [int(x) for x in a.batches.split(",")], [float(x) for x in a.windows.split(",")],
                      a.rounds, a.threads)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'lang':4} {'window':>6} {'batch':>5} {'thr':>3} {'utt/s':>7} {'utt/cpu-s':>9} {'ms/batch':>9}")
    for r in rows:
        print(f"{r['lang']:4} {r['window_s']:>6} {r['batch']:>5} {r['threads']:>3} {r['utt_per_s']:>7} "
              f"{r['utt_per_cpu_s']:>9} {r['ms_per_batch']:>9}")
    base = {(r["lang"], r["window_s"]): r["utt_per_s"] for r in rows if r["batch"] == 1 and r["threads"] == 1}
    for r in rows:
        r["vs_b1"] = round(r["utt_per_s"] / base[(r["lang"], r["window_s"])], 2)
    print("speed-up against batch 1 on one thread:", statistics.mean(r["vs_b1"] for r in rows if r["batch"] == 4))


if __name__ == "__main__":
    main()
