"""The escalation plan through real Asterisk: `dialer run` with a simulated clock. On an SMS-stage day the daemon
writes the SMS task to the outbox and places no call; on a bot-stage day it places the bot call through the PBX
and the carrier simulator; on a collector-stage day the answered debtor reaches a collector's phone; after a
cease request it does nothing on any channel."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.store import Store, core
from dialer.store import escalation as esc_store
from dialer.store.outbox import outbox_events
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
NY = ZoneInfo("America/New_York")
DUE = datetime(2026, 11, 30, tzinfo=NY)
CAMPAIGN = """name: esc_e2e
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: progressive
line_limit: 2
retry: {busy: 30m, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - name: all
    dpd: 0+
    script: dtmf_verify
    escalation:
      - {stage: reminder, dpd: 1-3, action: sms, template: m1_sms}
      - {stage: bot, dpd: 4-15, action: bot_call}
      - {stage: collector, dpd: 16+, action: collector_call}
"""
CSV = """debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,timezone,customer_type,lang,contacts
X001,Xia Escalate,+12125550171,1234,1980,ACC-X1,250.00,USD,0,2026-11-30,America/New_York,first,en,
"""


def _run(db: Path, run_dir: Path, at: datetime) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "dialer.cli", "run", "--db", str(db), "--run-dir", str(run_dir), "--at", at.isoformat(),
         "--until-idle", "--max-seconds", "60", "--grace", "20", "--campaign", "esc_e2e", "--no-web"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sms_task_then_bot_call_then_collector_call_through_the_pbx_then_nothing_after_cease(tmp_path: Path):
    (tmp_path / "esc_e2e.yaml").write_text(CAMPAIGN)
    (tmp_path / "d.csv").write_text(CSV)
    db = tmp_path / "dialer.db"
    store = Store(db)
    camp = load_campaign(tmp_path / "esc_e2e.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), camp.name)
    harness = Harness(tmp_path / "run", agents=1,
                      behaviours=behaviours_from_dict({"+12125550171": {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                                                                      "hangup_after": 8}}))
    harness.up()
    try:
        # day 2 past due, 10:00 in New York: the SMS stage → one task in the outbox, no call
        day2 = _run(db, tmp_path / "run", DUE + timedelta(days=2, hours=10))
        assert day2["placed"] == 0
        [sms] = outbox_events(store, kind="contact_task")
        assert (sms["payload"]["channel"], sms["payload"]["to"], sms["payload"]["days_past_due"]) == \
            ("sms", "+12125550171", 2)
        assert not store.query("SELECT 1 FROM attempts")

        # day 5: the bot stage → the bot call, placed through the PBX to the carrier and answered by the bot; no SMS
        day5 = _run(db, tmp_path / "run", DUE + timedelta(days=5, hours=10))
        assert day5["placed"] == 1
        [bot] = store.query("SELECT * FROM attempts WHERE debtor_id='X001'")
        assert bot["state"] == "ended" and bot["outcome"] in ("answered", "callee_hangup") and bot["agent"] is None
        assert [e for e in core.call_events(store, bot["id"]) if e["kind"] == "outcome"], "the bot never took the call"
        cdr = tmp_path / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv"
        assert [r for r in csv.reader(cdr.open()) if r and r[-1] == bot["id"]], "the carrier never saw the call"
        assert len(outbox_events(store, kind="contact_task")) == 1

        # day 17: the collector stage → the answered debtor goes to the collectors' queue and reaches agent1
        day17 = _run(db, tmp_path / "run", DUE + timedelta(days=17, hours=10))
        assert day17["placed"] == 1
        col = store.query_one("SELECT * FROM attempts WHERE debtor_id='X001' AND id != ?", (bot["id"],))
        assert col["state"] == "ended" and col["agent"] == "agent1", dict(col)
        kinds = {e["kind"] for e in core.call_events(store, col["id"])}
        assert "agent_connect" in kinds and "outcome" not in kinds, kinds  # a collector, and no bot, took it
        assert len(outbox_events(store, kind="contact_task")) == 1

        # a cease request: the next day nothing on any channel
        core.add_contact_request(store, "X001", "cease", {}, (DUE + timedelta(days=17, hours=11)).timestamp(),
                                 "operator")
        day18 = _run(db, tmp_path / "run", DUE + timedelta(days=18, hours=10))
        assert day18["placed"] == 0
        assert len(store.query("SELECT 1 FROM attempts")) == 2
        assert len(outbox_events(store, kind="contact_task")) == 1
        assert [t["status"] for t in esc_store.tasks(store, debtor_id="X001")] == ["queued"]
    finally:
        harness.down()
