"""The core store: campaigns round-trip, the hopper's due debtors, attempts, promises, screen pops,
the hash-chained audit log (tamper detection) and two processes racing for the same debtor."""
from __future__ import annotations

import multiprocessing
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from dialer.campaign.config import load_campaign_text
from dialer.campaign.imports import ImportRejected
from dialer.store import Store, core
from dialer.store import audit as audit_log
from tests.engines import both_engines, sqlite_only, tamper  # noqa: F401

pytestmark = both_engines

CAMPAIGN = """\
name: demo
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550100"
caller_id: "+12125550199"
dial_mode: progressive
line_limit: 2
segments:
  - {name: early, dpd: M1, script: dtmf_verify}
  - {name: late, dpd: "31+", customer_types: [first, repeat], script: dtmf_verify}
"""


def _row(debtor_id: str, phones: str, dpd: int, ctype: str = "first", amount: str = "100.00",
         account: str | None = None, **extra: str) -> dict[str, str]:
    return {"debtor_id": debtor_id, "name": f"Name {debtor_id}", "phones": phones,
            "account_id": account or f"A-{debtor_id}", "amount_owed": amount, "days_past_due": str(dpd),
            "customer_type": ctype, **extra}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    s = Store(tmp_path / "t.db")
    core.upsert_campaign(s, load_campaign_text(CAMPAIGN, "demo.yaml", scripts_dir=scripts,
                                               rules_file=tmp_path / "none.yaml"), now=1000.0)
    yield s
    s.close()


def test_campaign_round_trips_through_the_store(store: Store):
    cfg = core.get_campaign(store, "demo")
    assert cfg is not None and cfg.name == "demo" and cfg.line_limit == 2
    assert [s.name for s in cfg.segments] == ["early", "late"]
    assert cfg.segments[1].customer_types == ("first", "repeat")
    assert core.get_campaign(store, "nope") is None
    assert [c["name"] for c in core.list_campaigns(store)] == ["demo"]


def test_due_debtors_filters_and_orders(store: Store):
    core.import_debtors(store, [
        _row("d1", "+12125550101;+12125550102", 10),
        _row("d2", "+12125550103", 45),
        _row("d3", "+12125550104", 45, ctype="wilful"),   # no segment takes wilful 31+ → never offered
        _row("d4", "+12125550105", 5),
    ], "demo", now=1000.0)
    due = core.due_debtors(store, "demo", now_ts=2000.0, limit=10)
    assert [c.debtor_id for c in due] == ["d2", "d1", "d4"]   # most days past due first when unscored
    d1 = next(c for c in due if c.debtor_id == "d1")
    assert d1.phones == ("+12125550101", "+12125550102") and d1.bucket == "M1" and d1.segment == "early"
    assert d1.amount_owed == Decimal("100.00") and d1.currency == "USD" and d1["lang"] == "en"

    core.set_propensity(store, "d4", 0.9)
    core.set_next_allowed(store, "d2", 5000.0)
    core.set_debtor_status(store, "d1", "cease", at=1500.0)
    assert [c.debtor_id for c in core.due_debtors(store, "demo", 2000.0, 10)] == ["d4"]
    assert [c.debtor_id for c in core.due_debtors(store, "demo", 5000.0, 10)] == ["d4", "d2"]
    assert len(core.due_debtors(store, "demo", 5000.0, 1)) == 1

    core.mark_phone(store, "d4", "+12125550105", "wrong_number")
    assert "d4" not in [c.debtor_id for c in core.due_debtors(store, "demo", 5000.0, 10)]


