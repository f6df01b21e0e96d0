"""Script engine: feed events, assert actions (pipecat-style), no audio, no Asterisk."""
from datetime import date
from decimal import Decimal

import pytest

from agi.script.engine import Engine
from agi.script.loader import load_by_id
from agi.script.model import (
    BargeIn,
    CallerHangup,
    Debtor,
    Dtmf,
    End,
    Listen,
    Node,
    NoInput,
    Prompt,
    Record,
    Say,
    Script,
    Speech,
    Transfer,
)
from agi.script.validate import validate
from agi.testing import run_flow

TODAY = date(2026, 11, 23)
DEBTOR = Debtor("D1", "张三", phone="+8613800000001", birth_year="1984", id_last4="4321",
                amount_owed=Decimal("5000"), due_date=date(2026, 11, 1), days_past_due=22,
                institution="示例银行", collector_name="小安", callback_number="4008001234")
DEBTOR_EN = Debtor("D2", "John Smith", phone="+14155550100", birth_year="1979", id_last4="0042",
                   amount_owed=Decimal("1250.50"), currency="USD", due_date=date(2026, 10, 1), days_past_due=53,
                   institution="Example Bank", collector_name="Ava", callback_number="800 555 0199")


def run(script_id, events, debtor=DEBTOR):
    """Start the call, feed events, return (every action in order, the final state)."""
    flow = run_flow(script_id, debtor, events=events, today=TODAY)
    return flow.actions, flow.state


def said(actions):
    return " ".join(a.text for a in actions if isinstance(a, Say))


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_opening_states_identity_then_asks_name_and_listens():
    actions, engine = run("m1_reminder", [])
    assert kinds(actions) == ["Say", "Say", "Listen"]
    assert actions[0] == Say("identity", "您好，我是示例银行的智能语音助手小安。", True)
    assert "张三" in actions[1].text
    assert "5000" not in said(actions) and not engine.verified


def test_verified_debtor_promises_by_dtmf_and_the_promise_is_recorded():
    actions, engine = run("m1_reminder", [Dtmf("1"), Dtmf("1984"), Dtmf("2")])
    assert engine.verified and engine.done
    text = said(actions)
    assert "5000元" in text and "11月1日" in text and "22天" in text
    promise = [a for a in actions if isinstance(a, Record)]
    assert promise == [Record("promise", {"node": "promise", "text": "", "verified": True, "date": "2026-11-26",
                                          "date_kind": "relative", "amount": "5000", "currency": "CNY"})]
    assert actions[-1] == End("promise")


def test_spoken_promise_with_date_and_amount_zh():
    actions, _ = run("m1_reminder", [Speech("是我"), Speech("一九八四"), Speech("下周五还两千")])
    rec = next(a for a in actions if isinstance(a, Record))
    assert rec.outcome == "promise" and rec.data["date"] == "2026-12-04" and rec.data["amount"] == "2000"
    assert "12月4日还款2000元" in said(actions)


def test_half_now_resolves_against_the_amount_owed():
    actions, _ = run("m1_reminder_en", [Speech("yes speaking"), Dtmf("0042"), Speech("I can pay half now")],
                     DEBTOR_EN)
    rec = next(a for a in actions if isinstance(a, Record))
    assert rec.outcome == "promise" and rec.data["amount"] == "625.25" and rec.data["date"] == "2026-11-23"


def test_third_party_never_hears_about_the_debt():
    actions, engine = run("m1_reminder", [Speech("我不是他，我是他老婆")])
    assert not engine.verified and engine.done
    text = said(actions)
    assert "回电4008001234" in text
    for leak in ("5000", "逾期", "账单", "11月1日", "还款"):
        assert leak not in text
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["third_party"]


def test_a_third_party_speaking_after_verification_ends_the_disclosure():
    """The phone is handed over mid-call: verification is revoked and the call ends neutrally."""
    actions, engine = run("m1_reminder", [Speech("是我"), Speech("1984"), Speech("我是他朋友，他刚出去")])
    tail = actions[actions.index(next(a for a in actions if isinstance(a, Say) and a.prompt_id == "ask_pay")) + 2:]
    assert not engine.verified and actions[-1] == End("third_party")
    assert "7345" not in said(tail) and "还款" not in said(tail) and "5000" not in said(tail)


def test_deny_then_does_not_know_is_a_wrong_number_with_the_phone():
    actions, _ = run("m1_reminder", [Dtmf("2"), Dtmf("2")])
    rec = [a for a in actions if isinstance(a, Record)]
    assert rec[0].outcome == "wrong_number" and rec[0].data["phone"] == "+8613800000001"
    assert actions[-1] == End("wrong_number")


