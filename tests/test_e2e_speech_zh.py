"""Speech drives the script in live calls, Mandarin, end to end through real Asterisk: the carrier plays
espeak-ng `cmn-latn-pinyin` speech, Whisper base (with the node's expected answers as its prompt, matched by
toneless pinyin) hears it, and the script follows.

Said plainly: Whisper base does not hear every espeak clip. Where it cannot (espeak's 是的 comes out as 转 or
比的 here), these tests assert what must hold anyway: the bot never acts on a wrong answer — it asks again
(the node's no-match prompt) or asks "您是说…吗？" and acts only on a confirmed answer. Silence and low hiss
give no Speech event."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi.media.speech import CallSpeech, preload
from agi.script.loader import load_by_id
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.voicelab import VoiceLab, responses
from tests.asr_speakers import espeak_zh, write_wav

pytestmark = pytest.mark.asterisk
SCRIPTS = Path(__file__).resolve().parent / "data" / "voice_scripts"
ZONE = ZoneInfo("Asia/Shanghai")
PROMISE, SHIDE, BUSHI, HUMAN, WRONG, CONFIRM, SILENT, HISS = (f"+1212555018{i}" for i in range(8))
GAP = 900
# where each answer leads from the greeting; any other answer node reached would be acting on a wrong answer
ANSWER_NODES = {"verify", "deny", "to_collector", "wrong_number"}


@pytest.fixture(scope="module")
def speech_calls(tmp_path_factory, tts):
    script = load_by_id("speech_test_zh", SCRIPTS)
    today = datetime.now(ZONE).date()
    for p in script.prompts.values():  # rendered before the calls, as the daemon's prerender does
        tts.render(p.text.format(institution="示例银行"), script.locale)
    audio = tmp_path_factory.mktemp("debtor-audio-zh")
    names = {"是的": "shide", "不是": "bushi", "我明天还款": "mingtian", "转人工": "rengong", "你打错了": "dacuo",
             "对": "dui", "一九八四": "1984", "是我": "shiwo"}

    def say(text):
        return str(write_wav(audio / f"zh-{names[text]}.wav", espeak_zh(text)))

    def turns(*texts):
        return [{"after_silence": GAP, "audio": say(t), "label": f"t{i}"} for i, t in enumerate(texts)]

    bf = behaviours_from_dict({
        PROMISE: {"speech": turns("对", "一九八四", "我明天还款"), "hangup_after": 45},
        SHIDE: {"speech": turns("是的"), "hangup_after": 30},
        BUSHI: {"speech": turns("不是"), "hangup_after": 30},
        HUMAN: {"speech": turns("转人工"), "hangup_after": 30},
        WRONG: {"speech": turns("你打错了"), "hangup_after": 30},
        CONFIRM: {"speech": turns("是我", "对"), "hangup_after": 35},
        SILENT: {"hangup_after": 30},
        HISS: {"speech": [{"after_silence": GAP, "noise": 3, "label": "hiss"}], "hangup_after": 30},
    })
    numbers = (PROMISE, SHIDE, BUSHI, HUMAN, WRONG, CONFIRM, SILENT, HISS)

    async def run():
        await preload("zh")
        async with VoiceLab(tmp_path_factory.mktemp("speech-zh"), bf, script, tts, today=today,
                            institution="示例银行", recognize=lambda day: CallSpeech("zh", day)) as lab:
            calls = await asyncio.gather(*(lab.call(n, timeout=90) for n in numbers))
            dump_facts(lab, calls)
            return lab, dict(zip(numbers, calls))

    lab, calls = asyncio.run(run())
    return lab, calls, today


def dump_facts(lab, calls):
    """What each call saw, next to the run's logs (for a failure's post-mortem)."""
    import json

    out = {c.number: {"facts": c.facts, "speech_at": c.speech_at, "carrier_t0": c.carrier_t0, "t0": c.t0,
                      "path": c.result.path if c.result else None, "turns": lab.ports.turns_of(c.call_id)}
           for c in calls}
    (Path(lab.harness.run_dir) / "facts.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))


def heard(lab, call):
    return [(t, m.get("how"), m.get("matched")) for t, _, _, m in lab.ports.heard_of(call.call_id)]


def follows_or_asks(call, expected_node):
    """The flow reached `expected_node`, or it asked (no-match prompt or "您是说…吗？") and reached no other
    answer's node. Returns True when it followed."""
    path, played = call.result.path, call.result.prompts_played
    if len(path) > 1 and path[1] == expected_node:
        return True
    wrong = [n for n in path if n in ANSWER_NODES and n != expected_node]
    assert not wrong, f"acted on a wrong answer: {path}"
    assert "ask_again" in played or "confirm" in played, f"neither followed nor asked: {path} {played}"
    return False


