"""End to end through real Asterisk: debtors in different time zones, the daemon started with --at; the
carrier hears only the debtors inside their window and under their cap; every block is stored with its rule.
The end-to-end test runs with the store on SQLite and on PostgreSQL (tests/engines.py)."""
from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from common.yamlfile import ConfigError
from tests.engines import both_engines

REPO = Path(__file__).resolve().parent.parent
AT = datetime.fromisoformat("2026-12-01T15:00:00+00:00")  # Tue: 10:00 New York, 09:00 Chicago, 07:00 LA, 05:00 Honolulu
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
DEBTORS = {  # id: (phone, record zone, expected)
    "E1": ("+12125550131", "America/New_York", "called"),
    "E2": ("+13125550132", "America/Chicago", "called"),
    "E3": ("+13105550133", "America/Los_Angeles", "time.window"),
    "E4": ("+18085550134", "Pacific/Honolulu", "time.window"),
    "E5": ("+12125550135", "America/Los_Angeles", "time.window"),  # record zone disagrees with the number
    "E6": ("+12125550136", "America/New_York", "cap.daily"),  # three attempts earlier today
    "E7": ("+12085550137", "", "time.window"),  # area code 208: Boise 08:00 but Los Angeles 07:00
}


def test_daemon_inputs_refuse_an_invalid_rules_file(tmp_path):
    from dialer.cli.run import load_daemon_inputs
    from dialer.store import Store

    bad = tmp_path / "rules.yaml"
    text = (REPO / "compliance_rules.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace('window: {start: "08:00", end: "21:00"}', 'window: {start: "08:00", end: "25:00"}', 1),
                   encoding="utf-8")
    store = Store(tmp_path / "d.db")
    with pytest.raises(ConfigError, match=r"rules.yaml:\d+: profiles.cn.gate.window.end: '25:00'"):
        load_daemon_inputs(store, (), bad)
    store.close()


@pytest.mark.asterisk
@both_engines
def test_carrier_sees_only_debtors_inside_their_window_and_cap(tmp_path):
    from common.clock import Clock
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.cli.run import load_daemon_inputs, run_daemon
    from dialer.store import Store, core
    from dialer.store.gate import gate_blocks
    from dialer.telephony.harness import Harness

    store = Store(tmp_path / "dialer.db")
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    csv = HEADER + "".join(f"{d},Debtor {d},{p},1234,1980,A-{d},100.00,USD,12,2026-11-11,{tz},first,en,\n"
                           for d, (p, tz, _) in DEBTORS.items())
    core.import_debtors(store, read_debtors_csv("debtors.csv", csv), camp.name)
    for k, hhmm in enumerate(("08:00", "08:30", "09:15")):  # E6: three attempts already today (New York)
        placed = datetime.fromisoformat(f"2026-12-01T{hhmm}:00-05:00").timestamp()
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=f"early-{k}", debtor_id="E6", account_id="A-E6", campaign=camp.name,
                                phone=DEBTORS["E6"][0], placed_at=placed)
        core.update_attempt(store, f"early-{k}", state="ended", outcome="no_answer", ended_at=placed + 30, at=placed + 30)
    behaviours = tmp_path / "behaviours.yaml"
    behaviours.write_text("".join(f'"{p}": {{answer_after: 1, then: silent, hangup_after: 2}}\n'
                                  for p, _, _ in DEBTORS.values()), encoding="utf-8")
    harness = Harness(tmp_path / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    try:
        rules, camps = load_daemon_inputs(store, (camp.name,), REPO / "compliance_rules.yaml")
        asyncio.run(run_daemon(store, state, rules, camps, Clock(AT), until_idle=True, max_seconds=60))
        heard = {d: len(harness.recordings(p)) for d, (p, _, _) in DEBTORS.items()}
    finally:
        harness.down()
    blocks = {b["debtor_id"]: b["rule_id"] for b in gate_blocks(store)}
    for d, (phone, _, expected) in DEBTORS.items():
        placed = store.query_one("SELECT count(*) FROM attempts WHERE debtor_id=? AND id NOT LIKE 'early-%'", (d,))[0]
        if expected == "called":
            assert heard[d] == 1 and placed == 1, (d, heard[d], placed)
            assert d not in blocks
        else:
            assert heard[d] == 0 and placed == 0, (d, heard[d], placed)
            assert blocks.get(d) == expected, (d, blocks.get(d))
            nxt = store.query_one("SELECT next_allowed_at FROM debtors WHERE debtor_id=?", (d,))[0]
            assert nxt is not None and nxt > AT.timestamp()
    store.close()