def test_two_wrong_factors_end_the_call_without_disclosure():
    actions, engine = run("m1_reminder", [Dtmf("1"), Dtmf("1111"), Dtmf("2222")])
    assert not engine.verified and actions[-1] == End("verification_failed")
    assert any(isinstance(a, Record) and a.outcome == "verification_failed" for a in actions)
    assert "5000" not in said(actions)


def test_factor_alone_without_name_confirmation_does_not_verify():
    """Keying the right year is not enough if the name was never confirmed (engine state, not script)."""
    script = load_by_id("m1_reminder")
    engine = Engine(script, DEBTOR, today=TODAY)
    engine.start()
    engine.state = type(engine.state)(node="verify")  # jump straight to the factor question
    actions = engine.handle(Dtmf("1984"))
    assert not engine.verified and "5000" not in said(actions)


def test_no_input_reprompts_then_ends_neutrally():
    actions, engine = run("m1_reminder", [NoInput(), NoInput(), NoInput()])
    assert [a.prompt_id for a in actions if isinstance(a, Say)] == [
        "identity", "ask_name", "ask_name_again", "ask_name_again", "no_response"]
    assert actions[-1] == End("no_response") and engine.done


def test_repeated_no_match_after_verification_goes_to_a_collector_with_context():
    actions, _ = run("m1_reminder", [Dtmf("1"), Dtmf("1984"), Dtmf("5"), Dtmf("6"), Dtmf("7")])
    transfer = actions[-1]
    assert isinstance(transfer, Transfer) and transfer.queue == "collectors"
    assert transfer.context["verified"] is True and transfer.context["script"] == "m1_reminder"
    assert transfer.context["intents"] == ["confirm_identity", "verified"]


def test_request_human_at_any_time_transfers():
    actions, _ = run("m1_reminder_en", [Speech("can I talk to a real person")], DEBTOR_EN)
    assert isinstance(actions[-1], Transfer) and actions[-1].context["verified"] is False


def test_stop_calling_records_cease_even_before_verification():
    actions, _ = run("m1_reminder", [Speech("別再打來了")])
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["cease"]
    assert actions[-1] == End("cease")


def test_hardship_uses_the_seed_wording_and_goes_to_a_collector():
    actions, _ = run("m1_reminder", [Dtmf("1"), Dtmf("1984"), Speech("我最近失业了，手头很紧")])
    assert "我理解您现在的压力" in said(actions)
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["hardship"]
    assert isinstance(actions[-1], Transfer)


def test_hardship_before_verification_is_not_discussed():
    actions, _ = run("m1_reminder", [Speech("我失业了")])
    assert not any(isinstance(a, Record) and a.outcome == "hardship" for a in actions)
    assert isinstance(actions[-1], Listen)  # re-asked who they are


def test_m2_instalment_offer_and_acceptance():
    actions, _ = run("m2_firm_instalment", [Dtmf("1"), Dtmf("4321"), Dtmf("1")])
    assert "分3期还款，每期约1666.67元" in said(actions)
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["promise"]


def test_m3_refusal_gets_a_factual_notice_that_must_finish():
    actions, _ = run("m3_plan_or_notice_en", [Dtmf("1"), Dtmf("1979"), Speech("I'm not going to pay")], DEBTOR_EN)
    notice = next(a for a in actions if isinstance(a, Say) and a.prompt_id == "notice")
    assert notice.must_finish and "procedures provided by law" in notice.text
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["refusal"]


def test_barge_in_listens_without_moving_and_hangup_ends():
    engine = Engine(load_by_id("m1_reminder"), DEBTOR, today=TODAY)
    engine.start()
    before = engine.state
    out = engine.handle(BargeIn())
    assert kinds(out) == ["Listen"] and engine.state == before
    assert engine.handle(CallerHangup()) == [End("caller_hangup")] and engine.done
    assert engine.handle(Dtmf("1")) == []


def _unsafe_script() -> Script:
    prompts = {"hi": Prompt("hi", "您好，我是{institution}，您欠款{amount}。", True)}
    nodes = {"greet": Node("greet", say=("hi",), end="x")}
    anytime = {"third_party": "greet", "wrong_number": "greet", "cease": "greet"}
    return Script("bad", "zh", "zh-CN", "greet", prompts, nodes, fallback="greet", on_any=anytime)


