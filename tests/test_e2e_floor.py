"""A predictive campaign of 30 simulated debtors with 3 SIPp collectors, through real Asterisk: people who answer
(some hang up during their greeting), busy lines, no answers and answering machines. Every person who finishes
their greeting reaches a collector or hears the information message within 2 s of its end; machines are left
the campaign's compliant message (amd_policy: message); every debtor's call is settled and every call a
collector took has a disposition (entered by the collector, or `not_entered` when the wrap-up ran out); the
abandon figures `dialer report` prints equal those counted from the carrier's own recordings."""
from __future__ import annotations

import asyncio
import json
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi.media.tts import TTS
from bench.chaos import read_carrier_cdr
from common.clock import Clock
from common.wav import active_seconds
from dialer.calls.collectors import DispositionError, enter_disposition
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store.dispositions import disposition_for
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
COLLECTORS = 3
HUMAN_TALK = 20  # seconds after answer a person hangs up (a call the PBX ends first was abandoned)
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
KINDS = (["human"] * 16 + ["busy"] * 4 + ["no_answer"] * 4 + ["machine"] * 3 + ["greeting_hangup"] * 3)
ORDER = [0, 1, 2, 3, 16, 4, 5, 24, 6, 7, 20, 8, 27, 9, 10, 17, 11, 12, 25, 13, 21, 14, 15, 18, 28, 26, 22, 19, 29, 23]
DEBTORS = {f"F{i:02d}": (f"+121255508{i:02d}", KINDS[k]) for i, k in enumerate(ORDER)}
HISTORY_ANSWERED = 100

