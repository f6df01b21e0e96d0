"""Preview dialing through real Asterisk: the collector (a SIPp phone) sees the debtor and the gate's verdict on
`dialer agent watch` before the carrier sees any call; a skip places no call; an accept places exactly one —
the collector's phone first, then the debtor's, bridged; an offer nobody answers expires and pauses the
collector. Each step is driven by the operator's own commands (`dialer agent watch|skip|accept`)."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.chaos import read_carrier_cdr
from common.clock import Clock
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store import audit as audit_log
from dialer.store.agents import agent_states
from dialer.store.preview import offers
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
# store order: V01 (offered first, skipped), V02 (accepted, called), V03 (offered, nobody answers the screen)
DEBTORS = {"V01": ("+12125550401", 80), "V02": ("+12125550402", 70), "V03": ("+12125550403", 65)}
BOT = {"B01": ("+12125550410", 12)}  # an M1 bot segment in the same campaign: the bot calls them meanwhile

CAMPAIGN = """name: prev
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 4
preview_seconds: 6
retry: {busy: 2h, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
  - name: late
    dpd: 61+
    script: m1_reminder_en
    dial_mode: preview
"""


def _row(did: str, phone: str, dpd: int) -> str:
    return (f"{did},Debtor {did},{phone},1234,1980,ACC-{did},500.00,USD,{dpd},,America/New_York,first,en,\n")


async def _cli(db: Path, *args: str) -> tuple[int, str, float]:
    """Run `dialer ARGS --db DB` as an operator would; (exit code, stdout, wall time it finished)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer.cli", *args, "--db", str(db), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode() + err.decode(), time.time()


@pytest.fixture(scope="module")
def preview_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preview")
    at = default_demo_time()
    text = (REPO / "compliance_rules.yaml").read_text()
    (tmp / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {prev: {profile: us, abandon: {wrap_up_seconds: 2}}}"))
    rules = load_rules(tmp / "rules.yaml")
    db = tmp / "dialer.db"
    store = Store(db)
    (tmp / "prev.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp / "prev.yaml")
    core.upsert_campaign(store, camp)
    (tmp / "prev.csv").write_text(HEADER + "".join(_row(d, p, n) for d, (p, n) in {**DEBTORS, **BOT}.items()))
    core.import_debtors(store, read_debtors_csv(tmp / "prev.csv"), "prev")
    behaviours = {p: {"answer_after": 2, "then": "speak", "audio": "hello.wav", "hangup_after": 6}
                  for p, _ in DEBTORS.values()}
    behaviours[BOT["B01"][0]] = {"busy": True}
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours_from_dict(behaviours))
    state = harness.up()
    out: dict = {"steps": []}

    async def scenario(dialer: Dialer) -> None:
        steps = out["steps"]
        code, text, t_watch = await _cli(db, "agent", "watch", "agent1", "--once", "--json", "--timeout", "20")
        steps.append(("watch1", code, text, t_watch, [dict(r) for r in store.query(
            "SELECT id, debtor_id FROM attempts WHERE debtor_id LIKE 'V%'")]))
        code, text, _ = await _cli(db, "agent", "skip", "agent1", "--reason", "disputed by letter yesterday")
        steps.append(("skip", code, text))
        code, text, t_watch = await _cli(db, "agent", "watch", "agent1", "--once", "--json", "--timeout", "20")
        steps.append(("watch2", code, text, t_watch, [dict(r) for r in store.query(
            "SELECT id, debtor_id FROM attempts WHERE debtor_id LIKE 'V%'")]))
        code, text, _ = await _cli(db, "agent", "accept", "agent1")
        steps.append(("accept", code, text))
        # the call: collector's phone, then the debtor's (answers after 2 s, hangs up 6 s later), wrap-up 2 s
        code, text, _ = await _cli(db, "agent", "watch", "agent1", "--once", "--json", "--timeout", "45")
        steps.append(("watch3", code, text))
        await asyncio.sleep(camp.preview_seconds + 2.5)  # nobody answers the third offer
        dialer.request_stop()

    async def run() -> None:
        dialer = Dialer(store, state, rules, [camp], clock=Clock(at))
        await dialer.start()
        try:
            task = asyncio.ensure_future(scenario(dialer))
            await dialer.run(max_seconds=110, grace=20)
            await asyncio.wait_for(task, 5)
            out["stats"] = dialer.stats
        finally:
            await dialer.stop()

    try:
        asyncio.run(run())
    finally:
        harness.down()
    carrier = read_carrier_cdr(tmp / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv")
    return {"store": store, "out": out, "carrier": carrier, "db": db}


def _step(run, name):
    return next(s for s in run["out"]["steps"] if s[0] == name)


def test_the_watch_shows_the_debtor_and_the_gates_verdict_before_any_call(preview_run):
    _, code, text, t_watch, attempts = _step(preview_run, "watch1")
    assert code == 0, text
    pop = json.loads(text.strip().splitlines()[0])
    assert pop["debtor_id"] == "V01" and pop["context"]["preview"]["campaign"] == "prev"
    assert pop["context"]["gate"]["allowed"] is True and pop["context"]["amount_owed"] == "500.00"
    assert "America/New_York" in pop["context"]["gate"]["local_times"]
    assert attempts == []  # no attempt, so nothing dialled: the gate records every attempt before a dial
    for row in preview_run["carrier"]:  # and the carrier's own record: its only preview call came after
        if row["dst"] in {p for p, _ in DEBTORS.values()}:
            # the carrier writes its CDR times in UTC (usegmtime=yes): read them as UTC, whatever TZ the test has
            start = datetime.strptime(row["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
            assert start >= t_watch - 1.0, (row, t_watch)


def test_a_skip_places_no_call_and_offers_the_next_debtor(preview_run):
    store = preview_run["store"]
    assert _step(preview_run, "skip")[1] == 0, _step(preview_run, "skip")[2]
    _, code, text, _, attempts = _step(preview_run, "watch2")
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[0])["debtor_id"] == "V02"
    assert attempts == []
    assert not store.query("SELECT 1 FROM attempts WHERE debtor_id='V01'")
    skipped = [o for o in offers(store) if o["debtor_id"] == "V01"]
    assert [o["state"] for o in skipped] == ["skipped"] and skipped[0]["reason"] == "disputed by letter yesterday"
    assert any(e["kind"] == "preview.skipped" for e in audit_log.audit_entries(store, subject="V01"))


def test_an_accept_places_exactly_one_call_collector_first_through_the_gate(preview_run):
    store, carrier = preview_run["store"], preview_run["carrier"]
    assert _step(preview_run, "accept")[1] == 0, _step(preview_run, "accept")[2]
    rows = store.query("SELECT * FROM attempts WHERE debtor_id LIKE 'V%'")
    assert [r["debtor_id"] for r in rows] == ["V02"]
    r = rows[0]
    assert r["state"] == "ended" and r["outcome"] == "answered" and r["agent"] == "agent1", dict(r)
    assert r["answered_at"] is not None and not r["abandoned"]
    kinds = [e["kind"] for e in core.call_events(store, r["id"])]
    assert "agent_connect" in kinds
    assert any(e["subject"] == r["id"] for e in audit_log.audit_entries(store, kind="attempt.placed"))
    # the carrier saw exactly one preview call, and it is that attempt
    dialled = [c for c in carrier if c["dst"] in {p for p, _ in DEBTORS.values()}]
    assert len(dialled) == 1 and dialled[0]["userfield"] == r["id"], dialled
    offer = next(o for o in offers(store) if o["debtor_id"] == "V02")
    assert offer["state"] == "done" and offer["call_id"] == r["id"]


def test_an_unanswered_offer_expires_places_nothing_and_pauses_the_collector(preview_run):
    store = preview_run["store"]
    _, code, text = _step(preview_run, "watch3")
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[0])["debtor_id"] == "V03"
    assert not store.query("SELECT 1 FROM attempts WHERE debtor_id='V03'")
    assert [o["state"] for o in offers(store) if o["debtor_id"] == "V03"] == ["expired"]
    assert agent_states(store)["agent1"]["state"] == "paused"


def test_bot_segments_of_the_same_campaign_are_dialled_meanwhile(preview_run):
    rows = preview_run["store"].query("SELECT * FROM attempts WHERE debtor_id='B01'")
    assert rows and rows[0]["outcome"] == "busy"
