"""Voice cues (agi/media/cues.py): a caller who starts calm and then shouts and speaks fast is flagged
`agitated` and routed by the script's `on_cue`; a calm caller is not; anger and distress words in both
languages; the engine routes a cue once and never over cease / wrong number. Speech is espeak-ng at set
speeds, amplitudes and pitches (synthetic: not validated on real labelled calls)."""
from __future__ import annotations

import asyncio
import subprocess
import tempfile
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from agi.media.asr import Recognition
from agi.media.cues import CueTracker, measure, words_of
from agi.media.recognition import RecognitionService
from agi.media.speech import CallSpeech
from agi.script.engine import Engine
from agi.script.loader import ScriptError, load_by_id, load_script_text
from agi.script.model import Debtor, Listen, Say, Speech, Transfer
from common.wav import read_wav

SCRIPTS = Path(__file__).resolve().parent / "data" / "voice_scripts"
CALM = {"s": 160, "a": 40, "p": 45}
SHOUT = {"s": 270, "a": 200, "p": 75}  # faster, louder (+13 dB), higher


@lru_cache(maxsize=None)
def said(text: str, voice: str, s: int, a: int, p: int) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        raw, out = Path(d) / "raw.wav", Path(d) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(s), "-a", str(a), "-p", str(p), "-w", str(raw), text],
                       check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True,
                       capture_output=True)
        x, _ = read_wav(out)
    return np.asarray(x).astype("<i2").tobytes()


