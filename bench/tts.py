"""Prompt rendering: cold vs cached render time, first-audio latency, RTF, and the cache hit rate over a campaign.

    python -m bench.tts [--calls 40] [--json]

Baseline measured in the same run: rendering every prompt uncached (what a call would wait for without the
cache). "Answer to first audio" is the time from the script's first action to a playable file for the
opening prompt: with `render_static` at campaign load it is a cache lookup.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from agi.media.tts import TTS
from agi.script.engine import Engine
from agi.script.loader import load_by_id
from agi.script.model import STATIC_SLOTS, Debtor, Dtmf, Say, Script
from common.wav import wav_info

SCRIPTS = {"en-US": ["m1_reminder_en", "m2_firm_instalment_en", "m3_plan_or_notice_en"],
           "zh-CN": ["m1_reminder", "m2_firm_instalment", "m3_plan_or_notice"]}


def debtor(i: int, lang: str) -> Debtor:
    rnd = random.Random(i)
    names = ["张伟", "王芳", "李娜", "刘洋"] if lang == "zh" else ["John Smith", "Maria Garcia", "Wei Chen", "Ann Lee"]
    return Debtor(f"D{i}", names[i % len(names)], birth_year="1984", amount_owed=Decimal(rnd.randrange(800, 20000)),
                  currency="CNY" if lang == "zh" else "USD", due_date=date(2026, 10, rnd.randrange(1, 28)),
                  days_past_due=rnd.randrange(5, 90), institution="示例银行" if lang == "zh" else "Example Bank",
                  collector_name="小安" if lang == "zh" else "Ava", callback_number="4008001234")


def all_prompt_texts(script: Script, d: Debtor) -> list[str]:
    """Every prompt of a script rendered for one debtor (as verified), the text a call could need."""
    from agi.script.render import render, slot_values

    values = slot_values(script, d, True, {"date": date(2026, 12, 4), "amount": Decimal(2000)})
    return [render(p, values) for p in script.prompts.values()]


def ms(xs: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.mean(xs) * 1000, 2), "p50": round(statistics.median(xs) * 1000, 2),
            "max": round(max(xs) * 1000, 2)}


def bench_locale(locale: str, calls: int, first_samples: int = 6) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="bench-tts-"))
    tts = TTS(cache_dir=cache)
    voice = tts.voice_for(locale)
    lang = "zh" if locale.startswith("zh") else "en"
    t0 = time.perf_counter()
    if voice.engine == "piper":
        tts._piper_voice(voice.model)  # load once, as the daemon does at start
    load_s = time.perf_counter() - t0

    # baseline: every prompt of the campaign's scripts, uncached
    texts = list(dict.fromkeys(t for sid in SCRIPTS[locale] for t in all_prompt_texts(load_by_id(sid), debtor(0, lang))))
    cold, audio, first = [], [], []
    for text in texts[:first_samples]:  # time to the first synthesised chunk (one sentence with Piper)
        t = time.perf_counter()
        next(iter(tts.stream(text, locale)))
        first.append(time.perf_counter() - t)
    for text in texts:
        t = time.perf_counter()
        path = tts.render(text, locale)
        cold.append(time.perf_counter() - t)
        audio.append(wav_info(path)[3])
    cached = []
    for text in texts:
        t = time.perf_counter()
        tts.render(text, locale)
        cached.append(time.perf_counter() - t)

    # a campaign: static prompts at load, then calls walking the script with different debtors
    tts2 = TTS(cache_dir=Path(tempfile.mkdtemp(prefix="bench-tts-campaign-")))
    tts2._piper = tts._piper  # same loaded voice, empty cache
    t = time.perf_counter()
    static_count = 0
    for sid in SCRIPTS[locale]:
        static_count += len(tts2.render_static(load_by_id(sid), {"institution": debtor(0, lang).institution,
                                                                 "collector_name": debtor(0, lang).collector_name,
                                                                 "callback_number": "4008001234"}))
    static_s = time.perf_counter() - t
    hits0, misses0 = tts2.stats.hits, tts2.stats.misses
    answer_to_first = []
    rnd = random.Random(7)
    for i in range(calls):
        script = load_by_id(SCRIPTS[locale][i % len(SCRIPTS[locale])])
        d = debtor(i % max(1, calls // 4), lang)  # some debtors are called twice
        engine = Engine(script, d, today=date(2026, 11, 23))
        t = time.perf_counter()
        actions = engine.start()
        tts2.render(next(a for a in actions if isinstance(a, Say)).text, locale)
        answer_to_first.append(time.perf_counter() - t)
        keys = ["1", "1984", rnd.choice(["1", "2", "3", "0", "9"])]
        for a in actions:
            if isinstance(a, Say):
                tts2.render(a.text, locale)
        for k in keys:
            for a in engine.handle(Dtmf(k)):
                if isinstance(a, Say):
                    tts2.render(a.text, locale)
            if engine.done:
                break
    hits, misses = tts2.stats.hits - hits0, tts2.stats.misses - misses0
    uncached_first = cold[0]  # the opening prompt rendered on demand (no campaign-load render)
    return {
        "locale": locale, "voice": voice.name, "engine": voice.engine, "voice_load_s": round(load_s, 3),
        "prompts": len(texts), "audio_s": round(sum(audio), 1),
        "cold_render_ms": ms(cold), "cached_render_ms": ms(cached), "first_audio_ms": ms(first),
        "rtf": round(sum(cold) / sum(audio), 4),
        "cached_speedup": round(statistics.mean(cold) / statistics.mean(cached), 1),
        "campaign": {"calls": calls, "static_prompts": static_count, "static_render_s": round(static_s, 2),
                     "hits": hits, "misses": misses, "hit_rate": round(hits / (hits + misses), 3),
                     "answer_to_first_audio_ms": ms(answer_to_first),
                     "answer_to_first_audio_uncached_ms": round(uncached_first * 1000, 1),
                     "first_audio_ratio_uncached_vs_cached": round(uncached_first / statistics.mean(answer_to_first), 1)},
        "static_prompt_share": round(sum(1 for sid in SCRIPTS[locale] for p in load_by_id(sid).prompts.values()
                                         if all(s in STATIC_SLOTS for s in p.slots)) /
                                     sum(len(load_by_id(sid).prompts) for sid in SCRIPTS[locale]), 3),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--locale", choices=list(SCRIPTS), action="append")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = [bench_locale(loc, args.calls) for loc in (args.locale or list(SCRIPTS))]
    if args.json:
        print(json.dumps({"bench": "tts", "results": results}, ensure_ascii=False))
        return
    print(f"{'locale':7} {'voice':22} {'load s':>7} {'prompts':>7} {'cold p50 ms':>11} {'cold max':>9} "
          f"{'cached p50':>10} {'speedup':>8} {'1st audio p50':>13} {'RTF':>7}")
    for r in results:
        print(f"{r['locale']:7} {r['voice']:22} {r['voice_load_s']:7.2f} {r['prompts']:7d} "
              f"{r['cold_render_ms']['p50']:11.1f} {r['cold_render_ms']['max']:9.1f} "
              f"{r['cached_render_ms']['p50']:10.3f} {r['cached_speedup']:7.0f}x "
              f"{r['first_audio_ms']['p50']:13.1f} {r['rtf']:7.3f}")
    print()
    print(f"{'locale':7} {'calls':>5} {'static':>6} {'load s':>7} {'hits':>5} {'misses':>6} {'hit rate':>8} "
          f"{'answer->audio ms (cached)':>25} {'uncached ms':>11} {'ratio':>6}")
    for r in results:
        c = r["campaign"]
        print(f"{r['locale']:7} {c['calls']:5d} {c['static_prompts']:6d} {c['static_render_s']:7.2f} {c['hits']:5d} "
              f"{c['misses']:6d} {c['hit_rate']:8.1%} {c['answer_to_first_audio_ms']['p50']:25.3f} "
              f"{c['answer_to_first_audio_uncached_ms']:11.1f} {c['first_audio_ratio_uncached_vs_cached']:5.0f}x")


if __name__ == "__main__":
    main()
