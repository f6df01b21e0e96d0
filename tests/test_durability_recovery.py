"""Facts the compliance gate depends on are written when they happen, and a restarted daemon settles every
call a crash left open as a clean run would have (no Asterisk: a fake AMI, CDR and CEL files)."""
from __future__ import annotations

import asyncio
import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from common.clock import FixedClock
from dialer.calls.daemon import Dialer
from dialer.calls.ports import StorePorts
from dialer.campaign.config import load_campaign
from dialer.gate.account import load_history
from dialer.gate.decide import Attempt, decide
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store.qa import latest_result
from dialer.telephony.ami import classify
from dialer.telephony.pbx import PbxConnection
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "compliance_rules.yaml")
AT = datetime.fromisoformat("2026-11-23T11:00:00-05:00")
CAMP = load_campaign(REPO / "campaigns" / "en_demo.yaml")


def _store(tmp_path: Path, ids: list[str]) -> Store:
    store = Store(tmp_path / "d.db")
    core.upsert_campaign(store, CAMP)
    core.import_debtors(store, [
        {"debtor_id": d, "name": f"Debtor {d}", "phones": f"+121255501{i:02d}", "id_last4": "1234",
         "birth_year": "1980", "account_id": f"A-{d}", "amount_owed": "100.00", "currency": "USD",
         "days_past_due": "10", "due_date": "2026-11-13", "timezone": "America/New_York",
         "customer_type": "first", "lang": "en", "contacts": ""} for i, d in enumerate(ids)], CAMP.name)
    return store


def _place(store: Store, debtor: str, *, answered: bool) -> str:
    call_id = f"call-{debtor}"
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id=call_id, debtor_id=debtor, account_id=f"A-{debtor}", campaign=CAMP.name,
                            phone=core.get_debtor(store, debtor)["phones"][0]["phone"], placed_at=AT.timestamp())
    core.update_attempt(store, call_id, state="answered" if answered else "ringing",
                        answered_at=AT.timestamp() + 3 if answered else None)
    return call_id


def test_verification_is_a_conversation_the_moment_it_happens(tmp_path):
    store = _store(tmp_path, ["V1"])
    call_id = _place(store, "V1", answered=True)
    ports = StorePorts(store, FixedClock(AT + timedelta(seconds=10)))
    asyncio.run(ports.record_outcome(call_id, "verified_no_choice", {"verified": True}))
    # the call has not ended: a crash now must not let the debtor be called tomorrow (US 7-day quiet period)
    assert core.get_attempt(store, call_id)["conversation"] == 1
    core.update_attempt(store, call_id, state="unknown", outcome="unknown")
    tomorrow = AT + timedelta(days=1)
    d = decide(Attempt("V1", "+12125550100", campaign=CAMP.name), load_history(store, "V1", tomorrow),
               RULES.profile_for("us"), tomorrow)
    assert not d.allowed and not next(c for c in d.checks if c.rule_id == "conv.7day").passed


def test_the_bot_transcript_survives_the_process(tmp_path):
    store = _store(tmp_path, ["T1"])
    call_id = _place(store, "T1", answered=True)
    ports = StorePorts(store, FixedClock(AT))
    asyncio.run(ports.record_transcript_turn(call_id, "agent", "This is Acme Finance.", 0.0, 2.5))
    asyncio.run(ports.record_transcript_turn(call_id, "callee", "1", 2.6, 2.6))
    again = StorePorts(store, FixedClock(AT)).restore(call_id)  # a new process
    assert [t["text"] for t in again.turns] == ["This is Acme Finance.", "1"]


class FakeAMI:
    def __init__(self, live: set[str]):
        self.calls: dict = {}
        self.live = live
        self.connected = asyncio.Event()
        self.connected.set()

    async def close(self) -> None:
        self.connected.clear()

    async def command(self, cmd: str) -> str:
        assert cmd == "core show channels concise"
        return "\n".join(f"PJSIP/carrier-0000{i}!dialer-outbound!bot!2!Up!AGI!x!!!!3!12!!{uid}"
                         for i, uid in enumerate(sorted(self.live)))