def test_attempt_in_flight_hides_debtor_and_blocks_a_second_attempt(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10)], "demo", now=1000.0)
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="c1", debtor_id="d1", account_id="A-d1", campaign="demo",
                            phone="+12125550101", placed_at=1100.0)
    assert core.due_debtors(store, "demo", 2000.0, 10) == []
    with pytest.raises(core.AttemptConflict):
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id="c2", debtor_id="d1", account_id="A-d1", campaign="demo",
                                phone="+12125550101", placed_at=1101.0)
    assert [a["id"] for a in core.open_attempts(store)] == ["c1"]

    core.update_attempt(store, "c1", state="answered", answered_at=1105.0)
    row = core.update_attempt(store, "c1", state="ended", outcome="answered", ended_at=1160.0,
                              conversation=True, disposition="promise")
    assert row["state"] == "ended" and row["conversation"] == 1 and row["disposition"] == "promise"
    # a late event cannot reopen an ended call
    assert core.update_attempt(store, "c1", state="ringing")["state"] == "ended"
    assert core.open_attempts(store) == []
    assert [c.debtor_id for c in core.due_debtors(store, "demo", 2000.0, 10)] == ["d1"]
    assert [a["id"] for a in core.attempts_for_debtor(store, "d1")] == ["c1"]
    kinds = [e["kind"] for e in audit_log.audit_entries(store, subject="c1")]
    assert kinds == ["attempt.placed", "attempt.update", "attempt.update"]   # the ignored late event: no entry
    with pytest.raises(ValueError):
        core.update_attempt(store, "c1", colour="red")
    with pytest.raises(KeyError):
        core.update_attempt(store, "nope", state="ended")


def test_insert_attempt_needs_a_transaction(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10)], "demo")
    with pytest.raises(RuntimeError):
        core.insert_attempt(store.conn, call_id="c1", debtor_id="d1", account_id=None, campaign="demo",
                            phone="+12125550101", placed_at=1.0)


def test_set_next_allowed_never_moves_earlier(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10)], "demo")
    core.set_next_allowed(store, "d1", 5000.0)
    core.set_next_allowed(store, "d1", 3000.0)
    assert core.get_debtor(store, "d1")["next_allowed_at"] == 5000.0
    core.set_next_allowed(store, "d1", None)
    assert core.get_debtor(store, "d1")["next_allowed_at"] is None


def test_cease_request_stops_dialling(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10)], "demo")
    core.add_contact_request(store, "d1", "cease", {"said": "stop calling"}, 1200.0, "c9")
    assert core.due_debtors(store, "demo", 2000.0, 10) == []
    assert [r["kind"] for r in core.contact_requests(store, "d1")] == ["cease"]
    with pytest.raises(ValueError):
        core.add_contact_request(store, "d1", "whatever", {}, 1200.0, "operator")


def test_screen_pop_carries_context_and_masks_the_phone(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10, amount="250.00")], "demo")
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="c1", debtor_id="d1", account_id="A-d1", campaign="demo",
                            phone="+12125550101", placed_at=1100.0)
    core.record_call_event(store, "c1", "verified", 1110.0, {"factor": "birth_year"})
    core.record_call_event(store, "c1", "intent", 1120.0, {"intent": "promise"})
    core.record_promise(store, "c1", "d1", "A-d1", "100.00", "2026-12-01", 1125.0)
    pid = core.push_screen_pop(store, "alice", "c1", "d1", {"note": "wants a plan"}, 1130.0)
    core.push_screen_pop(store, "bob", "c1", "d1", None, 1131.0)
    pops = core.screen_pops_after(store, "alice", 0)
    assert [p["id"] for p in pops] == [pid]
    ctx = pops[0]["context"]
    assert ctx["name"] == "Name d1" and ctx["amount_owed"] == "250.00" and ctx["days_past_due"] == 10
    assert ctx["bucket"] == "M1" and ctx["segment"] == "early" and ctx["verified"] is True
    assert ctx["intents"] == ["promise"] and ctx["promise"]["amount"] == "100.00"
    assert ctx["note"] == "wants a plan"
    assert "5550101" not in ctx["phone"] and ctx["phone"].endswith("0101")
    assert core.screen_pops_after(store, "alice", pid) == []


