"""Payments settle balances in the same transaction as their import: a debtor paid in full between two attempts is
not called again (the hopper drops them, the gate refuses a call already picked for them), a partial payment changes
what the bot reads, a reversal restores it; promises are kept, partly kept or broken by the payments against them."""
from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agi.script.model import Dtmf
from agi.testing import run_flow
from common.clock import FixedClock
from dialer.calls.bot import script_debtor
from dialer.calls.ports import StorePorts
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import ImportRejected
from dialer.gate.account import take_attempt
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store import payments as pay
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent
AT = datetime.fromisoformat("2026-11-23T11:00:00-05:00")  # Monday 11:00 in New York
CAMP = load_campaign(REPO / "campaigns" / "en_demo.yaml")
RULES = load_rules(REPO / "compliance_rules.yaml")


def _store(tmp_path: Path, ids: list[str], amount: str = "100.00") -> Store:
    store = Store(tmp_path / "d.db")
    core.upsert_campaign(store, CAMP)
    core.import_debtors(store, [
        {"debtor_id": d, "name": f"Debtor {d}", "phones": f"+121255501{i:02d}", "id_last4": "1234",
         "birth_year": "1984", "account_id": f"A-{d}", "amount_owed": amount, "currency": "USD",
         "days_past_due": "10", "due_date": "2026-11-13", "timezone": "America/New_York",
         "customer_type": "first", "lang": "en", "contacts": ""} for i, d in enumerate(ids)], CAMP.name)
    return store


def _pay(account: str, amount: str, ref: str, paid: str = "2026-11-23") -> dict[str, str]:
    return {"account_id": account, "paid_at": paid, "amount": amount, "currency": "USD", "reference": ref}


def _attempt(store: Store, debtor: str, call_id: str, when: datetime):
    return take_attempt(store, call_id=call_id, debtor_id=debtor, account_id=f"A-{debtor}", campaign=CAMP.name,
                        phone=None, rules=RULES, now=when)


def test_paid_in_full_between_two_attempts_is_not_called_again(tmp_path):
    store = _store(tmp_path, ["P1", "P2"])
    assert _attempt(store, "P1", "c-1", AT).allowed
    core.update_attempt(store, "c-1", state="ended", outcome="no_answer", ended_at=AT.timestamp() + 30)
    later = AT + timedelta(hours=2)
    # the hopper picks its next calls: P1 is due again (its queue holds both debtors) …
    queued = core.due_debtors(store, CAMP.name, later.timestamp())
    assert {c.debtor_id for c in queued} == {"P1", "P2"}
    # … then the night's payment file says P1 paid everything
    out = core.import_payments(store, [_pay("A-P1", "60.00", "R-1"), _pay("A-P1", "40.00", "R-2")],
                               now=later.timestamp() - 1)
    assert out["paid_in_full"] == ["A-P1"] and out["payments"] == 2
    assert core.get_debtor(store, "P1")["accounts"][0]["amount_owed"] == "0.00"
    # the hopper no longer offers P1, and the call already picked for P1 is refused by the gate
    assert [c.debtor_id for c in core.due_debtors(store, CAMP.name, later.timestamp())] == ["P2"]
    d = _attempt(store, "P1", "c-2", later)
    assert not d.allowed and d.rule_id == "account.paid_in_full" and d.permanent
    assert "paid in full" in d.reason and "2026-11-23" in d.reason
    assert core.get_attempt(store, "c-2") is None   # nothing was placed
    assert [a["id"] for a in core.attempts_for_debtor(store, "P1")] == ["c-1"]
    assert _attempt(store, "P2", "c-3", later).allowed
    # a reversal (the cheque bounced) makes P1 due again at once, with the right balance
    back = core.import_payments(store, [_pay("A-P1", "-40.00", "R-2", "2026-11-24")], now=later.timestamp() + 60)
    assert back["reversals"] == 1 and back["restored"] == ["A-P1"]
    assert core.get_debtor(store, "P1")["accounts"][0]["amount_owed"] == "40.00"
    assert "P1" in {c.debtor_id for c in core.due_debtors(store, CAMP.name, later.timestamp() + 120)}
    store.close()


def _said_amount(store: Store, when: datetime, call_id: str) -> str:
    """What the bot reads: the call's context from the store, rendered by the English reminder script."""
    ctx = asyncio.run(StorePorts(store, FixedClock(when)).lookup(call_id))
    run = run_flow("m1_reminder_en", script_debtor(ctx), today=when.date(),
                   events=[Dtmf("1"), Dtmf("1984")])
    return run.said


def test_partial_payment_changes_what_the_bot_reads_and_a_reversal_restores_it(tmp_path):
    store = _store(tmp_path, ["B1"], amount="1250.00")
    assert _attempt(store, "B1", "c-b1", AT).allowed
    core.update_attempt(store, "c-b1", state="answered", answered_at=AT.timestamp() + 3)
    before = _said_amount(store, AT, "c-b1")
    assert "1,250" in before
    core.import_payments(store, [_pay("A-B1", "250.00", "R-B1")], now=AT.timestamp() + 5)
    after = _said_amount(store, AT, "c-b1")
    assert "1,000" in after and "1,250" not in after     # the same call's next lookup reads the new balance
    core.import_payments(store, [_pay("A-B1", "-250.00", "R-B1")], now=AT.timestamp() + 9)
    assert "1,250" in _said_amount(store, AT, "c-b1")
    store.close()


