"""Recordings QA audio figures: audio hours transcribed per CPU-hour with VAD gating (`dialer qa transcribe`)
and without it (every second decoded in 9.5-s windows: the baseline, same run, same audio); word error rate of
the transcripts on the test recordings; live alert latency from the end of a collector's phrase to the alert,
with live QA's 0.4-s endpointing beside the bot's 0.7 s (same run).

    python -m bench.qa_audio [--calls 6] [--seconds 60] [--json]

Audio (offline, English): synthetic collector calls as the PBX records them, one WAV per leg (what the debtor
said, what the debtor heard): the Piper en-US voice through a G.711 µ-law round trip, sentences placed on a
timeline with the pauses of a conversation, line hiss at -50 dBFS everywhere (a real line is never digital
silence, which the recogniser would skip for free). Each leg talks about a third of the call. Synthetic speech
is cleaner than real callers: the WER here is a floor, not a forecast. Latency is measured offline with the
same code the live path runs (VAD endpointing + Whisper tiny.en + the checker on the phrase); through Asterisk,
tests/test_e2e_live_qa.py stores each alert's latency (README quotes what it printed).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import numpy as np

from agi.media.asr import recognize_utterance, recognizer_for
from agi.media.frames import Utterance
from agi.media.vad import VadAnalyzer, frames_of
from agi.script.model import VoiceParams
from bench.asr import en_words, error_rate, ulaw_round_trip
from dialer.qa import detect
from dialer.qa.live import LIVE_VAD, phrase_hits
from dialer.qa.rules import load_rules
from dialer.qa.transcribe import transcribe_pcm
from tests.asr_speakers import piper

RATE = 8000
AGENT_LINES = [
    "Hello, this is Sam calling from Acme Finance.",
    "Am I speaking with Jane Miller?",
    "Thank you. For security, can you tell me the year you were born?",
    "Thanks. Your account shows a balance that is past due.",
    "Would you be able to make a payment by the end of the week?",
    "We can also set up a plan that fits your budget.",
    "I will send you a letter with the details today.",
    "Thank you for your time, and have a good afternoon.",
]
CALLEE_LINES = [
    "Yes, this is Jane.",
    "I was born in the spring.",
    "I know, I lost my job last month.",
    "Maybe next Friday would work for me.",
    "A plan sounds better.",
    "Okay, thank you.",
]
FORBIDDEN = ["We will come to your house and hurt your family.",
             "If you do not pay today, we will tell your boss and your neighbours.",
             "You are a useless liar and a thief.",
             "This is Deputy Brown from the county sheriff's office."]


def _hiss(n: int, rng: np.random.Generator, dbfs: float = -50.0) -> np.ndarray:
    x = np.convolve(rng.normal(0, 1, n), np.ones(3) / 3, mode="same")
    return x * (10 ** (dbfs / 20)) * 32768 / np.sqrt(np.mean(x ** 2))


def make_call(seconds: float, seed: int) -> dict[str, Any]:
    """Two legs on one timeline: agent and callee take turns with pauses; (pcm, reference text) per leg."""
    rng, pick = np.random.default_rng(seed), random.Random(seed)
    n = int(seconds * RATE)
    legs = {"heard": np.zeros(n), "callee": np.zeros(n)}
    refs: dict[str, list[str]] = {"heard": [], "callee": []}
    t, turn = 0.5, 0
    while True:
        leg, lines = ("heard", AGENT_LINES) if turn % 2 == 0 else ("callee", CALLEE_LINES)
        text = lines[(turn // 2 + seed) % len(lines)]
        a = np.frombuffer(piper(text), "<i2").astype(np.float64)
        i = int(t * RATE)
        if i + len(a) >= n:
            break
        legs[leg][i:i + len(a)] += a
        refs[leg].append(text)
        t += len(a) / RATE + pick.uniform(1.5, 4.0)  # the other side's pause, then a silence in the call
        turn += 1
    out = {}
    for leg, x in legs.items():
        pcm = np.clip(x + _hiss(n, rng), -32768, 32767).astype("<i2").tobytes()
        out[leg] = (ulaw_round_trip(pcm), " ".join(refs[leg]))
    return out


def throughput(calls: list[dict[str, Any]], gate: bool) -> dict[str, Any]:
    rec = recognizer_for("en")
    audio = speech = cpu = 0.0
    pairs = []
    for call in calls:
        for leg, (pcm, ref) in call.items():
            text = transcribe_pcm(pcm, rec, "agent" if leg == "heard" else "callee", gate=gate)
            audio += text.audio_seconds
            speech += text.speech_seconds
            cpu += text.cpu_seconds
            pairs.append((en_words(ref), en_words(" ".join(t["text"] for t in text.turns))))
    return {"audio_hours": round(audio / 3600, 4), "decoded_seconds": round(speech, 1), "cpu_seconds": round(cpu, 1),
            "audio_hours_per_cpu_hour": round(audio / cpu, 1) if cpu else None, "wer": error_rate(pairs),
            "cpu_seconds_per_speech_second": round(cpu / speech, 3) if speech else None}


def latency(params: VoiceParams, seed: int = 7) -> dict[str, Any]:
    """End of each forbidden phrase → alert: the endpointing wait (frame time) plus recognition and the
    checker (measured wall time on this machine)."""
    rec, det = recognizer_for("en"), detect.load()
    profile = load_rules().for_jurisdiction("us")
    det.score(["agent"], ["warm up"])
    rng = np.random.default_rng(seed)
    lat, hits = [], 0
    for i, phrase in enumerate(FORBIDDEN * 4):
        greeting = np.frombuffer(piper(AGENT_LINES[i % len(AGENT_LINES)]), "<i2").astype(np.float64)
        bad = np.frombuffer(piper(phrase), "<i2").astype(np.float64)
        gap = np.zeros(int(0.8 * RATE))
        x = np.concatenate([greeting, gap, bad, np.zeros(2 * RATE)])
        pcm = ulaw_round_trip(np.clip(x + _hiss(len(x), rng), -32768, 32767).astype("<i2").tobytes())
        vad = VadAnalyzer(params)
        for frame in frames_of(pcm):
            outs = vad.feed(frame)
            utt = next((o for o in outs if isinstance(o, Utterance)), None)
            if utt is None:
                continue
            wait = frame.at + 0.02 - utt.end
            t0 = time.perf_counter()
            r = recognize_utterance(rec, utt)
            found = phrase_hits(r.text, "en", profile, det) if r.text else []
            took = time.perf_counter() - t0
            if found:
                hits += 1
                lat.append(wait + took)
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else None
    return {"end_silence_ms": params.end_silence_ms, "phrases": len(FORBIDDEN) * 4, "alerts": hits,
            "p50_s": round(statistics.median(lat), 3) if lat else None, "p95_s": round(p95, 3) if p95 else None,
            "max_s": round(max(lat), 3) if lat else None}


def run(n_calls: int, seconds: float) -> dict[str, Any]:
    calls = [make_call(seconds, seed) for seed in range(n_calls)]
    recognizer_for("en").recognize(calls[0]["heard"][0][:RATE * 2], RATE)  # load before timing
    gated = throughput(calls, gate=True)
    ungated = throughput(calls, gate=False)
    live = latency(LIVE_VAD)
    bot = latency(VoiceParams())  # the bot's default endpointing, as the baseline
    r, s = gated["audio_hours_per_cpu_hour"], gated["decoded_seconds"] / (gated["audio_hours"] * 3600)
    rtf = gated["cpu_seconds_per_speech_second"]
    return {"calls": n_calls, "seconds_per_call": seconds, "gated": gated, "ungated": ungated,
            "live_latency": live, "live_latency_bot_endpointing": bot,
            "sizing": {"audio_hours_per_cpu_hour": r, "speech_fraction_per_leg": round(s, 3),
                       "cpu_seconds_per_speech_second": rtf,
                       "post_call_cores_for_N_collector_hours_per_day": f"2 * N / ({r} * 24)",
                       "live_cores_for_C_collectors_on_calls": f"C * {round(s * rtf, 3)}"}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.calls, a.seconds)
    if a.json:
        print(json.dumps(res))
        return
    g, u = res["gated"], res["ungated"]
    print(f"{a.calls} synthetic English calls x {a.seconds:.0f} s, two legs each "
          f"({g['audio_hours'] * 60:.1f} min of leg audio), Whisper tiny.en, one thread")
    print(f"{'':24}{'audio h / CPU h':>16}{'decoded s':>11}{'CPU s':>8}{'WER':>7}")
    for name, x in (("VAD-gated (qa transcribe)", g), ("every second (baseline)", u)):
        print(f"{name:24}{x['audio_hours_per_cpu_hour']:>16}{x['decoded_seconds']:>11}{x['cpu_seconds']:>8}"
              f"{x['wer']:>7}")
    for name, x in (("live (0.4 s endpoint)", res["live_latency"]),
                    ("bot endpointing 0.7 s", res["live_latency_bot_endpointing"])):
        print(f"alert latency, {name}: p50 {x['p50_s']} s, p95 {x['p95_s']} s, max {x['max_s']} s "
              f"({x['alerts']} of {x['phrases']} forbidden phrases alerted)")
    s = res["sizing"]
    print(f"sizing: post-call cores = 2 x N collector-hours/day / ({s['audio_hours_per_cpu_hour']} x 24 h); "
          f"live cores = C collectors on calls x {s['live_cores_for_C_collectors_on_calls'].split('* ')[1]}")


if __name__ == "__main__":
    main()
