"""Expected-answer matching: toneless pinyin tolerates the recognizer's character errors, a confirm band asks
"did you say …?", and amounts and dates said in words become slots in both languages."""
from datetime import date, timedelta
from decimal import Decimal

import pytest

from agi.media.answers import expected_match, match_answer, resolve_confirmation, toneless, understand
from agi.media.asr import Recognition
from agi.script.model import Grammar, Listen, NoInput, Speech

TODAY = date(2026, 11, 30)
ASK = Listen(Grammar(intents=("confirm_identity", "deny_identity", "promise_to_pay", "request_human",
                              "wrong_number", "dispute")), 6)


def rec(text, lang="zh", conf=0.6):
    return Recognition(text, conf, 0.05, 1.0, 2.0, "whisper:test", lang, 0.1, text)


def test_toneless_pinyin_and_traditional():
    assert toneless("我明天還款") == "wo ming tian huan kuan"
    assert toneless("喂，转人工！") == "wei zhuan ren gong"


@pytest.mark.parametrize("heard, intent", [
    ("事的", "confirm_identity"),        # 是的 with a homophone
    ("不试", "deny_identity"),           # 不是
    ("我明天换款", "promise_to_pay"),     # 还款 -> 换款
    ("赚人工", "request_human"),         # 转人工
    ("你大错了", "wrong_number"),        # 打错了
    ("我已经环了", "dispute"),           # 已经还了
])
def test_substituted_characters_still_match_the_answer(heard, intent):
    h = understand(rec(heard), ASK, lang="zh", today=TODAY)
    assert h.how in ("pinyin", "classifier") and h.intent.name == intent, h
    assert isinstance(h.event, Speech)


def test_a_distant_hearing_asks_did_you_say_and_the_reply_decides():
    h = understand(rec("布布"), ASK, lang="zh", today=TODAY)
    assert h.how == "confirm" and h.event is None and h.match.intent == "deny_identity"
    assert h.confirm_question == f"请问您是说“{h.match.answer}”吗？"
    yes = understand(rec("是的"), ASK, lang="zh", today=TODAY)
    assert resolve_confirmation(h, yes, lang="zh", today=TODAY) == Speech(h.match.answer, h.match.score)
    no = understand(rec("不是"), ASK, lang="zh", today=TODAY)
    assert resolve_confirmation(h, no, lang="zh", today=TODAY) == NoInput()


def test_unrelated_text_is_not_forced_onto_an_answer():
    h = understand(rec("我在吃饭呢"), ASK, lang="zh", today=TODAY)
    assert h.how == "unmatched" and h.intent.name == "unknown"
    assert match_answer("我在吃饭呢", ASK.grammar.intents, "zh").score < 0.5


def test_no_speech_is_no_input():
    empty = Recognition("", 0.0, 0.9, 1.0, 2.0, "whisper:test", "zh", 0.1, "真是的")
    assert isinstance(understand(empty, ASK, lang="zh", today=TODAY).event, NoInput)


@pytest.mark.parametrize("text, lang, slots", [
    ("我明天还款", "zh", {"date": TODAY + timedelta(days=1)}),
    ("我下周五还五千块", "zh", {"date": date(2026, 12, 11), "amount": Decimal("5000")}),
    ("我一月五号还两千五百元", "zh", {"date": date(2027, 1, 5), "amount": Decimal("2500")}),
    ("I will pay tomorrow.", "en", {"date": TODAY + timedelta(days=1)}),
    ("I can pay two hundred and fifty dollars next Friday.", "en", {"date": date(2026, 12, 11), "amount": Decimal("250")}),
    ("I'll pay on December, fifth.", "en", {"date": date(2026, 12, 5)}),
    ("I can pay fifteen hundred dollars on the twenty-first.", "en", {"date": date(2026, 12, 21), "amount": Decimal("1500")}),
])
def test_amounts_and_dates_in_words_become_slots(text, lang, slots):
    h = understand(rec(text, lang), ASK, lang=lang, today=TODAY)
    assert h.intent.name == "promise_to_pay"
    assert {k: h.intent.slots.get(k) for k in slots} == slots


def test_expected_match_for_free_answer_lists():
    assert expected_match("赚人工", ["是的", "不是", "转人工"], "zh").answer == "转人工"
    assert expected_match("I already paid", ["yes", "I already paid", "wrong number"], "en").decision == "accept"
    assert expected_match("", ["是的"], "zh").decision == "reject"


def test_traditional_recognizer_output_reads_as_simplified():
    h = understand(rec("我明天還款"), ASK, lang="zh", today=TODAY)
    assert h.intent.name == "promise_to_pay" and h.intent.slots["date"] == TODAY + timedelta(days=1)
    assert understand(rec("轉人工"), ASK, lang="zh", today=TODAY).intent.name == "request_human"