TURNS = {
    "en": ("en-us", ["Yes, this is Paula", "I was born in nineteen eighty four", "I told you I will pay next week"]),
    "zh": ("cmn-latn-pinyin", ["是的，我就是", "我是一九八四年出生的", "我说了下个星期还钱"]),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_calm_start_then_shouting_fast_is_agitated_a_calm_caller_is_not(lang):
    voice, texts = TURNS[lang]
    for last_style, expect in ((SHOUT, True), (CALM, False), ({"s": 175, "a": 50, "p": 50}, False)):
        tracker = CueTracker(lang)
        for t in texts[:2]:
            assert not tracker.observe(said(t, voice, **CALM), t).agitated  # the baseline turns
        cues = tracker.observe(said(texts[2], voice, **last_style), texts[2])
        assert cues.agitated is expect, (last_style, cues.reasons)
        assert not cues.distressed
        if expect:
            assert any(r.startswith("louder") for r in cues.reasons)


def test_loud_from_the_first_word_is_this_callers_normal_voice():
    """The baseline is the caller's own: someone who always speaks loudly and fast is not flagged."""
    voice, texts = TURNS["en"]
    tracker = CueTracker("en")
    assert not any(tracker.observe(said(t, voice, **SHOUT), t).agitated for t in texts)


def test_measures_are_sane():
    f = measure(said("I was born in nineteen eighty four", "en-us", **CALM), "I was born in nineteen eighty four")
    assert f.loudness_db is not None and -40 < f.loudness_db < -10
    assert f.pitch_hz is not None and 70 <= f.pitch_hz <= 250
    assert f.rate_kind == "text" and 2.0 < f.rate < 6.0
    silence = measure(b"\x00\x00" * 8000)
    assert silence.loudness_db is None and silence.rate is None
    peaks = measure(said("I was born in nineteen eighty four", "en-us", **CALM))  # no text: syllable peaks
    assert peaks.rate_kind == "peaks" and peaks.rate > 1.0


@pytest.mark.parametrize("text,lang,anger,distress", [
    ("Stop calling me, you idiots!", "en", True, False),
    ("I lost my job and I can't cope any more", "en", False, True),
    ("别再打了，烦死了", "zh", True, False),
    ("我真的活不下去了", "zh", False, True),
    ("I will pay tomorrow", "en", False, False),
    ("我明天还", "zh", False, False),
])
def test_anger_and_distress_words(text, lang, anger, distress):
    a, d = words_of(text, lang)
    assert bool(a) is anger and bool(d) is distress
    cues = CueTracker(lang).observe(b"", text)  # words flag from the first turn, no baseline needed
    assert cues.agitated is anger and cues.distressed is distress


DEBTOR = Debtor("D1", "Paula Promise", institution="Acme Finance", birth_year="1984")


def run_turns(events):
    script = load_by_id("cue_test_en", SCRIPTS)
    engine = Engine(script, DEBTOR, today=date(2026, 11, 23))
    actions = engine.start()
    for ev in events:
        actions = engine.handle(ev)
    return engine, actions


def test_the_script_routes_an_agitated_caller_to_the_soothing_node_once():
    engine, actions = run_turns([Speech("yes"), Speech("1984"),
                                 Speech("I told you I will pay next week", 0.9, ("agitated",))])
    said_ = " ".join(a.text for a in actions if isinstance(a, Say))
    transfer = next(a for a in actions if isinstance(a, Transfer))
    assert "frustrating" in said_
    assert transfer.context["reason"] == "calm_down" and transfer.context["cues"] == ["agitated"]
    assert "agitated" in transfer.context["intents"]  # on the collector's screen pop


def test_distress_goes_to_a_collector_and_cease_still_wins():
    _, actions = run_turns([Speech("yes"), Speech("I can't cope any more", 0.9, ("distressed",))])
    assert next(a for a in actions if isinstance(a, Transfer)).context["reason"] == "to_collector"
    _, actions = run_turns([Speech("yes"), Speech("stop calling me", 0.9, ("agitated",))])
    assert not any(isinstance(a, Transfer) for a in actions)  # cease: the bot says goodbye, no hand-over


def test_calm_caller_takes_the_ordinary_path():
    _, actions = run_turns([Speech("yes"), Speech("1984"), Speech("I will pay tomorrow", 0.9)])
    assert not any(isinstance(a, Transfer) for a in actions)
    assert any(isinstance(a, Say) and a.prompt_id == "promise_ok" for a in actions)


def test_an_unknown_cue_or_target_is_refused_with_its_place():
    text = (SCRIPTS / "cue_test_en.yaml").read_text().replace(
        "on_cue: {agitated: calm_down, distressed: to_collector}", "on_cue: {angry: calm_down, distressed: nowhere}")
    with pytest.raises(ScriptError) as err:
        load_script_text(text, "cue_test_en.yaml")
    msg = str(err.value)
    assert "unknown voice cue 'angry'" in msg and "unknown node 'nowhere'" in msg


class Scripted:
    """A recognizer that hears what each utterance was made from (the test knows the words)."""

    name, lang = "scripted", "en"

    def __init__(self, texts):
        self.texts = list(texts)

    def recognize(self, pcm, sample_rate=8000, *, start=0.0, end=None, prompt=None):
        text = self.texts.pop(0)
        return Recognition(text, 0.9, 0.01, start, end or start + 1, "scripted", "en", 0.0, text)


@pytest.mark.parametrize("style,routed", [(SHOUT, True), (CALM, False)])
def test_call_speech_flags_the_turn_and_the_engine_routes_it(style, routed):
    """The live hook: CallSpeech measures each answer against the caller's first ones and puts the cue on the
    engine's Speech event."""
    voice, texts = TURNS["en"]
    texts = ["Yes.", "Nineteen eighty four.", "I told you I will pay next week"]
    pcms = [said(texts[0], voice, **CALM), said(texts[1], voice, **CALM), said(texts[2], voice, **style)]
    svc = RecognitionService(1, loader=lambda lang: Scripted(texts))
    script = load_by_id("cue_test_en", SCRIPTS)
    engine = Engine(script, DEBTOR, today=date(2026, 11, 23))

    async def main():
        speech = CallSpeech("en", date(2026, 11, 23), service=svc)
        actions = engine.start()
        for i, pcm in enumerate(pcms):
            listen = next(a for a in actions if isinstance(a, Listen))
            u = SimpleNamespace(pcm=pcm, start=float(10 * i), end=float(10 * i) + len(pcm) / 16000,
                                speech_start=float(10 * i) + 0.3)
            heard = await speech(u, listen, "en-US")
            actions = engine.handle(heard.event)
        return actions, heard

    actions, heard = asyncio.run(main())
    svc.close()
    transfer = next((a for a in actions if isinstance(a, Transfer)), None)
    if routed:
        assert heard.event.cues == ("agitated",) and transfer is not None
        assert transfer.context["reason"] == "calm_down"
    else:
        assert heard.event.cues == () and transfer is None


SHIPPED = ["m1_reminder", "m2_firm_instalment", "m3_plan_or_notice"]


@pytest.mark.parametrize("script_id", SHIPPED + [s + "_en" for s in SHIPPED])
def test_every_shipped_script_routes_cues_to_a_person_with_the_reason_on_the_screen_pop(script_id):
    """The shipped campaign scripts (campaigns/scripts/) branch on both cues: agitated to the soothing node
    (an apology, then a collector), distressed to a collector; the transfer context carries the cue. A calm
    answer takes the script's ordinary path; cease still wins over a cue."""
    script = load_by_id(script_id)
    zh = script.lang == "zh"
    debtor = Debtor("D1", "张三" if zh else "Jane Roe", institution="示例银行" if zh else "Example Bank",
                    birth_year="1984")
    yes, later, stop = ("是我", "我说了下个星期还", "别再打了") if zh else ("yes speaking", "I told you next week",
                                                                     "stop calling me")
    for cue, node in (("agitated", "calm_down"), ("distressed", "care")):
        engine = Engine(script, debtor, today=date(2026, 11, 23))
        engine.start()
        engine.handle(Speech(yes, 0.9))
        actions = engine.handle(Speech(later, 0.9, (cue,)))
        transfer = next(a for a in actions if isinstance(a, Transfer))
        assert transfer.context["reason"] == node and transfer.context["cues"] == [cue]
        assert cue in transfer.context["intents"]  # what the collector's screen pop lists
        if node == "calm_down":
            assert any(isinstance(a, Say) and a.prompt_id == "calm_down" for a in actions)
    engine = Engine(script, debtor, today=date(2026, 11, 23))
    engine.start()
    engine.handle(Speech(yes, 0.9))
    calm = engine.handle(Speech(later, 0.9))
    assert not any(isinstance(a, Transfer) for a in calm)
    engine = Engine(script, debtor, today=date(2026, 11, 23))
    engine.start()
    assert not any(isinstance(a, Transfer) for a in engine.handle(Speech(stop, 0.9, ("agitated",))))
