"""The live-call recognizer hook without Asterisk: fillers, the "did you say …?" resolution by key and by
voice, and transcript meta in both ports (the short-answer screening is tested through Asterisk)."""
import asyncio
from datetime import date

from agi.media.answers import AnswerMatch, Heard
from agi.media.asr import Recognition
from agi.media.speech import CallSpeech, is_filler, transcript_meta
from agi.ports import InMemoryPorts
from agi.script.model import NoInput, Speech
from tests.engines import both_engines

TODAY = date(2026, 11, 30)


def rec(text, start=1.0, end=2.0):
    return Recognition(text, 0.8 if text else 0.0, 0.1 if text else 0.9, start, end, "whisper:whisper-base", "zh", 0.2)


def pending():
    m = AnswerMatch("confirm_identity", "是我", 0.6, 0.3)
    return Heard(rec("比我"), None, None, "confirm", m, "请问您是说“是我”吗？")


def test_fillers_are_not_answers_but_short_words_are():
    for t in ("嗯。", "嗯嗯", "Um.", "uh", ""):
        assert is_filler(t), t
    for t in ("是", "对。", "Yes.", "no"):
        assert not is_filler(t), t


def test_did_you_say_resolves_only_on_a_yes_by_key_or_voice():
    s = CallSpeech("zh", TODAY)
    assert s.resolve(pending(), "1") == Speech("是我", 0.6)
    assert s.resolve(pending(), "2") == Speech("", 0.0)
    assert s.resolve(pending(), None) == Speech("", 0.0)
    yes = Heard(rec("对。"), Speech("对。", 0.8), None, "classifier")
    no = Heard(rec("不是。"), Speech("不是。", 0.8), None, "classifier")
    silent = Heard(rec(""), NoInput(), None, "no_speech")
    assert s.resolve(pending(), yes) == Speech("是我", 0.6)
    assert s.resolve(pending(), no) == Speech("", 0.0)
    assert s.resolve(pending(), silent) == Speech("", 0.0)


@both_engines
def test_transcript_meta_reaches_the_in_memory_and_store_ports():
    heard = Heard(rec("我明天还款。", 3.2, 4.9), Speech("我明天还款。", 0.8), None, "classifier")
    meta = transcript_meta(heard)
    assert meta["backend"] == "whisper:whisper-base" and meta["asr_start"] == 3.2 and meta["asr_end"] == 4.9
    ports = InMemoryPorts()
    asyncio.run(ports.record_transcript_turn("c1", "agent", "请问…", 0.0, 3.0))
    asyncio.run(ports.record_transcript_turn("c1", "callee", "我明天还款。", 3.2, 4.9, meta=meta))
    assert ports.heard_of("c1") == [("我明天还款。", 3.2, 4.9, meta)]
    assert ports.turns_of("c1")[1] == ("callee", "我明天还款。", 3.2, 4.9)


def test_store_ports_keep_the_meta_beside_the_turn(tmp_path):
    """The recognizer's meta goes with the callee's turn, in memory and in the store (QA after a crash)."""
    from common.clock import FixedClock
    from dialer.calls.ports import StorePorts
    from dialer.store import core
    from tests.test_durability_recovery import AT, _place, _store

    store = _store(tmp_path, ["S1"])
    call_id = _place(store, "S1", answered=True)
    ports = StorePorts(store, FixedClock(AT))
    asyncio.run(ports.record_transcript_turn(call_id, "callee", "Yes.", 1.0, 1.5, meta={"backend": "whisper:x"}))
    asyncio.run(ports.record_transcript_turn(call_id, "agent", "Thanks.", 1.6, 2.0))
    want = [{"speaker": "callee", "text": "Yes.", "start": 1.0, "end": 1.5, "asr": {"backend": "whisper:x"}},
            {"speaker": "agent", "text": "Thanks.", "start": 1.6, "end": 2.0}]
    assert ports.calls[call_id].turns == want
    assert [e["data"] for e in core.call_events(store, call_id, "turn")] == want