def test_payments_mark_promise_kept_and_reject_duplicates(store: Store):
    core.import_debtors(store, [_row("d1", "+12125550101", 10), _row("d2", "+12125550102", 12)], "demo")
    created = 1764547200.0   # 2025-12-01 00:00 UTC
    p1 = core.record_promise(store, "c1", "d1", "A-d1", "60.00", "2025-12-10", created)
    p2 = core.record_promise(store, "c2", "d2", "A-d2", None, "2025-12-10", created)   # full balance
    out = core.import_payments(store, [
        {"account_id": "A-d1", "paid_at": "2025-12-05", "amount": "30", "currency": "USD", "reference": "R1"},
        {"account_id": "A-d1", "paid_at": "2025-12-09T15:00:00+00:00", "amount": "30", "currency": "USD",
         "reference": "R2"},
        {"account_id": "A-d2", "paid_at": "2025-12-11", "amount": "100", "currency": "USD", "reference": "R3"},
    ])
    assert out["payments"] == 3 and out["promises_kept"] == [p1] and out["totals"] == {"USD": "160"}
    status = {p["id"]: p["status"] for p in core.promises_for(store)}
    assert status == {p1: "kept", p2: "open"}          # d2 paid a day late
    assert core.settle_promises(store, "2025-12-12")["broken"] == [p2]

    with pytest.raises(ImportRejected) as err:
        core.import_payments(store, [
            {"account_id": "A-d2", "paid_at": "2025-12-20", "amount": "5", "currency": "USD", "reference": "R9"},
            {"account_id": "A-d2", "paid_at": "2025-12-20", "amount": "5", "currency": "USD", "reference": "R1"},
        ])
    assert err.value.errors[0].row == 3 and err.value.errors[0].column == "reference"
    assert store.query_one("SELECT count(*) FROM payments")[0] == 3   # R9 not imported either


def test_audit_chain_detects_a_modified_row(store: Store, tmp_path: Path):
    for i in range(5):
        audit_log.audit(store, "tester", "thing", f"s{i}", {"i": i, "text": "数据"}, 2000.0 + i)
    assert audit_log.verify_audit_chain(store) == (True, None)
    target = store.query_one("SELECT seq FROM audit_log WHERE subject='s2'")[0]
    with pytest.raises(sqlite3.DatabaseError):   # the trigger refuses ordinary updates
        store.conn.execute("UPDATE audit_log SET payload_json='{}' WHERE seq=?", (target,))
    # an attacker with the file (or the database's owner) drops the trigger and edits a row
    tamper(store, ["UPDATE audit_log SET payload_json='{\"i\":99,\"text\":\"数据\"}' WHERE seq=?"], (target,))
    assert audit_log.verify_audit_chain(store) == (False, target)


def test_audit_chain_detects_a_deleted_row_even_with_rehashed_successor(store: Store, tmp_path: Path):
    for i in range(4):
        audit_log.audit(store, "tester", "thing", f"s{i}", {"i": i}, 2000.0 + i)
    first_seq = store.query_one("SELECT seq FROM audit_log WHERE subject='s1'")[0]
    tamper(store, ["DELETE FROM audit_log WHERE seq=?"], (first_seq,))
    assert audit_log.verify_audit_chain(store) == (False, first_seq + 1)


def test_audit_hash_is_the_documented_recipe(store: Store):
    seq = audit_log.audit(store, "tester", "k", "subj", {"b": 1, "a": "x"}, 1234.5)
    row = store.query_one("SELECT * FROM audit_log WHERE seq=?", (seq,))
    import hashlib
    import json
    body = json.dumps({"seq": seq, "at": 1234.5, "actor": "tester", "kind": "k", "subject": "subj",
                       "payload_json": '{"a":"x","b":1}'}, sort_keys=True, separators=(",", ":"))
    assert row["payload_json"] == '{"a":"x","b":1}'
    assert row["hash"] == hashlib.sha256((row["prev_hash"] + body).encode()).hexdigest()


def _race_worker(db: str, barrier, results) -> None:
    s = Store(db)
    barrier.wait()
    with s.transaction() as conn:
        due = core.due_debtors(conn, "demo", time.time(), 10)
        time.sleep(0.2)   # a slow gate: the other process must wait, not read the same state
        placed = 0
        for c in due:
            core.insert_attempt(conn, call_id=f"c-{multiprocessing.current_process().pid}-{c.debtor_id}",
                                debtor_id=c.debtor_id, account_id=c.account_id, campaign="demo",
                                phone=c.phones[0], placed_at=time.time())
            placed += 1
    results.put(placed)
    s.close()


def test_two_processes_cannot_both_take_the_same_debtor(store: Store, tmp_path: Path):
    core.import_debtors(store, [_row("d1", "+12125550101", 10), _row("d2", "+12125550102", 40)], "demo")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(tmp_path / "t.db"), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(results.get(timeout=1) for _ in procs) == [0, 2]
    rows = store.query("SELECT debtor_id, count(*) FROM attempts GROUP BY debtor_id")
    assert {r[0]: r[1] for r in rows} == {"d1": 1, "d2": 1}
