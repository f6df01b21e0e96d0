"""Many debtors talking to the bot at once, on real Asterisk (issue 19): the shared recognition service
against one decoder per call.

    python -m bench.voice_load [--calls 10,30,60] [--baseline 10,30] [--stagger 0] [--json]

Each load: N simultaneous calls, half English (speech_test_en: "Yes." / "Nineteen eighty-four." / "I will
pay tomorrow.", Piper voice) and half Mandarin (speech_test_zh: 不是, espeak-ng); every fifth caller answers
over the question (a barge-in), every tenth stays silent. All calls are placed at once through the PBX to
the speaking carrier on 127.0.0.1 (`--stagger S` spreads the N starts evenly over S seconds instead, as a
pacer filling lines does: answers then arrive spread out rather than all in the same second). Printed per load:
- CPU seconds and share of the 2 cores per process over the load: this process (the daemon's part: AGI,
  taps, VAD, recognition), the PBX Asterisk, the carrier Asterisk (the load generator: a real deployment
  does not pay it);
- resident memory of this process before the calls (models loaded) and its peak during them;
- response latency (end of the callee's speech → the bot's first audio at the callee) p50 / p95;
- barge-in latency (callee onset → the bot silent at the callee) p50 / p95;
- calls that failed (no result, or a flow error), utterances past their deadline ("sorry, again?");
Baseline in the same run: the same load with one decoder per call (each call loads its own model and
decodes on its own thread: no shared pool), at the sizes in --baseline. Audio gaps at the callee (late RTP
frames) are not measured here.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agi.media.tts import TTS
from agi.script.loader import load_by_id
from bench.voice import pct
from common.paths import REPO
from common.wav import duration
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.voicelab import VoiceLab, cuts, responses

SCRIPTS = REPO / "tests" / "data" / "voice_scripts"
INSTITUTIONS = {"en-US": "Acme Finance", "zh-CN": "示例银行"}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> "PeakRss":
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def audio_files(tts: TTS, run_dir: Path) -> dict[str, str]:
    from tests.asr_speakers import espeak_zh, piper, write_wav

    d = run_dir / "audio"
    d.mkdir(parents=True, exist_ok=True)
    return {"yes": str(write_wav(d / "yes.wav", piper("Yes."))),
            "year": str(write_wav(d / "year.wav", piper("Nineteen eighty-four."))),
            "pay": str(write_wav(d / "pay.wav", piper("I will pay tomorrow."))),
            "bushi": str(write_wav(d / "bushi.wav", espeak_zh("不是")))}


def plan(n: int, audio: dict[str, str], question_at: dict[str, float], base: int) -> dict[str, dict]:
    behaviours: dict[str, dict] = {}
    for i in range(n):
        zh = i % 2 == 1
        number = f"+86138000{base + i:05d}" if zh else f"+1212555{base + i:04d}"
        if i % 10 == 9:
            behaviours[number] = {"hangup_after": 30}  # silent
            continue
        first = audio["bushi"] if zh else audio["yes"]
        if i % 5 == 2:  # answers over the question: a barge-in
            turn0 = {"at": question_at["zh" if zh else "en"], "audio": first, "label": "t0"}
        else:
            turn0 = {"after_silence": 900, "audio": first, "label": "t0"}
        speech = [turn0]
        if not zh:
            speech += [{"after_silence": 900, "audio": audio["year"], "label": "t1"},
                       {"after_silence": 900, "audio": audio["pay"], "label": "t2"}]
        behaviours[number] = {"speech": speech, "hangup_after": 45}
    return behaviours


async def one_load(n: int, shared: bool, run_dir: Path, tts: TTS, audio: dict[str, str],
                   question_at: dict[str, float], base: int, stagger: float = 0.0) -> dict:
    from agi.media.asr import WhisperRecognizer, WHISPER_FOR
    from agi.media.models import packaged_model_dir
    from agi.media.recognition import RecognitionService, shared_service
    from agi.media.speech import CallSpeech, lang_of

    en, zh = load_by_id("speech_test_en", SCRIPTS), load_by_id("speech_test_zh", SCRIPTS)
    behaviours = plan(n, audio, question_at, base)
    scripts = {num: (zh if num.startswith("+86") else en) for num in behaviours}
    service = shared_service()
    own: list[RecognitionService] = []
    if shared:
        await asyncio.gather(service.preload("en"), service.preload("zh"))
        served0, missed0 = service.load().served, service.load().missed

    def hook(day: Any, locale: str) -> Any:
        lang = lang_of(locale)
        if shared:
            return CallSpeech(lang, day)
        # one decoder per call: its own model instance and its own decoding thread (loaded on that thread
        # at once, off the event loop, as a per-call design would)
        svc = RecognitionService(1, loader=lambda _lang: WhisperRecognizer(packaged_model_dir(WHISPER_FOR[lang]),
                                                                           lang))
        svc.submit(lang, lambda m: None, deadline=time.monotonic() + 60)
        own.append(svc)
        return CallSpeech(lang, day, service=svc)

    out: dict[str, Any] = {"calls": n, "shared": shared, "stagger_s": stagger}
    async with VoiceLab(run_dir, behaviours_from_dict(behaviours), en, tts, scripts=scripts,
                        institutions=INSTITUTIONS, recognize=hook) as lab:
        st = lab.harness.state
        assert st is not None
        pids = {"bot (this process)": os.getpid(), "pbx asterisk": st.pbx.pid, "carrier asterisk": st.carrier.pid}
        c0 = {k: cpu_seconds(p) for k, p in pids.items()}
        rss0 = rss_mb()
        t0 = time.monotonic()
        with PeakRss() as peak:
            async def placed(i: int, num: str) -> Any:
                await asyncio.sleep(i * stagger / n)
                return await lab.call(num, timeout=150)

            results = await asyncio.gather(*(placed(i, num) for i, num in enumerate(behaviours)),
                                           return_exceptions=True)
        wall = time.monotonic() - t0
        out["seconds"] = round(wall, 1)
        out["cpu"] = {k: {"seconds": round(cpu_seconds(p) - c0[k], 1),
                          "share_of_2_cores": round((cpu_seconds(p) - c0[k]) / wall / 2, 3)} for k, p in pids.items()}
        out["rss_mb"] = {"before": round(rss0, 1), "peak": round(peak.peak, 1)}
        calls = [r for r in results if not isinstance(r, BaseException)]
        out["failed"] = sum(1 for r in results if isinstance(r, BaseException) or r.result is None)
        resp: list[float] = []
        barge: list[float] = []
        for c in calls:
            try:
                resp += [r.latency_ms for r in responses(lab, c) if r.latency_ms is not None]
                barge += [x.latency_ms for x in cuts(lab, c)]
            except Exception:  # noqa: BLE001 - a recording that could not be read counts as a failed call
                out["failed"] += 1
        out["response_ms"] = {"n": len(resp), "p50": pct(resp, 0.5), "p95": pct(resp, 0.95)}
        out["barge_in_ms"] = {"n": len(barge), "p50": pct(barge, 0.5), "p95": pct(barge, 0.95)}
        out["early_decodes"] = sum(getattr(c.hook, "early_used", 0) for c in calls)
        out["left_behind"] = {"channels": await lab.channels(), "taps": len(lab.media.live) if lab.media else -1}
    if shared:
        ld = service.load()
        out["pool"] = {"workers": ld.workers, "served": ld.served - served0, "missed_deadline": ld.missed - missed0,
                       "decode_ms": round((ld.decode_s or 0) * 1000, 1)}
    else:
        out["pool"] = {"workers": len(own), "missed_deadline": sum(s.load().missed for s in own)}
        for s in own:
            s.close()
    out["load_avg"] = os.getloadavg()[0]
    return out


def show(r: dict) -> None:
    kind = "shared pool" if r["shared"] else "one decoder per call (baseline)"
    spread = f", starts spread over {r['stagger_s']:g} s" if r.get("stagger_s") else ", all started at once"
    print(f"{r['calls']} calls, {kind}{spread}: {r['seconds']} s, failed {r['failed']}, left {r['left_behind']}, "
          f"load avg {r['load_avg']:.2f}")
    print(f"  response p50 {r['response_ms']['p50']} ms  p95 {r['response_ms']['p95']} ms (n={r['response_ms']['n']})"
          f"   [goal p95 <= 1000]")
    print(f"  barge-in p50 {r['barge_in_ms']['p50']} ms  p95 {r['barge_in_ms']['p95']} ms (n={r['barge_in_ms']['n']})"
          f"   [goal p95 <= 150]")
    print(f"  rss this process: {r['rss_mb']['before']} MB before, {r['rss_mb']['peak']} MB peak; pool {r['pool']};"
          f" early decodes used {r['early_decodes']}")
    for k, v in r["cpu"].items():
        print(f"  cpu {k:20s} {v['seconds']:7.1f} s  ({100 * v['share_of_2_cores']:.0f} % of 2 cores)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="10,30,60", help="loads with the shared pool (comma-separated)")
    ap.add_argument("--baseline", default="10,30", help="loads with one decoder per call ('' for none)")
    ap.add_argument("--stagger", type=float, default=0.0,
                    help="spread each load's call starts over this many seconds (0: all at once, the worst case)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    loads = [int(x) for x in args.calls.split(",") if x.strip()]
    baseline = [int(x) for x in args.baseline.split(",") if x.strip()]
    tts = TTS()
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        run = Path(d)
        en, zh = load_by_id("speech_test_en", SCRIPTS), load_by_id("speech_test_zh", SCRIPTS)
        question_at = {}
        for key, script in (("en", en), ("zh", zh)):
            inst = INSTITUTIONS[script.locale]
            wavs = {pid: tts.render(p.text.format(institution=inst), script.locale) for pid, p in script.prompts.items()}
            question_at[key] = round(0.2 + duration(wavs["identity"]) + 1.0, 2)
        audio = audio_files(tts, run)
        print(f"resident memory before any model: {rss_mb():.1f} MB", flush=True)
        runs = [(n, True) for n in loads] + [(n, False) for n in baseline]
        for k, (n, shared) in enumerate(runs):
            r = asyncio.run(one_load(n, shared, run / f"load{k}", tts, audio, question_at, 100 * k, args.stagger))
            out.append(r)
            if not args.json:
                show(r)
                print(flush=True)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
