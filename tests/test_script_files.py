"""Every shipped script validates and, walked on every path, says nothing about the debt before verification."""
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agi.script.engine import State, start, step
from agi.script.loader import HandlerRef, ScriptError, load_all, load_script, load_script_text
from agi.script.model import Debtor, Dtmf, NoInput, Say, Script, Speech
from agi.script.render import format_amount, format_date
from common.lexicon import debt_mentions

TODAY = date(2026, 11, 23)
SHIPPED = ["m1_reminder", "m2_firm_instalment", "m3_plan_or_notice"]
SAMPLES = {
    "zh": {"confirm_identity": "是我", "deny_identity": "不是", "third_party": "我是他朋友", "wrong_number": "打错了",
           "promise_to_pay": "下周五还两千", "hardship": "我失业了", "dispute": "我已经还清了",
           "request_human": "转人工", "cease": "别再打了", "refuse": "我不还", "callback_request": "晚点再打",
           "unknown": "今天天气怎么样"},
    "en": {"confirm_identity": "yes speaking", "deny_identity": "no", "third_party": "this is his wife",
           "wrong_number": "wrong number", "promise_to_pay": "I'll pay next Friday", "hardship": "I lost my job",
           "dispute": "that's not my debt", "request_human": "talk to a real person", "cease": "stop calling me",
           "refuse": "I'm not going to pay", "callback_request": "call me back later", "unknown": "what's the weather"},
}


def debtor_for(lang):
    return Debtor("D1", "张三" if lang == "zh" else "Jane Roe", phone="+8613800000001", birth_year="1984",
                  id_last4="4321", amount_owed=Decimal("7345"), currency="CNY" if lang == "zh" else "USD",
                  due_date=date(2026, 9, 17), days_past_due=67, institution="示例银行" if lang == "zh" else "Example Bank",
                  collector_name="小安" if lang == "zh" else "Ava", callback_number="4008001234")


def events_for(script: Script, state: State):
    node = script.nodes[state.node]
    yield NoInput()
    if node.verify:
        yield Dtmf("1984")
        yield Dtmf("0000")
        yield Speech("一九八四" if script.lang == "zh" else "one nine eight four")
    for key in list(node.dtmf) + ["9"]:
        yield Dtmf(key)
    for text in SAMPLES[script.lang].values():
        yield Speech(text)
    for cue in script.on_cue:  # a voice cue on an otherwise plain answer (agi/media/cues.py)
        yield Speech(SAMPLES[script.lang]["unknown"], 0.9, (cue,))


def walk(script: Script):
    """Breadth-first over every reachable engine state; yields (state before, actions) for each transition."""
    debtor = debtor_for(script.lang)
    actions, state = start(script, debtor)
    yield State(node=script.start), actions, state
    key = lambda s: (s.node, s.verified, s.name_confirmed, s.no_input, s.no_match, s.verify_failures, s.done)
    seen, queue = {key(state)}, [state]
    while queue:
        current = queue.pop(0)
        if current.done:
            continue
        for event in events_for(script, current):
            actions, nxt = step(script, debtor, current, event, today=TODAY)
            yield current, actions, nxt
            if key(nxt) not in seen:
                seen.add(key(nxt))
                queue.append(nxt)


@pytest.mark.parametrize("script_id", SHIPPED + [s + "_en" for s in SHIPPED])
def test_every_path_keeps_the_debt_private_until_verified_and_reaches_every_node(script_id):
    script = load_all()[script_id]
    assert isinstance(script, Script) and script.lang == ("en" if script_id.endswith("_en") else "zh")
    debtor = debtor_for(script.lang)
    secrets = [format_amount(debtor.amount_owed, debtor.currency, script.lang), format_date(debtor.due_date, script.lang),
               "67", "1984", "4321"]
    visited, transitions = set(), 0
    for before, actions, after in walk(script):
        transitions += 1
        visited.update(after.path)
        for action in actions:
            if isinstance(action, Say) and not after.verified:
                for secret in secrets:
                    assert secret not in action.text, (script_id, before.node, action)
                assert not debt_mentions(action.text, script.lang), (script_id, action)
            if isinstance(action, Say):
                assert "1984" not in action.text and "4321" not in action.text  # factors are never spoken
        if after.done and after.verified is False:
            assert not any(isinstance(a, Say) and "7345" in a.text for a in actions)
    assert visited == set(script.nodes), f"never reached: {set(script.nodes) - visited}"
    assert transitions > 50


def test_zh_and_en_versions_ship_for_every_script():
    scripts = load_all()
    ids = set(scripts)
    assert all(isinstance(v, (Script, HandlerRef)) for v in scripts.values())
    if "dtmf_verify" in scripts:  # the harness's built-in handler is named, not scripted
        assert scripts["dtmf_verify"].handler == "dtmf_verify"
    for sid in SHIPPED:
        assert {sid, sid + "_en"} <= ids


BASE = """\
lang: en
start: greet
fallback: bye
on_any: {third_party: bye, wrong_number: bye, cease: bye}
prompts:
  hi: {text: "Hello, this is {collector_name} for {institution}.", must_finish: true}
  ask: "Are you {debtor_name}?"
  factor: "Please key in your birth year."
  debt: "You owe {amount}."
  bye: "Goodbye."
nodes:
  greet:
    say: [hi, ask]
    listen: [confirm_identity]
    goto: {confirm_identity: verify}
  verify:
    say: [factor]
    verify: birth_year
    goto: {verified: debt, failed: bye}
  debt:
    say: [debt]
    next: bye
  bye:
    say: [bye]
    end: done
"""


