"""Abandon accounting per profile: the window's rate against the limit and the worst rolling hour, in
`dialer report` (text and --json), counted from the attempts a person answered (machines excluded)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from dialer.campaign.config import load_campaign_text
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.pacing.floor import abandon_figures
from dialer.store import Store, core
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]


def test_worst_rolling_hour_is_found_between_calls():
    # 10 answered calls spread over 3 hours; the 3 abandoned ones fall within 50 minutes in the second hour
    calls = [(0.0, False), (1800.0, False), (3600.0, False), (4000.0, True), (5000.0, True), (6900.0, True),
             (7300.0, False), (9000.0, False), (10000.0, False), (10700.0, False)]
    f = abandon_figures(calls, "calendar_day", 0.03)
    assert f.answered == 10 and f.abandoned == 3 and f.rate == 0.3
    assert f.worst_hour_start == 3600.0 and (f.worst_hour_abandoned, f.worst_hour_answered) == (3, 4)
    assert f.as_dict()["over_limit"] is True
    assert abandon_figures([], "calendar_day", 0.03).rate is None


CAMPAIGN = """name: ab
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: predictive
line_limit: 4
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def test_report_shows_the_window_rate_against_the_limit_and_the_worst_hour(tmp_path: Path):
    db = tmp_path / "d.db"
    store = Store(db)
    core.upsert_campaign(store, load_campaign_text(CAMPAIGN, "ab.yaml", scripts_dir=REPO / "campaigns/scripts"))
    (tmp_path / "d.csv").write_text(
        "debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
        "timezone,customer_type,lang,contacts\nA1,A,+12125550700,1234,1980,ACC-A1,10.00,USD,12,,"
        "America/New_York,first,en,\n")
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), "ab")
    t0 = datetime(2026, 12, 1, 14, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    for i in range(40):  # 40 answered by a person over 4 hours, 2 abandoned in the same hour, and 5 machines
        cid = f"ab-{i}"
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=cid, debtor_id="A1", account_id="ACC-A1", campaign="ab",
                                phone="+12125550700", placed_at=t0 + i * 360)
        core.update_attempt(store, cid, state="ended", outcome="abandoned" if i in (11, 13) else "answered",
                            answered_at=t0 + i * 360 + 5, abandoned=i in (11, 13), ended_at=t0 + i * 360 + 60,
                            at=t0 + i * 360 + 60)
    for i in range(5):
        cid = f"ab-m{i}"
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=cid, debtor_id="A1", account_id="ACC-A1", campaign="ab",
                                phone="+12125550700", placed_at=t0 + i * 100 + 50)
        core.update_attempt(store, cid, state="ended", outcome="machine", machine=True, answered_at=t0 + i * 100 + 55,
                            ended_at=t0 + i * 100 + 70, at=t0 + i * 100 + 70)
    store.close()
    until = datetime(2026, 12, 1, 23, 0, tzinfo=ZoneInfo("UTC")).isoformat()
    res = CliRunner().invoke(main, ["report", "--db", str(db), "--json", "--until", until])
    assert res.exit_code == 0, res.output
    w = json.loads(res.output)["abandon_window"]
    assert w["window"] == "rolling_30_days" and w["limit"] == 0.03  # the US profile: 30 days per campaign
    assert (w["abandoned"], w["answered"]) == (2, 40) and w["rate"] == 0.05 and w["over_limit"] is True
    assert w["worst_hour"]["abandoned"] == 2 and w["worst_hour"]["answered"] == 10
    res = CliRunner().invoke(main, ["report", "--db", str(db), "--until", until])
    assert "abandon window (rolling_30_days): 2 of 40 answered = 5.0% against limit 3.0%  OVER THE LIMIT" in res.output
    assert "worst rolling hour 20.0% (2 of 10)" in res.output


def test_a_calendar_day_window_is_the_utc_day_whatever_the_machines_time_zone(tmp_path: Path, monkeypatch):
    """The pacer and the wallboard count a calendar-day profile's abandons from 00:00 UTC; so does the report,
    also on a machine set to Shanghai time (where the local day began at 16:00 UTC the day before)."""
    import time

    db = tmp_path / "d.db"
    store = Store(db)
    core.upsert_campaign(store, load_campaign_text(
        (REPO / "campaigns" / "zh_demo.yaml").read_text(encoding="utf-8"), "zh_demo.yaml",
        scripts_dir=REPO / "campaigns/scripts"))
    name = store.query("SELECT name FROM campaigns")[0]["name"]
    store.close()
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        res = CliRunner().invoke(main, ["report", "--db", str(db), "--json", "--campaign", name,
                                        "--until", "2026-12-01T23:00:00+00:00"])
    finally:
        monkeypatch.undo()  # TZ as it was
        time.tzset()
    assert res.exit_code == 0, res.output
    w = json.loads(res.output)["abandon_window"]
    assert w["window"] == "calendar_day"
    assert w["since"] == datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC")).timestamp()
