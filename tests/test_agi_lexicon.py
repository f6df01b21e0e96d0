"""One debt lexicon: a sentence QA flags as a debt disclosure before verification is a sentence the script
validator refuses in any prompt that can play before verification (zh and en)."""
from dataclasses import replace
from pathlib import Path

import pytest

from agi.script.loader import load_by_id
from agi.script.model import Prompt
from agi.script.validate import validate
from dialer.qa.checker import check
from dialer.qa.rules import QAConfigError, load_rules, rules_from_text

RULES_FILE = Path(__file__).resolve().parent.parent / "compliance_rules.yaml"

# Each about unpaid money, none with a word of the validator's old list.
SENTENCES = {
    "zh": ["您有一笔钱还没还，请尽快处理。", "您的房贷已经拖了很久。", "您还有一笔待还的钱。",
           # Traditional script (as a Hong Kong or Taiwan prompt would be written): QA reads it as Simplified
           "您有一筆錢還沒還，請盡快處理。", "您的房貸已經拖了很久。"],
    "en": ["We are calling about an amount still outstanding on your account.",
           "Our records show you fell behind on what you borrowed.",
           "This is about money you are still owing us."],
}
CASES = [(lang, s) for lang, sentences in SENTENCES.items() for s in sentences]


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES_FILE)


def qa_flags_disclosure(rules, lang: str, sentence: str) -> bool:
    """QA's verdict on the sentence said by the agent right after the greeting, before any verification."""
    greeting = "您好，我是示例银行的智能语音助手小安。" if lang == "zh" else "Hello, this is Ava calling on behalf of Example Bank."
    turns = [{"speaker": "agent", "text": t, "start": 4.0 * i, "end": 4.0 * i + 3}
             for i, t in enumerate([greeting, sentence])]
    at = "2026-11-20T10:00:00+08:00" if lang == "zh" else "2026-11-20T10:00:00-05:00"
    result = check({"call_id": "t1", "lang": lang, "jurisdiction": "cn" if lang == "zh" else "us",
                    "started_at": at, "turns": turns}, rules)
    return any(v.rule == "privacy.third_party_disclosure" and v.turn == 1 for v in result.violations)


@pytest.mark.parametrize("lang,sentence", CASES)
def test_what_qa_flags_before_verification_the_validator_refuses(rules, lang, sentence):
    assert qa_flags_disclosure(rules, lang, sentence)
    script = load_by_id("m1_reminder" if lang == "zh" else "m1_reminder_en")
    assert validate(script) == []
    # ask_factor plays before verification: it asks for the verification factor
    leaky = replace(script, prompts={**script.prompts, "ask_factor": Prompt("ask_factor", sentence)})
    problems = [p.message for p in validate(leaky)]
    assert any("'ask_factor' mentions the debt" in m for m in problems), problems


@pytest.mark.parametrize("lang,sentence", CASES)
def test_the_same_sentence_after_verification_passes(lang, sentence):
    script = load_by_id("m1_reminder" if lang == "zh" else "m1_reminder_en")
    told = replace(script, prompts={**script.prompts, "thanks_verified": Prompt("thanks_verified", sentence)})
    assert validate(told) == []


def test_the_rules_file_cannot_grow_a_second_debt_list():
    text = RULES_FILE.read_text(encoding="utf-8")
    anchor = "      plan_or_consequence:\n"
    assert anchor in text
    forked = text.replace(anchor, "      debt: ['\\bunpaid\\b']\n" + anchor, 1)
    with pytest.raises(QAConfigError, match=r"qa_lexicons\.zh\.stages\.debt: the debt lexicon is common/lexicon\.py"):
        rules_from_text(forked, "compliance_rules.yaml")
