"""QA checker: conduct with negation and indirect threats, call state for disclosure, order, time window, score, corpus figures."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bench.qa import CORPUS, asr_style, baseline, evaluate, load_corpus
from common.normalize import normalize, normalize_text
from dialer.qa.checker import TranscriptError, check, parse_transcript
from dialer.qa.rules import QAConfigError, load_rules, rules_from_text

RULES_FILE = Path(__file__).resolve().parent.parent / "compliance_rules.yaml"


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES_FILE)


ZH_OPEN = ["A:您好，我是华信银行信用卡中心的工作人员李娜。", "C:嗯。", "A:请问您是张伟先生本人吗？", "C:是我。",
           "A:张先生，您的信用卡欠款5200元已逾期15天。", "C:我知道。"]
EN_OPEN = ["A:Hello, this is Sarah Miller calling from Northfield Bank card services.", "C:Okay.",
           "A:Am I speaking with David Chen?", "C:Yes, speaking.",
           "A:This is an attempt to collect a debt. Your balance of $1,240 is past due.", "C:I know."]


def call(lines: list[str], lang: str = "zh", at: str | None = None, jur: str | None = None) -> dict:
    at = at or ("2026-11-20T10:00:00+08:00" if lang == "zh" else "2026-11-20T10:00:00-05:00")
    turns = [{"speaker": "agent" if s[0] == "A" else "callee", "text": s[2:], "start": 4.0 * i, "end": 4.0 * i + 3}
             for i, s in enumerate(lines)]
    return {"call_id": "t1", "lang": lang, "jurisdiction": jur or ("cn" if lang == "zh" else "us"),
            "started_at": at, "turns": turns}


def rules_of(result) -> list[tuple[str, int | None]]:
    return [(v.rule, v.turn) for v in result.violations]


def test_clean_calls_score_100(rules):
    for lines, lang in ((ZH_OPEN + ["A:根据合同约定，逾期会产生违约金，建议您尽快处理。我们可为您提供分期还款方案。"], "zh"),
                        (EN_OPEN + ["A:Late fees may apply. We can set up a payment plan if that helps."], "en")):
        res = check(call(lines, lang), rules)
        assert res.violations == () and res.score == 100


@pytest.mark.parametrize("text", [
    "我们不会上门，也不会打扰您的家人。",
    "根据合同约定，逾期会产生违约金，建议您尽快处理。",
    "请您放心，我们绝不会联系您的单位和同事。",
    "目前没有起诉您，我们只是希望和您协商还款。",
])
def test_zh_negated_and_neutral_language_is_not_a_threat(rules, text):
    assert rules_of(check(call(ZH_OPEN + ["A:" + text]), rules)) == []


@pytest.mark.parametrize("text", [
    "你们公司人事的电话我们也有，你自己考虑清楚。",
    "再不还就起诉你，到时候让你坐牢！",
    "再拖下去会影响子女入学。",
    "你家人也会被牵连的。",
    "还不上？我们不会放过你的，后果自负！",  # the cue is part of the threat itself
    "不是我吓唬你，再不还公安局就会来抓你。",  # a negation cue with a reset word (就) in between
])
def test_zh_threats_direct_and_indirect(rules, text):
    assert rules_of(check(call(ZH_OPEN + ["A:" + text]), rules)) == [("conduct.threat", 6)]


@pytest.mark.parametrize("text,expected", [
    ("We won't contact your employer, and no one will come to your home.", []),
    ("We will never discuss your account with your family or your neighbours.", []),
    ("It's a shame you've had such a hard few months.", []),
    ("It would be a shame if the neighbours heard about this, wouldn't it?", [("conduct.threat", 6)]),
    ("You know, we have your HR department's number too.", [("conduct.threat", 6)]),
    ("If you don't pay by Friday, you'll be arrested.", [("conduct.threat", 6)]),
])
def test_en_threats_and_negation(rules, text, expected):
    assert rules_of(check(call(EN_OPEN + ["A:" + text], "en"), rules)) == expected


def test_only_the_agents_words_count_for_conduct(rules):
    callee_abuse = ZH_OPEN + ["C:你们这帮骗子、垃圾！我要起诉你们！", "A:理解您的心情，我们可以为您提供分期方案。"]
    assert rules_of(check(call(callee_abuse), rules)) == []
    agent_abuse = ZH_OPEN + ["A:你就是个老赖，真不要脸。"]
    assert rules_of(check(call(agent_abuse), rules)) == [("conduct.insult", 6)]
    en = EN_OPEN + ["C:You're a bunch of useless idiots.", "A:Don't be an idiot, it's all in the statement."]
    assert rules_of(check(call(en, "en"), rules)) == [("conduct.insult", 7)]


def test_traditional_and_full_width_match_like_simplified(rules):
    simplified = check(call(ZH_OPEN + ["A:不还就起诉你，法院判下来你就得坐牢。"]), rules)
    traditional = check(call(ZH_OPEN + ["A:不還就起訴你，法院判下來你就得坐牢。"]), rules)
    assert rules_of(simplified) == rules_of(traditional) == [("conduct.threat", 6)]
    full_width = check(call(ZH_OPEN + ["A:你ＴＭ到底还不还？"]), rules)
    assert rules_of(full_width) == [("conduct.insult", 6)]
    assert normalize_text("帳單８９００元 ＡＢ") == "账单8900元ab"


def test_recogniser_output_without_punctuation(rules):
    zh = ["A:您好 我是 华信 银行 信用卡 中心 的 工作人员 李娜", "C:嗯", "A:请问 您 是 张伟 先生 本人 吗", "C:是 我",
          "A:请 您 放心 我们 不会 上门 也 不会 打扰 您 的 家人 您 的 信用卡 欠款 五千 元 已经 逾期"]
    assert rules_of(check(call(zh), rules)) == []
    threat = zh[:4] + ["A:你 们 公司 人事 的 电话 我们 也 有"]
    assert rules_of(check(call(threat), rules)) == [("conduct.threat", 4)]
    en = ["A:hello this is sarah miller calling from northfield bank card services", "C:okay",
          "A:am i speaking with david chen", "C:yes speaking",
          "A:this is an attempt to collect a debt if you don't pay by friday you'll be arrested"]
    assert rules_of(check(call(en, "en"), rules)) == [("conduct.threat", 4)]


def test_evidence_quotes_the_words_actually_said(rules):
    res = check(call(ZH_OPEN + ["A:好的。不還就起訴你，法院判下來你就得坐牢。"]), rules)
    assert res.violations[0].evidence == "不還就起訴你，法院判下來你就得坐牢。"
    n = normalize("帳單８９００元")
    i = n.text.index("8900")
    assert n.original_slice(i, i + 4) == "８９００"


def test_impersonation_but_not_a_denial_or_neutral_mention(rules):
    imp = ["A:喂，这里是城关派出所。", "C:派出所？", "A:请问是周杰本人吗？", "C:是我。", "A:你的借款4300元一直没还。"]
    assert rules_of(check(call(imp), rules)) == [("conduct.impersonation", 0), ("disclosure.identity_missing", 0)]
    neutral = ["A:您好，我是民融银行的工作人员孙明。如果您怀疑是诈骗电话，也可以向公安机关咨询。请问您是郑浩先生本人吗？",
               "C:是我。", "A:郑先生，您的贷款逾期8天。"]
    assert rules_of(check(call(neutral), rules)) == []
    en = EN_OPEN[:4] + ["A:No, we're not the police, and nobody is going to be arrested over a card balance."]
    assert rules_of(check(call(en, "en"), rules)) == []


def test_jurisdiction_lexicon_additions(rules):
    lines = ["A:Hello, I'm calling from HMRC.", "C:HMRC?", "A:Am I speaking with Sophie Turner?", "C:Yes.",
             "A:Your credit card account is overdue by £260."]
    uk = check(call(lines, "en", "2026-11-20T11:00:00+00:00", "uk"), rules)
    assert ("conduct.impersonation", 0) in rules_of(uk)
    us = check(call(lines, "en", "2026-11-20T11:00:00-05:00", "us"), rules)
    assert ("conduct.impersonation", 0) not in rules_of(us)


def test_disclosure_follows_who_has_been_verified(rules):
    third_party = ["A:您好，我是安易消费金融的工作人员陈静。", "C:喂？", "A:请问是杨磊先生本人吗？", "C:不是，我是他妈妈。",
                   "A:阿姨，您儿子借了8600元，逾期两个月了。"]
    assert rules_of(check(call(third_party), rules)) == [("privacy.third_party_disclosure", 4)]
    handled = third_party[:4] + ["A:好的，麻烦您让他方便时回电，具体事情只能和他本人沟通。", "C:他是不是欠钱了？",
                                 "A:抱歉，我们只能和他本人沟通。"]
    assert rules_of(check(call(handled), rules)) == []
    revoked = EN_OPEN[:4] + ["A:Can you confirm your date of birth?",
                             "C:I don't know it, sorry, I'm actually his mum, he left his phone here.",
                             "A:Then please tell him his card is $1,240 past due."]
    assert rules_of(check(call(revoked, "en"), rules)) == [("privacy.third_party_disclosure", 6)]
    before = ["A:Hello, this is Sarah Miller from Northfield Bank, calling about your past due balance of $1,240.",
              "C:Who?", "A:Is this David Chen?", "C:Yes."]
    assert rules_of(check(call(before, "en"), rules)) == [("privacy.third_party_disclosure", 0)]


def test_bot_transcripts_with_dtmf_answers(rules):
    ask = "您好，我是示例消费金融的智能语音助手小安。请问您是张伟本人吗？是请按1，不是请按2。"
    debt = "感谢您的确认。您在示例消费金融的账单5200元已于11月5日到期，目前逾期15天。"
    assert rules_of(check(call(["A:" + ask, "C:1", "A:" + debt]), rules)) == []
    assert rules_of(check(call(["A:" + ask, "C:2", "A:" + debt]), rules)) == [("privacy.third_party_disclosure", 2)]
    en_ask = ("Hello, this is Ava, an automated assistant calling on behalf of Acme Finance. "
              "Am I speaking with David Chen? Press 1 for yes, 2 for no.")
    en_debt = "Thank you for confirming. Your Acme Finance account has an amount of $1,240 that is 15 days past due."
    assert rules_of(check(call(["A:" + en_ask, "C:2", "A:" + en_debt], "en"), rules)) == [
        ("privacy.third_party_disclosure", 2)]
    factor = ["A:" + en_ask, "C:1", "A:Please key in your year of birth.", "C:1984", "A:" + en_debt]
    assert rules_of(check(call(factor, "en"), rules)) == []


def test_identity_missing_and_process_order(rules):
    no_identity = ["A:喂，张伟是吧？", "C:是，你谁啊？", "A:你信用卡欠款5200元什么时候还？"]
    assert rules_of(check(call(no_identity), rules)) == [("disclosure.identity_missing", 0)]
    generic = ["A:Hi, I'm calling from the bank. Is this Thomas Wright?", "C:Yes.", "A:Your balance of $2,300 is past due."]
    assert rules_of(check(call(generic, "en"), rules)) == [("disclosure.identity_missing", 0)]
    named = ["A:Hi, this is the Acme Finance automated assistant. Is this Thomas Wright?", "C:Yes.",
             "A:Your balance of $2,300 is past due."]
    assert rules_of(check(call(named, "en"), rules)) == []
    late_identity = ["A:喂，请问是张伟先生本人吗？", "C:是我。", "A:您好，我是华信银行信用卡中心的工作人员李娜。您的信用卡欠款5200元已逾期。"]
    res = check(call(late_identity), rules)
    assert rules_of(res) == [("process.order", 0)]
    assert res.violations[0].evidence == "verification (turn 0) came before identity (turn 2)"
    plan_first = ZH_OPEN[:4] + ["A:张先生，我们可以给您办理分期还款，您今天能先还一部分吗？", "C:为什么？",
                                "A:因为您的信用卡欠款5200元已经逾期了。"]
    assert rules_of(check(call(plan_first), rules)) == [("process.order", 4)]


@pytest.mark.parametrize("at,jur,lang,bad", [
    ("2026-11-20T20:59:00+08:00", "cn", "zh", False),
    ("2026-11-20T21:00:00+08:00", "cn", "zh", True),   # end exclusive
    ("2026-11-20T07:59:00+08:00", "cn", "zh", True),
    ("2026-11-20T08:00:00+08:00", "cn", "zh", False),
    ("2026-11-20T21:15:00-05:00", "us", "en", True),
    ("2026-11-22T12:00:00+00:00", "uk", "en", False),  # Sunday 10:00–18:00
    ("2026-11-22T19:00:00+00:00", "uk", "en", True),
    ("2026-11-20T19:00:00+00:00", "uk", "en", False),  # Friday until 21:00
])
def test_time_window_in_debtor_local_time(rules, at, jur, lang, bad):
    lines = ZH_OPEN if lang == "zh" else EN_OPEN
    res = check(call(lines, lang, at, jur), rules)
    assert (("time.window", None) in rules_of(res)) is bad


def test_score_deducts_each_broken_rule_once(rules):
    threats = ZH_OPEN + ["A:不还就起诉你！", "C:哦。", "A:你家人也会被牵连的。"]
    res = check(call(threats, at="2026-11-20T22:00:00+08:00"), rules)
    assert [v.rule for v in res.violations] == ["time.window", "conduct.threat", "conduct.threat"]
    assert res.score == 100 - 15 - 30
    assert res.as_dict()["violations"][1] == {"rule": "conduct.threat", "turn": 6, "evidence": "不还就起诉你！"}


def test_parse_transcript_names_the_field(rules):
    good = call(ZH_OPEN)
    for mutate, field in [
        (lambda d: d.pop("call_id"), "call_id"),
        (lambda d: d.update(lang="fr"), "lang"),
        (lambda d: d.update(jurisdiction="de"), "jurisdiction"),
        (lambda d: d.update(started_at="2026-11-20T10:00:00"), "started_at"),
        (lambda d: d["turns"][2].update(speaker="bot"), "turns[2].speaker"),
        (lambda d: d["turns"][1].pop("text"), "turns[1].text"),
    ]:
        d = call(ZH_OPEN)
        mutate(d)
        with pytest.raises(TranscriptError) as exc:
            parse_transcript(d, rules)
        assert exc.value.field == field
    assert parse_transcript(good, rules).turns[0].speaker == "agent"


def test_bad_rules_name_file_line_and_field():
    text = RULES_FILE.read_text(encoding="utf-8")
    broken = text.replace("        - '牵连|连累'", "        - '牵连|(连累'", 1)
    assert broken != text
    with pytest.raises(QAConfigError) as exc:
        rules_from_text(broken, "compliance_rules.yaml")
    line = next(i for i, s in enumerate(broken.splitlines(), 1) if "(连累" in s)
    assert re.match(rf"compliance_rules.yaml:{line}: qa_lexicons\.zh\.conduct\.conduct\.threat\.patterns\[\d+\]: "
                    r"bad regular expression", str(exc.value))
    unknown = text.replace("weights: {time.window: 15,", "weights: {time.windw: 15,", 1)
    with pytest.raises(QAConfigError, match=r"profiles\.cn\.qa\.weights\.time\.windw: unknown rule id"):
        rules_from_text(unknown, "compliance_rules.yaml")


# Figures reached on the untouched test half (bench/qa.py); tests hold them there.
FLOOR = {
    "time.window": (1.0, 1.0),
    "conduct.threat": (1.0, 0.9),
    "conduct.insult": (1.0, 1.0),
    "conduct.impersonation": (0.9, 1.0),
    "privacy.third_party_disclosure": (1.0, 1.0),
    "disclosure.identity_missing": (1.0, 1.0),
    "process.order": (0.9, 1.0),
}


def test_corpus_precision_recall_on_the_test_half(rules):
    corpus = [c for c in load_corpus(CORPUS, rules) if c.split == "test"]
    assert len(corpus) >= 100
    res = evaluate(corpus, rules, lambda t: check(t, rules).rules)
    base = evaluate(corpus, rules, lambda t: baseline(t, rules))
    for rule, (p, r) in FLOOR.items():
        got = res[rule]["all"]
        assert got["precision"] >= p and got["recall"] >= r, (rule, got)
    # negation and call state are what the checker adds over keyword spotting
    assert res["conduct.threat"]["all"]["precision"] > base["conduct.threat"]["all"]["precision"]
    assert res["privacy.third_party_disclosure"]["all"]["recall"] > base["privacy.third_party_disclosure"]["all"]["recall"]


# The same test half as a recogniser hands it over (no punctuation, lower case, Chinese characters spaced).
ASR_FLOOR = {
    "time.window": (1.0, 1.0),
    "conduct.threat": (1.0, 0.9),
    "conduct.insult": (1.0, 1.0),
    "conduct.impersonation": (0.9, 1.0),
    "privacy.third_party_disclosure": (0.85, 1.0),
    "disclosure.identity_missing": (1.0, 1.0),
    "process.order": (0.9, 0.9),
}


def test_corpus_precision_recall_in_recogniser_style(rules):
    corpus = [dataclasses.replace(c, transcript=asr_style(c.transcript))
              for c in load_corpus(CORPUS, rules) if c.split == "test"]
    assert " " in corpus[0].transcript.turns[0].text and "，" not in corpus[0].transcript.turns[0].text
    res = evaluate(corpus, rules, lambda t: check(t, rules).rules)
    for rule, (p, r) in ASR_FLOOR.items():
        got = res[rule]["all"]
        assert got["precision"] >= p and got["recall"] >= r, (rule, got)


def test_corpus_has_ten_calls_per_rule_per_language(rules):
    corpus = load_corpus(CORPUS, rules)
    for lang in ("zh", "en"):
        for rule in FLOOR:
            assert sum(1 for c in corpus if c.transcript.lang == lang and rule in c.expected) >= 10, (lang, rule)
        assert sum(1 for c in corpus if c.transcript.lang == lang and not c.expected) >= 10