def test_reversals_are_checked_and_everything_is_all_or_nothing(tmp_path):
    store = _store(tmp_path, ["R1", "R2"])
    core.import_payments(store, [_pay("A-R1", "30", "X-1")], now=AT.timestamp())
    cases = [
        ([_pay("A-R1", "-30", "X-404")], "reference", "unknown payment"),
        ([_pay("A-R1", "-20", "X-1")], "amount", "must be -30"),
        ([_pay("A-R2", "-30", "X-1")], "account_id", "was made to account A-R1"),
        ([_pay("A-R1", "-30", "X-1"), _pay("A-R1", "-30", "X-1")], "reference", "duplicate reversal of"),
    ]
    for rows, column, text in cases:
        with pytest.raises(ImportRejected) as err:
            core.import_payments(store, [_pay("A-R2", "10", "OK-1"), *rows], now=AT.timestamp())
        e = err.value.errors[-1]
        assert e.column == column and text in e.message and e.row >= 3, (rows, err.value)
    # nothing of those files landed: balances, payments and reversals are as before
    assert [a["amount_owed"] for a in (core.get_debtor(store, d)["accounts"][0] for d in ("R1", "R2"))] == ["70.00", "100.00"]
    assert store.query_one("SELECT count(*) FROM payments")[0] == 1
    assert store.query_one("SELECT count(*) FROM payment_reversals")[0] == 0
    # a payment and its reversal in the same file: net nothing
    out = core.import_payments(store, [_pay("A-R2", "10", "Y-1"), _pay("A-R2", "-10", "Y-1")], now=AT.timestamp())
    assert out["payments"] == 1 and out["reversals"] == 1
    assert core.get_debtor(store, "R2")["accounts"][0]["amount_owed"] == "100.00"
    store.close()


def test_promises_kept_partly_kept_or_broken_by_payments(tmp_path):
    store = _store(tmp_path, ["K1", "K2", "K3", "K4"])
    made = AT.timestamp()
    p_kept = core.record_promise(store, None, "K1", "A-K1", "50.00", "2026-11-30", made)
    p_part = core.record_promise(store, None, "K2", "A-K2", "50.00", "2026-11-30", made)
    p_none = core.record_promise(store, None, "K3", "A-K3", "50.00", "2026-11-30", made)
    p_full = core.record_promise(store, None, "K4", "A-K4", None, "2026-11-30", made)  # the whole balance
    out = core.import_payments(store, [_pay("A-K1", "50", "K-1", "2026-11-25"), _pay("A-K2", "20", "K-2", "2026-11-25"),
                                       _pay("A-K4", "60", "K-4a", "2026-11-25"), _pay("A-K4", "40", "K-4b", "2026-11-29")],
                               now=made + 86400 * 7)
    assert out["promises_kept"] == [p_kept, p_full]
    night = core.settle_promises(store, date(2026, 12, 1), at=made + 86400 * 8)
    assert night["partly_kept"] == [p_part] and p_none in night["broken"]
    status = {p["id"]: (p["status"], p["paid_by_payments"]) for p in core.promises_for(store)}
    assert status == {p_kept: ("kept", "50"), p_part: ("partly_kept", "20"), p_none: ("broken", "0"),
                      p_full: ("kept", "100")}
    # the kept promise's payment bounces: the promise is no longer kept (and after its due date, broken)
    back = pay.import_payments(store, [_pay("A-K1", "-50", "K-1", "2026-12-02")], now=made + 86400 * 9,
                               today="2026-12-02")
    assert back["promises_broken"] == [p_kept]
    assert Decimal(core.get_debtor(store, "K1")["accounts"][0]["amount_owed"]) == Decimal("100")
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit_log WHERE kind LIKE 'promise.%' ORDER BY seq")]
    assert "promise.partly_kept" in kinds and kinds.count("promise.kept") >= 2 and "promise.broken" in kinds
    store.close()


def test_payments_settle_command_judges_due_dates(tmp_path):
    from click.testing import CliRunner

    from dialer.cli import main

    store = _store(tmp_path, ["N1", "N2"])
    p_part = core.record_promise(store, None, "N1", "A-N1", "50.00", "2026-11-30", AT.timestamp())
    p_none = core.record_promise(store, None, "N2", "A-N2", "50.00", "2026-11-30", AT.timestamp())
    core.import_payments(store, [_pay("A-N1", "10", "N-1", "2026-11-26")], now=AT.timestamp() + 86400)
    db = str(tmp_path / "d.db")
    early = CliRunner().invoke(main, ["payments", "settle", "--today", "2026-11-30", "--db", db, "--json"])
    assert json.loads(early.stdout)["broken"] == [] and json.loads(early.stdout)["partly_kept"] == []
    res = CliRunner().invoke(main, ["payments", "settle", "--today", "2026-12-01", "--db", db])
    assert res.exit_code == 0 and "0 kept, 1 partly kept, 1 broken" in res.output
    assert {p["id"]: p["status"] for p in core.promises_for(store)} == {p_part: "partly_kept", p_none: "broken"}
    bad = CliRunner().invoke(main, ["payments", "settle", "--today", "tomorrow", "--db", db])
    assert bad.exit_code == 2 and "not an ISO date" in bad.output
    store.close()
