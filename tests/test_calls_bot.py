"""The daemon's voice bot over the store: the promise date a key press chooses is the debtor's local date,
not the machine's (UTC) date."""
from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from agi.server import AGIRequest
from common.clock import FixedClock
from dialer.calls.bot import Bots
from dialer.calls.ports import StorePorts
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.store import Store, core
from tests.test_callflow import FakeChannel, FakeTTS
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CAMPAIGN = """name: ny
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 2
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def test_pay_today_at_8pm_in_new_york_is_new_yorks_today(tmp_path):
    at = datetime(2026, 3, 10, 20, 0, tzinfo=ZoneInfo("America/New_York"))  # 01:00 UTC on 11 March
    clock = FixedClock(at)
    store = Store(tmp_path / "dialer.db")
    (tmp_path / "ny.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp_path / "ny.yaml")
    core.upsert_campaign(store, camp)
    (tmp_path / "ny.csv").write_text(HEADER + "N1,Dana Reyes,+12125550150,1234,1984,ACC-N1,500.00,USD,12,"
                                              "2026-03-01,America/New_York,first,en,\n")
    core.import_debtors(store, read_debtors_csv(tmp_path / "ny.csv"), "ny")
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="ny-1", debtor_id="N1", account_id="ACC-N1", campaign="ny",
                            phone="+12125550150", placed_at=clock.timestamp())
    bots = Bots(StorePorts(store, clock), clock, FakeTTS())
    flow = bots.flow_for_script(camp, "m1_reminder_en")
    channel = FakeChannel(["1", "1984", "1"])  # it's me, my year of birth, "1": I will pay today (+0d)
    asyncio.run(flow(AGIRequest("/call", {"call": "ny-1"}, {}), channel))
    promises = core.promises_for(store, call_id="ny-1")
    assert [p["due_date"] for p in promises] == ["2026-03-10"]