def test_a_minimal_valid_script_loads():
    script = load_script_text(BASE, "campaigns/scripts/mini.yaml")
    assert isinstance(script, Script) and script.id == "mini"


@pytest.mark.parametrize("old,new,line,field,message", [
    ("goto: {confirm_identity: verify}", "goto: {confirm_identity: verfy}", 15, "nodes.greet.goto.confirm_identity",
     "unknown node 'verfy'"),
    ('ask: "Are you {debtor_name}?"', 'ask: "Are you {debtor_nam}?"', 7, "prompts.ask", "unknown slot {debtor_nam}"),
    ("say: [factor]", "say: [factr]", 17, "nodes.verify.say[0]", "missing prompt 'factr'"),
    ('ask: "Are you {debtor_name}?"', 'ask: "Are you {debtor_name}? You owe {amount}."', 13, "nodes.greet.say[1]",
     "debt slot {amount} in prompt 'ask' before verification"),
    ("goto: {confirm_identity: verify}", "goto: {confirm_identity: debt}", 21, "nodes.debt.say[0]",
     "debt slot {amount} in prompt 'debt' before verification"),
    ('bye: "Goodbye."', 'bye: "Goodbye, please settle your balance."', 24, "nodes.bye.say[0]",
     "mentions the debt ('balance') before verification"),
    ("    say: [bye]\n    end: done", "    say: [bye]\n    ending: done", 25, "nodes.bye.ending", "unknown field 'ending'"),
])
def test_bad_scripts_name_file_line_and_field(old, new, line, field, message):
    text = BASE.replace(old, new)
    assert text != BASE
    with pytest.raises(ScriptError) as err:
        load_script_text(text, "campaigns/scripts/mini.yaml")
    rendered = str(err.value)
    expected = f"campaigns/scripts/mini.yaml:{line}: {field}: "
    assert any(e.render().startswith(expected) and message in e.message for e in err.value.errors), rendered


def test_identity_statement_must_come_first():
    text = BASE.replace('hi: {text: "Hello, this is {collector_name} for {institution}.", must_finish: true}',
                        'hi: "Hello."')
    with pytest.raises(ScriptError, match="who is calling and for which institution"):
        load_script_text(text, "mini.yaml")


def test_verification_cannot_be_reached_without_confirming_the_name():
    text = BASE.replace("listen: [confirm_identity]", "listen: [deny_identity]").replace(
        "goto: {confirm_identity: verify}", "goto: {deny_identity: verify}")
    with pytest.raises(ScriptError, match="without the caller confirming their name"):
        load_script_text(text, "mini.yaml")


def test_third_party_wrong_number_and_cease_must_be_handled_at_any_time():
    text = BASE.replace("on_any: {third_party: bye, wrong_number: bye, cease: bye}", "on_any: {cease: bye}")
    with pytest.raises(ScriptError, match=r"mini.yaml:4: on_any: on_any must handle 'third_party'"):
        load_script_text(text, "mini.yaml")


def test_unreachable_node_is_an_error():
    text = BASE + "  orphan:\n    say: [bye]\n    end: x\n"
    with pytest.raises(ScriptError, match="'orphan' is unreachable"):
        load_script_text(text, "mini.yaml")


def test_handler_file_gives_a_handler_ref(tmp_path: Path):
    p = tmp_path / "dtmf_verify.yaml"
    p.write_text("handler: dtmf_verify\n")
    ref = load_script(p)
    assert ref == HandlerRef("dtmf_verify", "dtmf_verify", str(p))
    p.write_text("handler: dtmf_verify\nnodes: {}\n")
    with pytest.raises(ScriptError, match=r"dtmf_verify.yaml:2: nodes: a handler script names only"):
        load_script(p)


def test_yaml_syntax_error_has_a_line():
    with pytest.raises(Exception, match=r"mini.yaml:\d+"):
        load_script_text(BASE + "  broken: [\n", "mini.yaml")


@pytest.mark.parametrize("script_id", SHIPPED + [s + "_en" for s in SHIPPED])
def test_the_qa_checker_finds_nothing_on_any_spoken_path(script_id):
    """Each transition reached by the shortest spoken path, as a transcript scored by `dialer qa`'s checker."""
    from dialer.qa.checker import check
    from dialer.qa.rules import load_rules

    rules = load_rules()
    script = load_all()[script_id]
    debtor = debtor_for(script.lang)
    factor = {"zh": "一九八四", "en": "one nine eight four"}[script.lang]
    key = lambda s: (s.node, s.verified, s.name_confirmed, s.no_input, s.no_match, s.verify_failures, s.done)
    actions, state = start(script, debtor)
    opening = [{"speaker": "agent", "text": a.text} for a in actions if isinstance(a, Say)]
    seen, queue, checked = {key(state)}, [(state, opening)], 0
    while queue:
        current, turns = queue.pop(0)
        if current.done:
            continue
        texts = [factor, "0000"] if script.nodes[current.node].verify else list(SAMPLES[script.lang].values())
        for text in texts:
            actions, nxt = step(script, debtor, current, Speech(text), today=TODAY)
            path = turns + [{"speaker": "callee", "text": text}] + [
                {"speaker": "agent", "text": a.text} for a in actions if isinstance(a, Say)]
            result = check({"call_id": "c", "lang": script.lang, "jurisdiction": "cn" if script.lang == "zh" else "us",
                            "started_at": "2026-11-23T10:00:00+08:00", "turns": path}, rules)
            assert result.violations == (), (result.violations, [t["text"] for t in path])
            checked += 1
            if key(nxt) not in seen:
                seen.add(key(nxt))
                queue.append((nxt, path))
    assert checked > 100