@pytest.mark.parametrize("number, said, node", [
    (SHIDE, "是的", "verify"), (BUSHI, "不是", "deny"), (HUMAN, "转人工", "to_collector"),
    (WRONG, "你打错了", "wrong_number")])
def test_each_mandarin_answer_is_followed_or_asked_about_never_misacted(speech_calls, number, said, node):
    lab, calls, _ = speech_calls
    call = calls[number]
    followed = follows_or_asks(call, node)
    print(f"{said}: heard {heard(lab, call)} -> {call.result.path} ({'followed' if followed else 'asked'})")


def test_most_mandarin_answers_are_followed_not_only_asked_about(speech_calls):
    """Recognition must actually work: of 是的 / 不是 / 转人工 / 你打错了, at least two are followed outright
    (here 不是, 转人工 and 你打错了 usually are; under load the echo check sometimes asks about 你打错了)."""
    lab, calls, _ = speech_calls
    targets = {SHIDE: "verify", BUSHI: "deny", HUMAN: "to_collector", WRONG: "wrong_number"}
    followed = [n for n, node in targets.items() if follows_or_asks(calls[n], node)]
    assert len(followed) >= 2, {n: (heard(lab, calls[n]), calls[n].result.path) for n in targets}
    if HUMAN in followed:
        assert calls[HUMAN].result.transferred_to == "collectors"
    if WRONG in followed:
        assert any(k == "wrong_number" for k, _ in lab.ports.outcomes_of(calls[WRONG].call_id))


def test_a_promise_in_words_gets_tomorrow_in_the_debtors_zone(speech_calls):
    lab, calls, today = speech_calls
    call = calls[PROMISE]
    print(f"对 / 一九八四 / 我明天还款: heard {heard(lab, call)} -> {call.result.path}")
    assert heard(lab, call)[0][0].startswith("对"), heard(lab, call)
    assert all(m["backend"] == "whisper:whisper-base" for *_, m in lab.ports.heard_of(call.call_id))
    promise = next((d for k, d in lab.ports.outcomes_of(call.call_id) if k == "promise"), None)
    if call.result.path == ["greet", "verify", "ask_pay", "promise"]:
        assert promise["date"] == (today + timedelta(days=1)).isoformat()
    else:
        # espeak's year or promise was not heard through the µ-law line: no promise, no other outcome acted on
        assert promise is None
        # wrong answers are recorded as they happen (the daily verification lock counts them)
        assert {k for k, _ in lab.ports.outcomes_of(call.call_id)} <= {"verification_failed", "verify_failure"}
        assert not {"dispute", "deny", "to_collector", "wrong_number"} & set(call.result.path), call.result.path


def test_did_you_say_is_asked_in_mandarin_and_a_yes_confirms(speech_calls):
    lab, calls, _ = speech_calls
    call = calls[CONFIRM]
    turns = [t for t in lab.ports.turns_of(call.call_id)]
    asked = [t for t in turns if t[0] == "agent" and t[1].startswith("请问您是说")]
    print(f"是我 → {heard(lab, call)} asked={bool(asked)} path={call.result.path}")
    if asked:  # the bot was unsure: it asked in Mandarin, and the caller's 对 confirmed the candidate it named
        # (the simulated caller says 对 whatever it is asked: when the line made 是我 sound like another answer,
        # e.g. 鼻窝 → "您是说“不是我”吗？", the yes confirms that answer and the bot must act on it, not on 是我)
        candidate = next(m for _t, how, m in heard(lab, call) if how == "confirm")
        node = {"是我": "verify", "是的": "verify", "是": "verify", "不是我": "deny", "不是": "deny"}.get(candidate)
        assert node is not None, f"the bot asked about {candidate!r}, not an answer of the identity question"
        assert call.result.path[:2] == ["greet", node], (turns, call.result.path)
    else:
        follows_or_asks(call, "verify")


def test_silence_and_hiss_give_no_speech(speech_calls):
    lab, calls, _ = speech_calls
    for number in (SILENT, HISS):
        call = calls[number]
        assert call.result.path == ["greet", "no_response"], (number, heard(lab, call))
        assert all(t == "[no speech]" for t, _, _ in heard(lab, call))


def test_response_latency_on_the_carrier_side(speech_calls):
    lab, calls, _ = speech_calls
    got = sorted(r.latency_ms for n in (PROMISE, BUSHI, HUMAN, WRONG) for r in responses(lab, calls[n])
                 if r.latency_ms is not None)
    assert got
    print(f"zh response latency: n={len(got)} p50 {got[len(got) // 2]} ms, max {got[-1]} ms")
    print("zh response latencies (ms):", got)
    assert all(-500 < g < 10000 for g in got), got  # functional: Whisper base decodes twice (the echo check)
