"""Script preview (issue 17, item 2): each shipped script, zh and en, with a few answer sequences — the
path it takes, the timing of every prompt, and the carrier behaviour entry it writes."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi.script.loader import load_by_id
from agi.script.model import Debtor
from common.lexicon import debt_mentions
from dialer.campaign.preview import AMD_SECONDS, KEY_MARGIN, behaviour_entry, preview_script
from dialer.cli import main
from dialer.telephony.carrier import behaviours_from_dict, load_behaviours

REPO = Path(__file__).resolve().parent.parent
TODAY = date(2026, 12, 1)


def seconds(text: str, locale: str) -> float:
    """A stand-in for the rendered prompt's length: 0.25 s per character."""
    return round(0.25 * len(text), 2)


def debtor(lang: str) -> Debtor:
    return Debtor(debtor_id="P1", name="张伟" if lang == "zh" else "Alice Johnson", phone="+8613800000001",
                  birth_year="1986", id_last4="3821", amount_owed=Decimal("3200.00"),
                  currency="CNY" if lang == "zh" else "USD", due_date=date(2026, 11, 8), days_past_due=23,
                  institution="示例消费金融" if lang == "zh" else "Acme Finance",
                  collector_name="小安" if lang == "zh" else "Alex", callback_number="+864008001234")


SCRIPTS = ["m1_reminder", "m2_firm_instalment", "m3_plan_or_notice",
           "m1_reminder_en", "m2_firm_instalment_en", "m3_plan_or_notice_en"]


@pytest.mark.parametrize("script_id", SCRIPTS)
@pytest.mark.parametrize("answers, outcome, verified", [
    (["1", "1986", "0"], "transfer:collectors", True),     # verifies, asks for a person
    (["1", "1970", "1971"], "verification_failed", False),  # wrong birth year twice
    (["2", "2"], "wrong_number", False),                   # not the debtor, does not know them
    (["2", "1"], "third_party", False),                    # not the debtor, knows them
    ([], "no_response", False),                            # presses nothing
])
def test_each_shipped_script_previews_every_path(script_id, answers, outcome, verified):
    script = load_by_id(script_id)
    lang = script.lang
    p = preview_script(script, debtor(lang), answers, TODAY, seconds)
    assert p.outcome == outcome, (p.outcome, [t.text for t in p.turns])
    assert not p.unused_answers
    said = [t.text for t in p.turns if t.speaker == "agent"]
    debt_said = any(debt_mentions(t, lang) for t in said) or any("3200" in t for t in said)
    assert debt_said == verified, said
    # timing: the bot starts after AMD, prompts follow each other, each key a margin after the question
    assert p.turns[0].start == AMD_SECONDS
    assert all(a.end <= b.start + 1e-6 for a, b in zip(p.turns, p.turns[1:]))
    for t in p.turns:
        if t.speaker == "agent":
            assert t.end - t.start == pytest.approx(seconds(t.text, script.locale), abs=0.02)
    keys = [t for t in p.turns if t.text.startswith("[DTMF")]
    assert [k["digits"] for k in p.keys] == answers
    for k, turn in zip(p.keys, keys):
        before = max(t.end for t in p.turns if t.speaker == "agent" and t.end <= turn.start)
        assert k["at"] == pytest.approx(before + KEY_MARGIN, abs=0.02)
    entry = behaviour_entry(p)
    bf = behaviours_from_dict({"+8613800000001": entry})  # the carrier simulator accepts it
    b = bf.behaviours["+8613800000001"]
    assert [d.digits for d in b.dtmf] == answers and b.hangup_after > p.ends_at


def test_promise_path_in_both_languages():
    for sid in ("m1_reminder", "m1_reminder_en"):
        p = preview_script(load_by_id(sid), debtor("zh" if sid == "m1_reminder" else "en"), ["1", "1986", "1"],
                           TODAY, seconds)
        assert p.outcome and "promise" in p.records, (sid, p.outcome, p.records)


def test_cli_preview_prints_timed_turns_and_writes_the_behaviour(tmp_path):
    db = tmp_path / "d.db"
    run = lambda *a: CliRunner().invoke(main, list(a))  # noqa: E731
    assert run("campaign", "load", str(REPO / "campaigns" / "zh_demo.yaml"), "--db", str(db)).exit_code == 0
    assert run("debtors", "import", str(REPO / "campaigns" / "examples" / "zh_debtors.csv"), "--campaign", "zh_demo",
               "--db", str(db)).exit_code == 0
    out = tmp_path / "beh.yaml"
    res = run("script", "preview", "m1_reminder", "--debtor", "Z001", "--answers", "1,1986,1", "--db", str(db),
              "--at", "2026-12-01T10:00:00+08:00", "--behaviour-out", str(out))
    assert res.exit_code == 0, res.output
    assert "您好，我是示例消费金融的智能语音助手小安。" in res.output and "outcome: promise" in res.output
    assert "目前逾期23天" in res.output  # counted from the due date (2026-11-08), not the imported 15
    assert "s  bot" in res.output and "[DTMF 1986]" in res.output
    b = load_behaviours(out).behaviours["+8613800000001"]
    assert [d.digits for d in b.dtmf] == ["1", "1986", "1"]
    # a second preview adds its number to the same file
    res = run("script", "preview", "m1_reminder", "--debtor", "Z007", "--db", str(db), "--behaviour-out", str(out))
    assert res.exit_code == 0 and set(load_behaviours(out).behaviours) == {"+8613800000001", "+8613800000007"}
    res = run("script", "preview", "m1_reminder", "--debtor", "Z001", "--answers", "1,x", "--db", str(db))
    assert res.exit_code == 2 and "not DTMF keys" in res.output
    res = run("script", "preview", "dtmf_verify", "--debtor", "Z001", "--db", str(db), "--json")
    assert res.exit_code == 1 and "hand-written" in res.output
    res = run("script", "preview", "m1_reminder", "--debtor", "Z001", "--db", str(tmp_path / "none.db"))
    assert res.exit_code == 1 and "no database" in res.output and not (tmp_path / "none.db").exists()
    res = run("script", "preview", "m1_reminder_en", "--debtor", "Z001", "--db", str(db), "--json")
    assert json.loads(res.stdout)["script_id"] == "m1_reminder_en" and "is en-US" in res.stderr


@pytest.mark.parametrize("sid,said,outcome", [
    ("m1_reminder", ["是的", "一九八六", "我明天还"], "promise"),
    ("m1_reminder", ["不是", "不认识"], "wrong_number"),
    ("m1_reminder_en", ["Yes", "1986", "I will pay tomorrow"], "promise"),  # Whisper writes years as digits
])
def test_spoken_answers_preview_and_their_behaviour_makes_the_carrier_say_them(sid, said, outcome):
    lang = "zh" if sid == "m1_reminder" else "en"
    p = preview_script(load_by_id(sid), debtor(lang), said, TODAY, seconds, spoken=True)
    assert outcome in (p.records + [p.outcome]), (p.outcome, p.records, [t.text for t in p.turns])
    assert [t.text for t in p.turns if t.speaker == "callee"] == said and not p.unused_answers
    b = behaviours_from_dict({"+8613800000001": behaviour_entry(p)}).behaviours["+8613800000001"]
    assert [s.sound.split(":", 2)[-1] for s in b.speech] == said and not b.dtmf
    assert all(s.after_silence for s in b.speech)
