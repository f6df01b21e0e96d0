"""take_attempt: atomic accounting on a real SQLite file and a real PostgreSQL server, blocks with rule ids,
racing workers (threads and processes)."""
from __future__ import annotations

import multiprocessing as mp
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dialer.gate.account import FOREVER, add_inconvenient, load_history, take_attempt
from dialer.gate.rules import load_rules
from dialer.store import Store
from dialer.store.gate import add_cease, add_consent, add_dnc, gate_blocks
from tests.engines import both_engines

pytestmark = both_engines

RULES_FILE = Path(__file__).resolve().parents[1] / "compliance_rules.yaml"
RULES = load_rules(RULES_FILE)
NOW = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
PHONE = "+8613800138000"
PHONE2 = "+8613900139000"


def seed(store: Store, debtors=("d1",), campaign="c1", profile="cn", tz=None) -> None:
    db = store.db
    db["campaigns"].insert({"name": campaign, "file": "x.yaml", "profile": profile, "locale": "zh-CN",
                            "dial_mode": "progressive", "line_limit": 10, "config_json": "{}",
                            "loaded_at": 0.0}, ignore=True)
    for i, d in enumerate(debtors):
        db["debtors"].insert({"debtor_id": d, "campaign": campaign, "name": "N", "timezone": tz,
                              "customer_type": "first", "lang": "zh", "imported_at": 0.0})
        db["phones"].insert({"debtor_id": d, "phone": PHONE if i == 0 else f"+86138{i:08d}", "rank": 0})
        db["phones"].insert({"debtor_id": d, "phone": PHONE2 if i == 0 else f"+86139{i:08d}", "rank": 1})


def end_call(store: Store, call_id: str, **fields) -> None:
    sets = {"state": "ended", "outcome": "no_answer"} | fields
    store.db["attempts"].update(call_id, sets)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "gate.db")
    seed(s)
    yield s
    s.close()


def take(store, call_id, now=NOW, phone=PHONE, rules=RULES, **kw):
    return take_attempt(store, call_id=call_id, debtor_id=kw.pop("debtor_id", "d1"), account_id=None,
                        campaign="c1", phone=phone, rules=rules, now=now, **kw)


def test_allowed_attempt_is_recorded_in_the_same_call(store):
    d = take(store, "call-1")
    assert d.allowed
    row = store.query_one("SELECT debtor_id, phone, placed_at, state FROM attempts WHERE id='call-1'")
    assert tuple(row) == ("d1", PHONE, NOW.timestamp(), "placed")
    assert gate_blocks(store) == []


def test_block_is_stored_with_rule_id_and_moves_next_allowed(store):
    late = datetime.fromisoformat("2026-11-23T22:00:00+08:00")
    d = take(store, "call-1", now=late)
    assert not d.allowed and d.rule_id == "time.window"
    assert store.query_one("SELECT count(*) FROM attempts")[0] == 0
    [b] = gate_blocks(store, debtor_id="d1")
    assert b["rule_id"] == "time.window" and b["call_id"] == "call-1"
    expected = datetime.fromisoformat("2026-11-24T08:00:00+08:00").timestamp()
    assert b["next_allowed_at"] == expected
    assert store.query_one("SELECT next_allowed_at FROM debtors WHERE debtor_id='d1'")[0] == expected
    audit = store.query_one("SELECT actor, kind, subject, payload_json FROM audit_log WHERE kind='gate.block'")
    assert (audit["actor"], audit["subject"]) == ("gate", "d1") and '"rule_id":"time.window"' in audit["payload_json"]
    assert PHONE not in audit["payload_json"]  # masked


def test_cap_then_restart_still_counts(store, tmp_path):
    t = NOW
    for i in range(3):
        assert take(store, f"c{i}", now=t).allowed
        end_call(store, f"c{i}")
        t += timedelta(minutes=31)
    store.close()
    again = Store(tmp_path / "gate.db")  # a restarted daemon
    d = take(again, "c9", now=t)
    assert d.rule_id == "cap.daily"
    assert again.query_one("SELECT next_allowed_at FROM debtors")[0] == datetime.fromisoformat(
        "2026-11-24T08:00:00+08:00").timestamp()
    again.close()


