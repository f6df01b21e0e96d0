"""Voice-path figures on real Asterisk, measured on the carrier side (bench for issue 14).

    python -m bench.voice [--talk 16] [--noise 16] [--respond 8] [--parallel 4] [--json]

- barge-in latency: the debtor's speech onset (the carrier's recording of what it said, wall-clock) → the
  bot silent at the debtor (where Asterisk says the prompt stopped, endpos, after the prompt's start);
  p50 / p95 over calls that talk over the interruptible question at varied points, English and Mandarin.
- false interruptions: calls where a cough, a door, a "嗯" or a burst of hiss falls on the question; how
  many stopped the prompt, how many of those resumed it, and how many lost it (goal 0).
- response latency: the end of the debtor's speech (the carrier's `-said` recording) → the bot's first audio
  at the debtor (the carrier's mix minus the debtor's part), over calls where a Piper-voiced debtor says
  "Yes." / "Nineteen eighty-four." / "I will pay tomorrow." to speech_test_en with the live recognizer
  (Whisper tiny.en); baseline in the same run: the same calls without a recognizer (the bot only knows that
  the debtor spoke), which isolates what recognition costs. Goal p50 <= 700 ms, p95 <= 1 s.
- baseline, measured in the same calls: how long the bot would have talked on over the debtor without
  barge-in (the rest of the question after the onset), and the stop decision alone (onset → ControlPlayback
  sent).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from agi.media.tts import TTS
from agi.script.loader import load_by_id
from common.paths import REPO
from common.wav import duration
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.voicelab import VoiceLab, cuts, heard_whole, responses

SCRIPTS = REPO / "tests" / "data" / "voice_scripts"
PHRASES = [("This is Paula speaking", "en-us"), ("我就是王先生本人", "cmn-latn-pinyin"),
           ("Who is calling please", "en-us"), ("你们是哪里", "cmn-latn-pinyin")]
SOUNDS = [{"cough": True}, {"door": True}, {"say": "嗯", "voice": "cmn-latn-pinyin"}, {"noise": 0.6}]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


async def run(talk: int, noise: int, parallel: int, run_dir: Path) -> dict:
    tts = TTS()
    script = load_by_id("voice_test_en", SCRIPTS)
    values = {"institution": "Acme Finance", "collector_name": "Alex", "debtor_name": "Paula Promise"}
    wavs = {pid: tts.render(p.text.format(**values), script.locale) for pid, p in script.prompts.items()}
    identity, question = duration(wavs["identity"]), duration(wavs["ask_name"])
    behaviours, plan = {}, []
    for i in range(talk):
        number = f"+1212555{2000 + i:04d}"
        into = 0.5 + (i * 0.37) % (question - 1.5)  # spread over the question
        text, voice = PHRASES[i % len(PHRASES)]
        behaviours[number] = {"speech": [{"at": round(0.2 + identity + into, 2), "say": text, "voice": voice}],
                              "hangup_after": 40}
        plan.append(("talk", number, voice))
    for i in range(noise):
        number = f"+1212555{3000 + i:04d}"
        into = 0.6 + (i * 0.41) % (question - 2.0)
        sound = SOUNDS[i % len(SOUNDS)]
        behaviours[number] = {"speech": [{"at": round(0.2 + identity + into, 2), **sound}], "hangup_after": 40}
        plan.append(("noise", number, next(iter(sound))))
    bf = behaviours_from_dict(behaviours)
    out: dict = {"talk": [], "noise": []}
    t0 = time.monotonic()
    async with VoiceLab(run_dir, bf, script, tts) as lab:
        for k in range(0, len(plan), parallel):
            batch = plan[k:k + parallel]
            calls = await asyncio.gather(*(lab.call(number) for _, number, _ in batch))
            for (kind, number, what), call in zip(batch, calls):
                facts = call.facts
                rec = {"number": number, "what": what,
                       "stops": sum(f["kind"] == "stop" for f in facts),
                       "resumes": sum(f["kind"] == "resume" for f in facts),
                       "interruptions": sum(f["kind"] == "interruption" for f in facts)}
                c = cuts(lab, call)
                if c:
                    rec["latency_ms"], rec["detect_ms"] = c[0].latency_ms, c[0].detect_ms
                    play = next(f for f in facts if f["kind"] == "play" and f["prompt_id"] == "ask_name")
                    rec["talk_on_ms"] = round((play["wall"] + question - c[0].onset_wall) * 1000, 1)
                if kind == "noise":
                    rec["heard_fraction"] = round(heard_whole(lab, call, wavs["ask_name"])[0], 3)
                out[kind].append(rec)
        out["channels_left"] = await lab.channels()
        out["taps_left"] = len(lab.media.live) if lab.media else -1
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def untuned(script):
    """The script as before the latency work of issue 15: no provisional-endpoint decode, no short yes/no
    endpoint (every node ends its turn after its own end_silence_ms)."""
    from dataclasses import replace

    off = {"early_decode_ms": 0, "answer_silence_ms": 0}
    nodes = {k: replace(n, voice=replace(n.voice, **off)) if n.voice else n for k, n in script.nodes.items()}
    return replace(script, voice=replace(script.voice, **off), nodes=nodes)


async def respond(n: int, parallel: int, run_dir: Path, recognize: bool, tuned: bool = True) -> list[float]:
    """Response latencies (ms) of `n` speech-driven calls, `parallel` at a time."""
    from agi.media.speech import CallSpeech, preload
    from tests.asr_speakers import piper, write_wav

    tts = TTS()
    script = load_by_id("speech_test_en", SCRIPTS)
    if not tuned:
        script = untuned(script)
    for p in script.prompts.values():  # as the daemon's prerender does
        tts.render(p.text.format(institution="Acme Finance"), script.locale)
    audio = run_dir / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    turns = [str(write_wav(audio / f"r{i}.wav", piper(t)))
             for i, t in enumerate(("Yes.", "Nineteen eighty-four.", "I will pay tomorrow."))]
    numbers = [f"+1212555{4000 + i:04d}" for i in range(n)]
    bf = behaviours_from_dict({num: {"speech": [{"after_silence": 900, "audio": w, "label": f"t{k}"}
                                                for k, w in enumerate(turns)], "hangup_after": 40}
                               for num in numbers})
    if recognize:
        await preload("en")
    out: list[float] = []
    async with VoiceLab(run_dir / (("asr" if recognize else "base") + ("" if tuned else "-untuned")), bf, script, tts,
                        recognize=(lambda day: CallSpeech("en", day)) if recognize else None) as lab:
        for k in range(0, n, parallel):
            calls = await asyncio.gather(*(lab.call(num, timeout=90) for num in numbers[k:k + parallel]))
            for call in calls:
                out += [r.latency_ms for r in responses(lab, call) if r.latency_ms is not None]
                EARLY[tuned and recognize] = EARLY.get(tuned and recognize, 0) + getattr(call.hook, "early_used", 0)
    return out


EARLY: dict[bool, int] = {}  # turns whose hearing was started on the provisional endpoint (tuned, untuned)


def summarise(data: dict, parallel: int) -> dict:
    lat = [r["latency_ms"] for r in data["talk"] if "latency_ms" in r]
    det = [r["detect_ms"] for r in data["talk"] if "detect_ms" in r]
    base = [r["talk_on_ms"] for r in data["talk"] if "talk_on_ms" in r]
    noise = data["noise"]
    stopped = [r for r in noise if r["stops"]]
    lost = [r for r in stopped if r["interruptions"] or r["resumes"] < r["stops"]]
    return {
        "calls": len(data["talk"]) + len(noise), "parallel": parallel, "seconds": data["seconds"],
        "barge_in_ms": {"n": len(lat), "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": max(lat, default=None)},
        "stop_decision_ms": {"p50": pct(det, 0.5), "p95": pct(det, 0.95)},
        "baseline_without_barge_in_ms": {"p50": pct(base, 0.5), "p95": pct(base, 0.95)},
        "talkers_not_cut": sum(1 for r in data["talk"] if not r["stops"]),
        "noise_calls": len(noise),
        "false_interruptions": len(stopped),
        "false_interruption_rate": round(len(stopped) / len(noise), 3) if noise else None,
        "resumed": sum(1 for r in stopped if r not in lost),
        "prompts_lost": len(lost),
        "by_sound": {w: {"calls": sum(r["what"] == w for r in noise),
                         "stopped": sum(r["what"] == w and bool(r["stops"]) for r in noise),
                         "lost": sum(r["what"] == w for r in lost)} for w in sorted({r["what"] for r in noise})},
        "heard_fraction_min": min((r["heard_fraction"] for r in noise), default=None),
        "left_behind": {"channels": data["channels_left"], "taps": data["taps_left"]},
        "load": os.getloadavg()[0],
    }


def print_response(r: dict, parallel: int) -> None:
    a, b = r["with_asr_ms"], r["without_asr_ms"]
    print(f"response latency (end of callee speech -> first bot audio at the callee), {r['calls']} calls x 3 turns, "
          f"{parallel} at a time, {r['seconds']} s (load {os.getloadavg()[0]:.2f}):")
    print(f"  with recognition (Whisper tiny.en): n={a['n']} p50 {a['p50']} ms  p95 {a['p95']} ms  max {a['max']} ms"
          f"   [goal p50 <= 700, p95 <= 1000]; turns decoded from the provisional endpoint: {r.get('early_used')}")
    u = r["untuned_asr_ms"]
    print(f"  baseline, same calls, recognition without the early decode and the short yes/no endpoint: n={u['n']} "
          f"p50 {u['p50']} ms  p95 {u['p95']} ms  max {u['max']} ms")
    print(f"  baseline, same calls without a recognizer: n={b['n']} p50 {b['p50']} ms  p95 {b['p95']} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--talk", type=int, default=16)
    ap.add_argument("--noise", type=int, default=16)
    ap.add_argument("--respond", type=int, default=8, help="speech-driven calls for response latency")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    resp: dict = {}
    with tempfile.TemporaryDirectory() as d:
        if args.respond:
            t0 = time.monotonic()
            asr = asyncio.run(respond(args.respond, args.parallel, Path(d) / "respond", True))
            before = asyncio.run(respond(args.respond, args.parallel, Path(d) / "respond", True, tuned=False))
            base = asyncio.run(respond(args.respond, args.parallel, Path(d) / "respond", False))
            resp = {"calls": args.respond, "seconds": round(time.monotonic() - t0, 1),
                    "with_asr_ms": {"n": len(asr), "p50": pct(asr, 0.5), "p95": pct(asr, 0.95), "max": max(asr, default=None)},
                    "untuned_asr_ms": {"n": len(before), "p50": pct(before, 0.5), "p95": pct(before, 0.95),
                                       "max": max(before, default=None)},
                    "without_asr_ms": {"n": len(base), "p50": pct(base, 0.5), "p95": pct(base, 0.95)},
                    "early_used": EARLY.get(True, 0)}
        if not (args.talk or args.noise):
            if args.json:
                print(json.dumps({"response": resp}, indent=2))
            else:
                print_response(resp, args.parallel)
            return
        data = asyncio.run(run(args.talk, args.noise, args.parallel, Path(d) / "bargein"))
    s = summarise(data, args.parallel)
    if args.json:
        print(json.dumps({"summary": s, "response": resp, "calls": data}, indent=2, ensure_ascii=False))
        return
    if resp:
        print_response(resp, args.parallel)
    b, d_, base = s["barge_in_ms"], s["stop_decision_ms"], s["baseline_without_barge_in_ms"]
    print(f"voice bench: {s['calls']} calls, {s['parallel']} at a time, {s['seconds']} s (load {s['load']:.2f})")
    print(f"barge-in (callee onset -> bot silent at callee): n={b['n']} p50 {b['p50']} ms  p95 {b['p95']} ms  "
          f"max {b['max']} ms   [goal p95 <= 150]")
    print(f"  stop decision (onset -> ControlPlayback sent): p50 {d_['p50']} ms  p95 {d_['p95']} ms")
    print(f"  baseline, same calls without barge-in (bot talks on): p50 {base['p50']} ms  p95 {base['p95']} ms")
    print(f"  talkers never cut: {s['talkers_not_cut']}")
    print(f"false interruptions: {s['false_interruptions']} of {s['noise_calls']} noise calls "
          f"(rate {s['false_interruption_rate']}); resumed {s['resumed']}, prompts lost {s['prompts_lost']}  [goal 0 lost]")
    for w, v in s["by_sound"].items():
        print(f"  {w:6s} calls {v['calls']:2d}  stopped {v['stopped']:2d}  lost {v['lost']:2d}")
    print(f"  least of the question heard on a noise call: {s['heard_fraction_min']}")
    print(f"left behind: {s['left_behind']}")


if __name__ == "__main__":
    main()
