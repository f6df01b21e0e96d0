"""Preview's steps without Asterisk (the e2e test is tests/test_e2e_preview.py): the debtor is dialled only after
the collector's phone answered, through the gate's take_attempt; a gate that says no at that moment dials
nothing and hangs up the collector's phone. The AMI here only records what the daemon asks of it."""
from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from common.clock import FixedClock
from dialer.calls.collectors import Collectors
from dialer.calls.preview import Preview
from dialer.campaign.config import load_campaign_text
from dialer.campaign.imports import read_debtors_csv
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store.preview import offers, set_offer_state
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = """name: pv
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: preview
line_limit: 2
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


class RecordingAmi:
    def __init__(self):
        self.sent: list[dict] = []
        self.originated: list[tuple] = []

    async def send(self, action, timeout=10.0):
        self.sent.append(action)
        return {"Response": "Success"}

    async def originate(self, call_id, number, **kw):
        self.originated.append((call_id, number, kw))
        loop = asyncio.get_running_loop()

        class Tracked:
            done = loop.create_future()
        return Tracked()


class Bus(list):
    """What the preview published (the daemon's bus in the real thing)."""

    def __call__(self, event) -> None:
        self.append(event)


def _setup(tmp_path: Path):
    store = Store(tmp_path / "d.db")
    camp = load_campaign_text(CAMPAIGN, "pv.yaml", scripts_dir=REPO / "campaigns/scripts")
    core.upsert_campaign(store, camp)
    (tmp_path / "d.csv").write_text(
        "debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
        "timezone,customer_type,lang,contacts\nP1,P,+12125550801,1234,1980,ACC-P1,10.00,USD,12,,America/New_York,"
        "first,en,\n")
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), "pv")
    return store, camp


def _run(tmp_path: Path, cease_before_answer: bool):
    store, camp = _setup(tmp_path)
    clock = FixedClock(datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("America/New_York")))
    tasks: list = []
    ami = RecordingAmi()
    out: dict = {}

    async def go():
        col = Collectors(store, clock, ["agent1"], {}, 2.0, tasks.append)
        col.ami = ami
        calls: dict = {}
        followed: list = []
        pv = Preview(store, load_rules(REPO / "compliance_rules.yaml"), {"pv": camp}, clock, calls, col,
                     followed.append, Bus(), tasks.append)
        pv.ami = ami
        await pv.tick()
        [offer] = offers(store)
        assert offer["state"] == "offered" and offer["agent"] == "agent1" and not ami.originated
        assert not store.query("SELECT 1 FROM attempts")
        assert set_offer_state(store, offer["id"], "accepted", clock.timestamp(), from_states=("offered",))
        clock.advance(1)
        await pv.tick()
        [leg] = [a for a in ami.sent if a.get("Action") == "Originate"]
        assert leg["Channel"] == "PJSIP/agent1" and leg["Exten"] == "agent"
        assert not ami.originated and not store.query("SELECT 1 FROM attempts")  # the collector first
        call_id = leg["ChannelId"][: -len("-agent")]
        if cease_before_answer:
            core.add_contact_request(store, "P1", "cease", {}, clock.timestamp(), "operator")
        pv.on_ami_event({"Event": "UserEvent", "UserEvent": "DialerPreviewReady", "CallID": call_id,
                         "Channel": "PJSIP/agent1-00000001"})
        while tasks:
            t = tasks.pop(0)
            if asyncio.iscoroutine(t):
                if t.cr_code.co_name == "after":  # waits for the debtor's call to end: not in this test
                    t.close()
                    continue
                await t
        out.update(offer=offers(store)[0], call_id=call_id, calls=dict(calls), followed=followed)

    asyncio.run(go())
    return store, ami, out


def test_accept_dials_the_debtor_once_after_the_collectors_phone_through_the_gate(tmp_path: Path):
    store, ami, out = _run(tmp_path, cease_before_answer=False)
    assert [(c, n, kw["exten"], kw["variables"]["DIALER_AGENT_CHANNEL"]) for c, n, kw in ami.originated] == \
        [(out["call_id"], "+12125550801", "debtor", "PJSIP/agent1-00000001")]
    [att] = store.query("SELECT * FROM attempts")
    assert att["id"] == out["call_id"] and att["agent"] == "agent1" and att["state"] == "ringing"
    assert out["offer"]["state"] == "placed" and out["offer"]["call_id"] == out["call_id"]
    assert len(out["followed"]) == 1


def test_a_gate_that_says_no_when_the_collector_answers_dials_nothing(tmp_path: Path):
    store, ami, out = _run(tmp_path, cease_before_answer=True)
    assert ami.originated == []
    assert not store.query("SELECT 1 FROM attempts")
    assert out["offer"]["state"] == "blocked" and out["offer"]["reason"] == "cease"
    assert store.query("SELECT rule_id FROM gate_blocks")[0]["rule_id"] == "cease"
    assert {"Action": "Hangup", "Channel": out["call_id"] + "-agent", "Cause": "16"} in ami.sent
    pops = store.query("SELECT context_json FROM screen_pops ORDER BY id")
    assert '"blocked":"cease"' in pops[-1]["context_json"].replace(" ", "")