CAMPAIGN = """name: floor
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: predictive
amd_policy: message
line_limit: 9
retry: {busy: 2h, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def _behaviour(kind: str, i: int) -> dict:
    if kind == "human":
        return {"answer_after": 1 + i % 3, "then": "speak", "audio": "hello.wav", "hangup_after": HUMAN_TALK}
    if kind == "greeting_hangup":
        return {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 1}
    if kind == "machine":
        return {"answer_after": 2, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 40}
    return {kind: True}


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture(scope="module")
def floor_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("floor")
    at = default_demo_time()
    text = (REPO / "compliance_rules.yaml").read_text()
    (tmp / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {floor: {profile: us, abandon: {wrap_up_seconds: 2}}}"))
    rules = load_rules(tmp / "rules.yaml")
    store = Store(tmp / "dialer.db")
    (tmp / "floor.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp / "floor.yaml")
    core.upsert_campaign(store, camp)
    (tmp / "floor.csv").write_text(HEADER + "".join(
        f"{d},Debtor {d},{p},1234,1980,ACC-{d},500.00,USD,12,,America/New_York,first,en,\n"
        for d, (p, _) in DEBTORS.items()))
    core.import_debtors(store, read_debtors_csv(tmp / "floor.csv"), "floor")
    # earlier today: 100 answered calls, none abandoned (the 3 % budget lets the pacer over-dial)
    (tmp / "hist.csv").write_text(HEADER + "H000,H,+12125550999,1234,1980,ACC-H000,5.00,USD,12,,America/New_York,"
                                           "first,en,\n")
    core.import_debtors(store, read_debtors_csv(tmp / "hist.csv"), "floor")
    t0 = at.timestamp() - 3 * 3600
    for i in range(HISTORY_ANSWERED):
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=f"hist-{i}", debtor_id="H000", account_id="ACC-H000", campaign="floor",
                                phone="+12125550999", placed_at=t0 + i)
        core.update_attempt(store, f"hist-{i}", state="ended", outcome="answered", answered_at=t0 + i + 5,
                            ended_at=t0 + i + 60, at=t0 + i + 60)
    core.set_debtor_status(store, "H000", "done", at=t0)
    harness = Harness(tmp / "run", agents=COLLECTORS,
                      behaviours=behaviours_from_dict({p: _behaviour(k, i) for i, (p, k) in
                                                       enumerate(DEBTORS.values())}))
    state = harness.up()
    out: dict = {"entered": {}}

    async def collectors_at_work(dialer: Dialer) -> None:
        """The first three calls a collector takes get a disposition during the call; the rest run out."""
        plan = [("promise", {"amount": "150.00", "date_text": (at + timedelta(days=7)).date().isoformat()}),
                ("refusal", {}), ("hardship", {"note": "lost job"})]
        while plan:
            for r in store.query("SELECT id, agent FROM attempts WHERE campaign='floor' AND agent IS NOT NULL"
                                 " AND state='answered'"):
                if r["id"] in out["entered"] or not plan:
                    continue
                outcome, kw = plan[0]
                try:
                    got = enter_disposition(store, r["agent"], outcome, at=dialer.clock.timestamp(), **kw)
                except DispositionError:
                    continue
                out["entered"][got["call_id"]] = outcome
                plan.pop(0)
            await asyncio.sleep(0.3)

    async def run() -> None:
        dialer = Dialer(store, state, rules, [camp], clock=Clock(at), tts=TTS(), collector_modes=True)
        await dialer.start()
        try:
            worker = asyncio.ensure_future(collectors_at_work(dialer))
            await dialer.run(until_idle=True, max_seconds=200, grace=30)
            worker.cancel()
            out["stats"] = dialer.stats
            out["info"] = dialer.info["floor"]
        finally:
            await dialer.stop()

    try:
        asyncio.run(run())
    finally:
        harness.down()
    res = CliRunner().invoke(main, ["report", "--db", str(tmp / "dialer.db"), "--json", "--campaign", "floor"])
    assert res.exit_code == 0, res.output
    return {"store": store, "harness": harness, "out": out, "report": json.loads(res.output),
            "carrier": read_carrier_cdr(tmp / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv")}


def _rows(store):
    return {r["debtor_id"]: dict(r) for r in store.query(
        "SELECT * FROM attempts WHERE campaign='floor' AND id NOT LIKE 'hist-%' ORDER BY placed_at")}


def _event(store, call_id, kind):
    return next((e for e in core.call_events(store, call_id) if e["kind"] == kind), None)


def test_every_person_reaches_a_collector_or_hears_the_message_within_2_s(floor_run):
    store, harness = floor_run["store"], floor_run["harness"]
    rows = _rows(store)
    assert set(rows) == set(DEBTORS), set(DEBTORS) - set(rows)  # every debtor dialled once
    info_len = active_seconds(Path(floor_run["out"]["info"] + ".wav"))
    connected = informed = 0
    for d, (phone, kind) in DEBTORS.items():
        if kind != "human":
            continue
        r = rows[d]
        greeting = _event(store, r["id"], "greeting_end")
        assert greeting is not None, r
        if r["agent"]:
            connect = _event(store, r["id"], "agent_connect")
            assert bool(r["abandoned"]) == (connect["at"] - greeting["at"] > 2.0)
            connected += 1
        else:
            gave_up = _event(store, r["id"], "queue_result")
            assert gave_up["at"] - greeting["at"] <= 2.5 and _event(store, r["id"], "info_played"), r
            heard = active_seconds(harness.recording_for(phone, r["id"]))
            assert heard >= info_len - 0.5, (d, heard, info_len)
            assert r["abandoned"] == 1
            informed += 1
    assert connected >= COLLECTORS and connected + informed == KINDS.count("human")


def test_machines_are_left_the_compliant_message(floor_run):
    store, harness = floor_run["store"], floor_run["harness"]
    rows = _rows(store)
    info_len = active_seconds(Path(floor_run["out"]["info"] + ".wav"))
    for d, (phone, kind) in DEBTORS.items():
        if kind != "machine":
            continue
        r = rows[d]
        assert r["outcome"] == "machine" and r["agent"] is None and not r["abandoned"], r
        msg = _event(store, r["id"], "machine_message")
        assert msg is not None and msg["data"]["complete"], r
        heard = active_seconds(harness.recording_for(phone, r["id"]))
        assert heard >= info_len - 0.5, (d, heard, info_len)


def test_every_debtor_ends_with_a_disposition(floor_run):
    store = floor_run["store"]
    rows = _rows(store)
    expected = {"busy": {"busy"}, "no_answer": {"no_answer"}, "machine": {"machine"},
                "greeting_hangup": {"callee_hangup", "answered"}, "human": {"answered", "abandoned"}}
    for d, (_, kind) in DEBTORS.items():
        r = rows[d]
        assert r["state"] == "ended" and r["outcome"] in expected[kind], (d, kind, r["outcome"])
        if r["agent"]:  # a collector took it: their disposition, or not_entered when the wrap-up ran out
            dispo = disposition_for(store, r["id"])
            assert dispo is not None, r
            want = floor_run["out"]["entered"].get(r["id"], "not_entered")
            assert dispo["outcome"] == want and r["disposition"] == (None if want == "not_entered" else want)
    assert len(floor_run["out"]["entered"]) == 3
    [promise] = [p for p in core.promises_for(store) if p["call_id"] in floor_run["out"]["entered"]]
    assert promise["amount"] == "150.00" and promise["status"] == "open"
    collectors = floor_run["report"]["collectors"]
    assert sum(sum(c.values()) for c in collectors.values()) == sum(1 for r in rows.values() if r["agent"])


def test_reported_abandon_rate_equals_the_carrier_side_count(floor_run):
    """The carrier's own records: a person the PBX hung up on before they hung up themselves (the carrier's
    CDR shows a call shorter than their talk time) was abandoned — they heard the message (first test)."""
    harness, store = floor_run["harness"], floor_run["store"]
    rows = _rows(store)
    carrier = {c["userfield"]: c for c in floor_run["carrier"]}
    answered = abandoned = 0
    seen = []
    for d, (phone, kind) in DEBTORS.items():
        r = rows[d]
        assert r["id"] in carrier  # the carrier saw every call the store holds
        if kind not in ("human", "greeting_hangup"):
            continue
        answered += 1
        billsec = float(carrier[r["id"]]["billsec"] or 0)
        short = kind == "human" and billsec < HUMAN_TALK - 1.5
        abandoned += short
        seen.append((d, kind, billsec, round(_wav_seconds(harness.recording_for(phone, r["id"])), 1),
                     r["abandoned"], r["agent"]))
    w = floor_run["report"]["abandon_window"]
    assert w["abandoned"] == abandoned, seen
    assert w["answered"] == HISTORY_ANSWERED + answered
    assert w["rate"] == round(abandoned / (HISTORY_ANSWERED + answered), 4)
    assert w["limit"] == 0.03 and w["worst_hour"]["abandoned"] == abandoned