def _write_cdr(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """(uniqueid, disposition, userfield) rows in cdr_csv's column order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        for uid, disp, userfield in rows:
            answered = disp == "ANSWERED"
            w.writerow(["", "+12125550199", "bot", "dialer-outbound", "", "PJSIP/carrier-1", "", "Hangup", "",
                        "2026-11-23 16:00:00", "2026-11-23 16:00:03" if answered else "", "2026-11-23 16:00:30",
                        "30", "27" if answered else "0", disp, "DOCUMENTATION", uid, userfield])


def _write_cel(path: Path, rows: list[tuple[str, int | None, bool]]) -> None:
    """(uniqueid, hang-up cause or None while up, answered) rows as cel_custom writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        for uid, cause, answered in rows:
            if answered:
                w.writerow(["ANSWER", "1795453203", uid, ""])
            if cause is not None:
                w.writerow(["HANGUP", "1795453230", uid,
                            json.dumps({"hangupcause": cause, "hangupsource": "", "dialstatus": ""})])


@pytest.fixture()
def crashed(tmp_path):
    """Open attempts a killed daemon left, with what it wrote while they ran, and Asterisk's records."""
    ids = ["RING", "MACH", "EARLY", "UNALLOC", "VERIF", "AMDONLY", "LIVE", "LOST", "LIVEANS"]
    store = _store(tmp_path, ids)
    calls = {d: _place(store, d, answered=d in ("MACH", "EARLY", "VERIF", "AMDONLY", "LIVE")) for d in ids}
    ports = StorePorts(store, FixedClock(AT + timedelta(seconds=5)))
    asyncio.run(ports.record_outcome(calls["MACH"], "machine", {"kind": "machine"}))
    # LIVEANS rang when the daemon died, was answered while none listened (only the CEL saw it), a new
    # daemon's bot took it (a machine) and it is still up
    asyncio.run(ports.record_outcome(calls["LIVEANS"], "machine", {"kind": "machine"}))
    asyncio.run(ports.record_transcript_turn(calls["VERIF"], "agent", "This is Acme Finance. If you are Debtor VERIF, press 1.", 0, 3))
    asyncio.run(ports.record_transcript_turn(calls["VERIF"], "callee", "1", 3, 3))
    asyncio.run(ports.record_transcript_turn(calls["VERIF"], "agent", "Please enter your year of birth.", 3, 5))
    asyncio.run(ports.record_transcript_turn(calls["VERIF"], "callee", "[verified]", 8, 8))
    asyncio.run(ports.record_outcome(calls["VERIF"], "verified_no_choice", {"kind": "verified_no_choice", "verified": True}))
    asyncio.run(ports.record_transcript_turn(calls["VERIF"], "agent", "Thank you. We are calling about your Acme Finance account, which has a balance of 100 dollars and is 10 days past due. Press 1 to promise payment today, or 2 to speak to a collector.", 9, 20))
    # EARLY: the callee hung up before verification (written by the bot as it happened)
    asyncio.run(ports.record_outcome(calls["EARLY"], "no_verification", {"kind": "no_verification", "hangup": "callee", "heard_greeting": False}))
    cdr = tmp_path / "pbx" / "log" / "cdr-csv" / "Master.csv"
    _write_cdr(cdr, [(calls["RING"], "FAILED", ""), (calls["MACH"], "ANSWERED", calls["MACH"]),
                     (calls["EARLY"], "ANSWERED", calls["EARLY"]), (calls["UNALLOC"], "FAILED", ""),
                     (calls["VERIF"], "ANSWERED", calls["VERIF"]),
                     (calls["AMDONLY"], "ANSWERED", f"{calls['AMDONLY']} amd=MACHINE")])
    _write_cel(cdr.parent.parent / "cel-custom" / "Master.csv",
               [(calls["RING"], 0, False), (calls["MACH"], 16, True), (calls["EARLY"], 16, True),
                (calls["UNALLOC"], 1, False), (calls["VERIF"], 16, True), (calls["AMDONLY"], 16, True),
                (calls["LIVEANS"], None, True)])
    return store, calls, cdr


def test_restart_settles_each_call_as_a_clean_run_would(crashed):
    store, calls, cdr = crashed
    pbx = PbxConnection(ami_port=0, ami_user="x", ami_secret="x", agi_port=0, agi_token="t", cdr_path=str(cdr))

    async def scenario():
        clock = FixedClock(AT + timedelta(minutes=2))
        dialer = Dialer(store, pbx, RULES, [CAMP], clock=clock, tts=object())
        dialer.ami = FakeAMI({calls["LIVE"], calls["LIVEANS"]})
        found = await dialer.reconcile()
        assert found == len(calls)
        # the live call is adopted, not guessed at: followed until it ends, while others are settled
        assert calls["LIVE"] in dialer.calls and calls["LIVE"] in dialer.ami.calls
        for _ in range(200):
            if not dialer._recovering:
                break
            await asyncio.sleep(0.05)
        assert core.get_attempt(store, calls["LIVE"])["state"] == "answered"
        for live in ("LIVE", "LIVEANS"):  # AMI: the live calls' Hangup, classified as the controller does
            tracked = dialer.ami.calls.pop(calls[live])
            tracked.hangup_cause = 16
            tracked.finish(classify(tracked.answered, None, 16))
        for _ in range(100):
            if calls["LIVE"] not in dialer.calls and calls["LIVEANS"] not in dialer.calls:
                break
            await asyncio.sleep(0.05)
        await dialer.stop()
        return dialer.stats

    stats = asyncio.run(scenario())
    got = {d: core.get_attempt(store, c) for d, c in calls.items()}
    assert {d: r["outcome"] for d, r in got.items()} == {
        "RING": "no_answer", "MACH": "machine", "EARLY": "callee_hangup", "UNALLOC": "unallocated",
        "VERIF": "answered", "AMDONLY": "machine", "LIVE": "answered", "LOST": "unknown", "LIVEANS": "machine"}
    assert all(r["state"] in ("ended", "unknown") for r in got.values())
    assert got["MACH"]["machine"] == 1 and got["AMDONLY"]["machine"] == 1
    assert got["VERIF"]["conversation"] == 1 and got["VERIF"]["disposition"] == "verified_no_choice"
    assert got["RING"]["hangup_cause"] == 0 and got["UNALLOC"]["hangup_cause"] == 1
    unalloc = core.get_debtor(store, "UNALLOC")["phones"][0]
    assert unalloc["status"] == "unallocated"
    # the recovered answered call has its transcript and its QA result
    result = latest_result(store, calls["VERIF"])
    assert result is not None
    assert got["LIVEANS"]["answered_at"] is not None
    assert stats.reconciled == len(calls) and stats.adopted == 2


def test_a_queue_that_gave_up_while_no_daemon_ran_is_abandoned(tmp_path):
    """Collector mode: the queue gave up on the caller (no collector in time) after the daemon died; the
    dialplan's tag in the CDR userfield still makes the call abandoned, as a clean run would."""
    text = (REPO / "campaigns" / "en_demo.yaml").read_text().replace("dial_mode: bot_only", "dial_mode: progressive")
    (tmp_path / "prog.yaml").write_text(text)
    camp = load_campaign(tmp_path / "prog.yaml")
    store = _store(tmp_path, ["Q1"])
    core.upsert_campaign(store, camp)
    call_id = _place(store, "Q1", answered=True)
    cdr = tmp_path / "pbx" / "log" / "cdr-csv" / "Master.csv"
    _write_cdr(cdr, [(call_id, "ANSWERED", f"{call_id} amd=HUMAN queue=TIMEOUT")])
    _write_cel(cdr.parent.parent / "cel-custom" / "Master.csv", [(call_id, 16, True)])
    pbx = PbxConnection(ami_port=0, ami_user="x", ami_secret="x", agi_port=0, agi_token="t", cdr_path=str(cdr),
                        members=("agent1",))

    async def scenario():
        dialer = Dialer(store, pbx, RULES, [camp], clock=FixedClock(AT + timedelta(minutes=2)), tts=object())
        dialer.ami = FakeAMI(set())
        await dialer.reconcile()
        for _ in range(200):
            if not dialer._recovering:
                break
            await asyncio.sleep(0.05)
        await dialer.stop()

    asyncio.run(scenario())
    row = core.get_attempt(store, call_id)
    assert (row["outcome"], row["abandoned"]) == ("abandoned", 1)
