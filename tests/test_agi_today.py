"""`today` is the debtor's local date, passed in: the engine, the intent parser and the call flow need it,
and nothing in agi/ falls back to the machine's date."""
import ast
import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agi.flows.scripted import run_script
from agi.intents import classify
from agi.ports import InMemoryPorts
from agi.script.engine import Engine, State, step
from agi.script.loader import load_by_id
from agi.script.model import Debtor, Dtmf, Record

AGI = Path(__file__).resolve().parents[1] / "agi"
DEBTOR = Debtor("D1", "Jane Roe", phone="+12125550101", birth_year="1984", amount_owed=Decimal("500"),
                currency="USD", due_date=date(2031, 1, 15), days_past_due=43, institution="Example Bank", collector_name="Ava", callback_number="8005550199")
# Far from any machine's date: a fallback to the clock would show.
DEBTORS_TODAY = date(2031, 2, 27)


def test_the_engine_needs_today():
    script = load_by_id("m1_reminder_en")
    with pytest.raises(TypeError):
        Engine(script, DEBTOR)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        step(script, DEBTOR, State(node=script.start), Dtmf("1"))  # type: ignore[call-arg]


def test_the_intent_parser_needs_today():
    with pytest.raises(TypeError):
        classify("I'll pay tomorrow", "en")  # type: ignore[call-arg]


def test_the_call_flow_needs_today():
    with pytest.raises(TypeError):
        asyncio.run(run_script(object(), load_by_id("m1_reminder_en"), DEBTOR,  # type: ignore[call-arg]
                               InMemoryPorts()))


@pytest.mark.parametrize("key,due", [("1", date(2031, 2, 27)), ("2", date(2031, 3, 2))])
def test_key_offsets_count_from_the_debtors_today(key, due):
    """m1_reminder_en: after verification, 1 = pay today (+0d), 2 = in three days (+3d)."""
    engine = Engine(load_by_id("m1_reminder_en"), DEBTOR, today=DEBTORS_TODAY)
    engine.start()
    actions = [a for event in (Dtmf("1"), Dtmf("1984"), Dtmf(key)) for a in engine.handle(event)]
    promise = next(a for a in actions if isinstance(a, Record) and a.outcome == "promise")
    assert promise.data["date"] == due.isoformat()


def test_spoken_dates_resolve_against_the_given_today():
    assert classify("I'll pay tomorrow", "en", today=DEBTORS_TODAY).slots["date"] == date(2031, 2, 28)
    assert classify("明天还", "zh", today=DEBTORS_TODAY).slots["date"] == date(2031, 2, 28)


def test_nothing_in_agi_reads_the_date_from_the_clock():
    calls = []
    for path in sorted(AGI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ("today", "now", "utcnow") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("date", "datetime"):
                calls.append(f"{path.relative_to(AGI.parent)}:{node.lineno}")
    assert calls == []
