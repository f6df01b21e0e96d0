"""Strategy through real Asterisk: the daemon dials in the order of expected recovery per attempt."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.clock import Clock
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.strategy.rank import rank_candidates
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent

CSV = """debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,timezone,customer_type,lang,contacts
S001,Ann Likely,+12125550151,1111,1980,ACC-S1,100.00,USD,10,2026-11-13,America/New_York,first,en,
S002,Bob Big,+12125550152,2222,1981,ACC-S2,5000.00,USD,10,2026-11-13,America/New_York,first,en,
S003,Cat Middle,+12125550153,3333,1982,ACC-S3,1000.00,USD,10,2026-11-13,America/New_York,first,en,
"""
CAMPAIGN = """name: ranked
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 1
retry: {busy: 30m, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - {name: all, dpd: 0+, script: dtmf_verify}
"""


def test_daemon_dials_in_expected_recovery_order(tmp_path):
    at = default_demo_time()
    (tmp_path / "ranked.yaml").write_text(CAMPAIGN)
    (tmp_path / "d.csv").write_text(CSV)
    store = Store(tmp_path / "dialer.db")
    camp = load_campaign(tmp_path / "ranked.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), camp.name)
    for debtor, score in (("S001", 0.9), ("S002", 0.2), ("S003", 0.5)):
        core.set_propensity(store, debtor, score)
    store_order = [c.debtor_id for c in core.due_debtors(store, camp.name, at.timestamp())]
    expected = [r.candidate["debtor_id"] for r in rank_candidates(
        [c.as_dict() for c in core.due_debtors(store, camp.name, at.timestamp())], None, at, {})]
    assert store_order == ["S001", "S003", "S002"]  # by propensity alone
    assert expected != store_order                  # propensity × amount × contact differs

    behaviours = behaviours_from_dict({n: {"busy": True} for n in ("+12125550151", "+12125550152", "+12125550153")})
    harness = Harness(tmp_path / "run", agents=0, behaviours=behaviours)
    state = harness.up()
    try:
        async def run():
            dialer = Dialer(store, state, load_rules(REPO / "compliance_rules.yaml"), [camp], clock=Clock(at))
            await dialer.start()
            try:
                await dialer.run(until_idle=True, max_seconds=60)
            finally:
                await dialer.stop()
        asyncio.run(run())
    finally:
        harness.down()
    placed = [r["debtor_id"] for r in store.query("SELECT debtor_id FROM attempts ORDER BY placed_at")]
    assert placed == expected
    assert [r["outcome"] for r in store.query("SELECT outcome FROM attempts")] == ["busy"] * 3
