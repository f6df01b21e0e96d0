"""`dialer report`: the figures a collections manager reads, computed from the store."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv, read_payments_csv
from dialer.cli import main
from dialer.cli.report import campaign_report
from dialer.gate.account import take_attempt
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent
NY = ZoneInfo("America/New_York")


def test_report_figures(tmp_path):
    store = Store(tmp_path / "d.db")
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(REPO / "campaigns" / "examples" / "demo_debtors.csv"), camp.name)
    rules = load_rules(REPO / "compliance_rules.yaml")
    at = datetime(2026, 11, 24, 10, 0, tzinfo=NY)
    outcomes = {"D001": ("answered", True, "promise"), "D002": ("busy", False, None),
                "D003": ("no_answer", False, None), "D004": ("answered", True, "refused"),
                "D005": ("machine", False, "machine")}
    for debtor, (outcome, rpc, disp) in outcomes.items():
        acct = core.get_debtor(store, debtor)["accounts"][0]["account_id"]
        d = take_attempt(store, call_id=f"c-{debtor}", debtor_id=debtor, account_id=acct, campaign=camp.name,
                         phone=None, rules=rules, now=at)
        assert d.allowed
        core.update_attempt(store, f"c-{debtor}", state="ended", outcome=outcome, conversation=rpc,
                            machine=outcome == "machine", disposition=disp,
                            answered_at=at.timestamp() if outcome in ("answered", "machine") else None)
    core.record_promise(store, "c-D001", "D001", "ACC-1001", "1250.00", "2026-11-25", at.timestamp())
    pay = tmp_path / "p.csv"
    pay.write_text("account_id,paid_at,amount,currency,reference\nACC-1001,2026-11-25,1250.00,USD,R1\n")
    core.import_payments(store, read_payments_csv(pay))
    night = datetime(2026, 11, 24, 22, 30, tzinfo=NY)  # outside 08:00-21:00: the gate blocks
    assert not take_attempt(store, call_id="c-night", debtor_id="D006", account_id="ACC-1006", campaign=camp.name,
                            phone=None, rules=rules, now=night).allowed

    r = campaign_report(store, camp.name)
    assert (r["dials"], r["answered"], r["machines"], r["right_party_contacts"]) == (5, 3, 1, 2)
    assert r["contact_rate"] == 0.6 and r["ptp_rate"] == 0.5
    assert r["promises"] == 1 and r["promises_kept"] == 1 and r["paid_amount"] == "1250.00"
    assert abs(r["recovery_rate"] - 1250 / 23857.84) < 1e-9
    assert r["gate_blocks"] == {"time.window": 1}
    assert r["abandon_rate"] == 0.0

    out = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "d.db"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.splitlines()[0])["dials"] == 5
    bad = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "d.db"), "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