def test_engine_refuses_at_run_time_a_debt_slot_before_verification():
    script = _unsafe_script()
    assert any("debt slot {amount}" in p.message for p in validate(script))
    actions = Engine(script, DEBTOR, today=TODAY).start()
    assert actions == [End("privacy_guard")]


@pytest.mark.parametrize("script_id", ["m1_reminder", "m2_firm_instalment", "m3_plan_or_notice"])
def test_traditional_chinese_and_full_width_input_drive_the_same_path(script_id):
    a, _ = run(script_id, [Speech("是我本人"), Speech("１９８４"), Speech("明天還款")])
    b, _ = run(script_id, [Speech("是我本人"), Speech("1984"), Speech("明天还款")])
    assert said(a) == said(b) and any(isinstance(x, Record) and x.outcome == "promise" for x in a)


# ------------------------------------------------------------------ as transcripts (agi.testing.run_flow)

def test_transcript_verified_promise_by_keys():
    flow = run_flow("m1_reminder_en", DEBTOR_EN, today=TODAY, events=[Dtmf("1"), Dtmf("0042"), Dtmf("1")],
                    expect=[Say, Say, Listen,                 # who is calling; is this John Smith?
                            Say, Listen,                      # the verification factor
                            Say, Say, Say, Listen,            # thanks, the debt, when can you pay?
                            Say, Say, Record, End])           # 1 = today: recorded, goodbye
    assert flow.state.verified and flow.actions[-2].data["date"] == TODAY.isoformat()


def test_transcript_silence_reprompts_then_ends():
    flow = run_flow("m1_reminder", DEBTOR, today=TODAY, events=[NoInput(), NoInput(), NoInput()],
                    expect=[Say, Say, Listen, Say, Listen, Say, Listen, Say, Record, End])
    assert flow.actions[-1] == End("no_response") and "5000" not in flow.said


def test_transcript_barge_in_listens_and_a_hangup_ends():
    flow = run_flow("m1_reminder", DEBTOR, today=TODAY, events=[Dtmf("1"), BargeIn(), Dtmf("1984"), CallerHangup()],
                    expect=[Say, Say, Listen, Say, Listen, Listen, Say, Say, Say, Listen, End])
    assert flow.actions[-1] == End("caller_hangup")


def test_transcript_wrong_number_says_nothing_about_the_debt():
    flow = run_flow("m1_reminder", DEBTOR, today=TODAY, events=[Dtmf("2"), Dtmf("2")],
                    expect=[Say, Say, Listen, Say, Listen, Say, Record, End])
    assert not flow.state.verified and "5000" not in flow.said


def test_run_flow_names_the_first_unexpected_action():
    with pytest.raises(AssertionError, match=r"action 5: expected End, got Say") as err:
        run_flow("m1_reminder", DEBTOR, today=TODAY, events=[Dtmf("2"), Dtmf("2")],
                 expect=[Say, Say, Listen, Say, Listen, End])
    assert "Dtmf(digit='2') -> Say(wrong_number), Record, End" in str(err.value)


def test_each_wrong_verification_answer_is_recorded_as_it_happens():
    """A wrong answer is a fact at once (the daily lock counts them), not only at the end of the node."""
    actions, engine = run("m1_reminder", [Dtmf("1"), Dtmf("1111")])
    assert [a.outcome for a in actions if isinstance(a, Record)] == ["verify_failure"]
    assert not engine.done and not engine.verified


def test_verification_locks_for_the_day_after_three_wrong_answers_across_calls():
    """Two wrong answers on an earlier call, one more now: locked, the call ends without disclosure even
    though this call has used only one of its two attempts."""
    from dataclasses import replace as dc_replace

    from agi.script.engine import VERIFY_FAILURES_PER_DAY

    assert VERIFY_FAILURES_PER_DAY == 3
    earlier = dc_replace(DEBTOR, verify_failures_today=2)
    actions, engine = run("m1_reminder", [Dtmf("1"), Dtmf("1111")], debtor=earlier)
    recs = [a for a in actions if isinstance(a, Record)]
    assert [r.outcome for r in recs] == ["verify_failure", "verification_failed"]
    assert recs[-1].data["reason"] == "locked" and actions[-1] == End("verification_failed")
    # once locked, even the right answer is not asked for on a later call that day
    locked = dc_replace(DEBTOR, verify_failures_today=3)
    actions, engine = run("m1_reminder", [Dtmf("1"), Dtmf("1984")], debtor=locked)
    assert not engine.verified and actions[-1] == End("verification_failed")
    assert any(isinstance(a, Record) and a.data.get("reason") == "locked" for a in actions)
    assert "5000" not in said(actions) and "7345" not in said(actions)
