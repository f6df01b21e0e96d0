"""Normalisation: Traditional/Simplified, full-width/half-width and case never change what the checker finds."""
from __future__ import annotations

import json
from pathlib import Path

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.normalize import normalize, normalize_text
from dialer.qa.checker import check
from dialer.qa.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
S2T = opencc.OpenCC("s2t")


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else ("\u3000" if c == " " else c) for c in text)


@pytest.fixture(scope="module")
def rules():
    return load_rules(ROOT / "compliance_rules.yaml")


def test_whole_corpus_scores_the_same_in_traditional_and_full_width(rules):
    calls = [json.loads(line) for line in (ROOT / "tests/data/qa_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    changed = 0
    for c in calls:
        plain = check(c, rules)
        variant = json.loads(json.dumps(c))
        for turn, orig in zip(variant["turns"], c["turns"]):
            text = S2T.convert(turn["text"]) if c["lang"] == "zh" else turn["text"].upper()
            turn["text"] = full_width(text)
            changed += turn["text"] != orig["text"]
        got = check(variant, rules)
        assert [(v.rule, v.turn) for v in got.violations] == [(v.rule, v.turn) for v in plain.violations], c["call_id"]
        assert got.score == plain.score
    assert changed > 500


def test_examples():
    assert normalize_text("ＹＯＵ’ＲＥ　ａ　ｌｉａｒ") == "you're a liar"
    assert normalize_text("您們的帳單逾期會產生違約金") == "你们的账单逾期会产生违约金"
    assert normalize_text("我们 不会 上门 欠款 5200 元 ok go") == "我们不会上门欠款5200元ok go"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("你您們们帳单欠款不會ＡＢａｂAB１2 ，。！？’\"ßﬁ㈱")), max_size=40))
def test_offsets_map_back_to_the_original(text):
    n = normalize(text)
    assert len(n.source) == len(n.text)
    assert list(n.source) == sorted(n.source)
    assert normalize_text(n.text) == n.text  # idempotent
    if n.text:
        assert n.original_slice(0, len(n.text)) == text[n.source[0]:n.source[-1] + 1]