def test_requests_cease_dnc_inconvenient_consent(store):
    add_inconvenient(store, "d1", {"days": ["mon"], "start": "09:00", "end": "12:00", "label": "at work"}, at=NOW - timedelta(days=1))
    d = take(store, "a", now=NOW)
    assert d.rule_id == "request.inconvenient"
    add_dnc(store, PHONE, "operator", at=NOW)
    assert take(store, "b", now=NOW + timedelta(hours=3)).rule_id == "dnc"
    assert take(store, "c", now=NOW + timedelta(hours=3), phone=PHONE2).allowed
    end_call(store, "c")
    add_consent(store, "d1", "call-x", at=NOW)
    assert load_history(store, "d1", NOW + timedelta(hours=4)).consents == (NOW.timestamp(),)
    add_cease(store, "d1", "call-c", at=NOW + timedelta(hours=4))
    d = take(store, "e", now=NOW + timedelta(days=1), phone=PHONE2)
    assert d.rule_id == "cease" and d.next_allowed_at is None
    assert store.query_one("SELECT next_allowed_at FROM debtors")[0] == FOREVER
    with pytest.raises(ValueError):
        add_inconvenient(store, "d1", {"start": "17:00", "end": "09:00"})
    assert [b["rule_id"] for b in gate_blocks(store)] == ["cease", "dnc", "request.inconvenient"]


def test_gate_picks_an_allowed_number_when_none_given(store):
    add_dnc(store, PHONE, "operator", at=NOW)
    d = take(store, "a", phone=None)
    assert d.allowed and d.phone == PHONE2
    assert store.query_one("SELECT phone FROM attempts WHERE id='a'")[0] == PHONE2


def test_a_second_attempt_while_one_is_in_flight_is_blocked(store):
    no_gap = RULES.profile_for("cn")
    no_gap = replace(no_gap, gate=replace(no_gap.gate, min_gap_minutes=0))
    assert take(store, "a", rules=no_gap).allowed
    d = take(store, "b", rules=no_gap, phone=PHONE2)
    assert not d.allowed and d.rule_id == "gap.min" and "in flight" in d.reason


def _worker(db: str, name: str, n: int, start: threading.Barrier | None, results: list) -> None:
    s = Store(db, migrate=False)
    prof = RULES.profile_for("cn")
    prof = replace(prof, gate=replace(prof.gate, min_gap_minutes=0, number_daily_attempts=None))
    if start is not None:
        start.wait()
    for i in range(n):
        call = f"{name}-{i}"
        for debtor in ("d1", "d2", "d3"):
            d = take_attempt(s, call_id=f"{call}-{debtor}", debtor_id=debtor, account_id=None, campaign="c1",
                             phone=None, rules=prof, now=NOW)
            if d.allowed:
                results.append(debtor)
                with s.transaction() as c:  # the call ends at once, so only the cap can stop the next one
                    c.execute("UPDATE attempts SET state='ended', outcome='no_answer' WHERE id=?", (f"{call}-{debtor}",))
    s.close()


def test_racing_threads_never_exceed_the_cap(tmp_path):
    db = tmp_path / "race.db"
    s = Store(db)
    seed(s, debtors=("d1", "d2", "d3"))
    s.close()
    results: list[str] = []
    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=_worker, args=(str(db), f"w{k}", 6, barrier, results)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = Store(db)
    per = {d: s.query_one("SELECT count(*) FROM attempts WHERE debtor_id=?", (d,))[0] for d in ("d1", "d2", "d3")}
    assert per == {"d1": 3, "d2": 3, "d3": 3}
    assert sorted(results) == sorted(["d1", "d2", "d3"] * 3)
    blocks = {r[0] for r in s.query("SELECT DISTINCT rule_id FROM gate_blocks")}
    assert "cap.daily" in blocks


def _proc(db: str, name: str, q) -> None:
    out: list[str] = []
    _worker(db, name, 5, None, out)
    q.put(out)


def test_racing_processes_never_exceed_the_cap(tmp_path):
    db = tmp_path / "race.db"
    s = Store(db)
    seed(s, debtors=("d1", "d2", "d3"))
    s.close()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_proc, args=(str(db), f"p{k}", q)) for k in range(3)]
    for p in procs:
        p.start()
    allowed = [x for _ in procs for x in q.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(allowed) == sorted(["d1", "d2", "d3"] * 3)
    s = Store(db)
    assert s.query_one("SELECT count(*) FROM attempts")[0] == 9


def test_no_time_within_horizon_reschedules_a_recheck_not_forever(tmp_path):
    s = Store(tmp_path / "h.db")
    seed(s, tz="America/New_York")
    add_inconvenient(s, "d1", {"start": "08:00", "end": "10:30"}, at=NOW - timedelta(days=1))
    d = take(s, "a", now=datetime.fromisoformat("2026-11-23T12:59:00+00:00"))
    assert d.rule_id == "time.window" and d.next_allowed_at is None and not d.permanent
    nxt = s.query_one("SELECT next_allowed_at FROM debtors")[0]
    assert nxt == datetime.fromisoformat("2026-11-23T12:59:00+00:00").timestamp() + 60 * 86400
    s.close()
