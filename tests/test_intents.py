"""Intents from text (zh Simplified/Traditional, en, full-width) and DTMF, with dates and amounts."""
from datetime import date
from decimal import Decimal

import pytest

from agi.intents import classify, dtmf_intent, extract_digits, next_payday, zh_number

TODAY = date(2026, 11, 23)  # a Monday


@pytest.mark.parametrize("text,intent", [
    ("是的，我是", "confirm_identity"),
    ("对，是我本人", "confirm_identity"),
    ("嗯，你说", "confirm_identity"),
    ("不是", "deny_identity"),
    ("我不是他，我是他老婆", "third_party"),
    ("他不在家，出去了", "third_party"),
    ("你打错了", "wrong_number"),
    ("我们这里没有这个人", "wrong_number"),
    ("我最近失业了，真的没钱", "hardship"),
    ("我已经还清了", "dispute"),
    ("这笔钱不是我借的", "dispute"),
    ("我要转人工", "request_human"),
    ("别再给我打电话了", "cease"),
    ("我就不还，你爱咋咋地", "refuse"),
    ("我现在在开会，晚点再打给我", "callback_request"),
    ("我明天还", "promise_to_pay"),
    ("能不能少还一点", "hardship"),
    # Traditional Chinese
    ("我明天還款", "promise_to_pay"),
    ("別再打來了", "cease"),
    ("我最近失業，手頭很緊", "hardship"),
    ("你打錯了", "wrong_number"),
    # English
    ("Yes, speaking.", "confirm_identity"),
    ("No.", "deny_identity"),
    ("This is his wife, he's not home", "third_party"),
    ("You have the wrong number", "wrong_number"),
    ("I lost my job last month", "hardship"),
    ("That's not my debt, I already paid it off", "dispute"),
    ("Can I talk to a real person?", "request_human"),
    ("Stop calling me", "cease"),
    ("I'm not going to pay", "refuse"),
    ("I'm driving, call me back later", "callback_request"),
    ("I'll pay next Friday", "promise_to_pay"),
])
def test_intent_names(text, intent):
    assert classify(text, today=TODAY).name == intent


def test_promise_dates_zh():
    assert classify("明天还", "zh", today=TODAY).slots["date"] == date(2026, 11, 24)
    assert classify("下周五还五千", "zh", today=TODAY).slots == {
        "date": date(2026, 12, 4), "date_kind": "weekday", "amount": Decimal(5000)}
    assert classify("周五还", "zh", today=TODAY).slots["date"] == date(2026, 11, 27)
    assert classify("30号还", "zh", today=TODAY).slots["date"] == date(2026, 11, 30)
    assert classify("下个月5号还两千五", "zh", today=TODAY).slots == {
        "date": date(2026, 12, 5), "date_kind": "calendar", "amount": Decimal(2500)}


def test_payday_promise_resolves_against_payday():
    i = classify("发工资后就还", "zh", today=TODAY, payday=10)
    assert i.name == "promise_to_pay" and i.slots["date"] == date(2026, 12, 10)
    # without a known payday the kind is kept and the date left for a collector
    i = classify("發工資後就還", "zh", today=TODAY)
    assert i.name == "promise_to_pay" and i.slots == {"date_kind": "payday"}
    assert classify("I'll pay when I get paid", "en", today=TODAY, payday=25).slots["date"] == date(2026, 11, 25)
    # a payday the caller names wins over the one on file
    assert classify("payday is on the 25th, I will pay then", "en", today=TODAY, payday=10).slots["date"] == date(2026, 11, 25)
    assert classify("我28号发工资，发了就还", "zh", today=TODAY, payday=10).slots["date"] == date(2026, 11, 28)


def test_promise_dates_and_amounts_en():
    i = classify("I'll pay next Friday", "en", today=TODAY)
    assert i.slots["date"] == date(2026, 12, 4)
    i = classify("I can pay 2,000 tomorrow", "en", today=TODAY)
    assert i.slots == {"date": date(2026, 11, 24), "date_kind": "relative", "amount": Decimal(2000)}
    i = classify("I can do half now and the rest on the 15th", "en", today=TODAY)
    assert i.name == "promise_to_pay" and i.slots["fraction"] == Decimal("0.5")
    assert classify("I'll pay $350 on Friday", "en", today=TODAY).slots["amount"] == Decimal(350)
    assert classify("I will pay two thousand dollars on December 3rd", "en", today=TODAY).slots == {
        "date": date(2026, 12, 3), "date_kind": "calendar", "amount": Decimal(2000)}


def test_full_width_digits_and_amounts():
    i = classify("我１２月５号还５０００元", "zh", today=TODAY)
    assert i.name == "promise_to_pay"
    assert i.slots["date"] == date(2026, 12, 5) and i.slots["amount"] == Decimal(5000)
    assert classify("先还一半", "zh", today=TODAY).slots["fraction"] == Decimal("0.5")


def test_digits_for_verification():
    assert classify("１９８４", today=TODAY).name == "digits" and classify("１９８４", today=TODAY).slots["digits"] == "1984"
    assert extract_digits("一九八四年") == "1984"
    assert classify("one nine eight four", "en", today=TODAY).slots["digits"] == "1984"


def test_chinese_numerals():
    assert [zh_number(s) for s in ("五千", "两千五", "一万二", "三百", "十五", "一万零五百")] == [
        5000, 2500, 12000, 300, 15, 10500]


def test_next_payday_rolls_to_next_month_and_clamps():
    assert next_payday(date(2026, 1, 31), 30) == date(2026, 2, 28)
    assert next_payday(TODAY, None) is None


def test_dtmf():
    mapping = {"1": "confirm_identity", "2": "third_party"}
    assert dtmf_intent("1", mapping).name == "confirm_identity"
    assert dtmf_intent("１", mapping).name == "confirm_identity"
    assert dtmf_intent("9", mapping).name == "unknown"
    assert dtmf_intent("1984", mapping).slots == {"digits": "1984"}


def test_unknown_and_empty():
    assert classify("", today=TODAY).name == "unknown"
    assert classify("今天天气不错啊，你们公司在哪里", "zh", today=TODAY).name == "unknown"
    # a bare date answering "when can you pay?" is a promise
    assert classify("下周五吧", "zh", today=TODAY).name == "promise_to_pay"
    assert classify("next Friday", "en", today=TODAY).name == "promise_to_pay"
    assert classify("not right now", "en", today=TODAY).name != "promise_to_pay"
    assert classify("the weather is nice", "en", today=TODAY).name == "unknown"
