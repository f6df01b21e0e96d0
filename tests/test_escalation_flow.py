"""An escalation plan at work without Asterisk (the e2e is tests/test_e2e_escalation.py): as simulated days
pass, one debtor gets a reminder SMS task (in the SMS window, within its caps), then a bot call, then a
collector call; a cease request stops every channel. The AMI here only records what the hopper asks of it."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from common.clock import FixedClock
from dialer.calls.collectors import Collectors
from dialer.calls.escalation import Escalation
from dialer.calls.hopper import Hopper
from dialer.campaign.config import load_campaign_text
from dialer.campaign.imports import read_debtors_csv
from dialer.gate.rules import load_rules
from dialer.gate.tasks import take_task
from dialer.store import Store, core
from dialer.store import escalation as esc_store
from dialer.store.outbox import outbox_events
from tests.engines import both_engines

pytestmark = both_engines
REPO = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
DUE = datetime(2026, 11, 30, tzinfo=NY)  # a Monday; dpd 1 on Tue 1 Dec
CAMPAIGN = """name: esc
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: progressive
line_limit: 2
segments:
  - name: all
    dpd: 0+
    script: dtmf_verify
    escalation:
      - {stage: reminder, dpd: 1-3, action: sms, template: m1_sms, every: 2d}
      - {stage: bot, dpd: 4-15, action: bot_call}
      - {stage: collector, dpd: 16+, action: collector_call}
"""


class RecordingAmi:
    def __init__(self):
        self.originated: list[tuple] = []
        self.connected = asyncio.Event()
        self.connected.set()

    async def originate(self, call_id, number, **kw):
        self.originated.append((call_id, number, kw))
        return object()


def _setup(tmp_path: Path, debtors: str = "E1"):
    store = Store(tmp_path / "d.db")
    camp = load_campaign_text(CAMPAIGN, "esc.yaml", scripts_dir=REPO / "campaigns/scripts")
    core.upsert_campaign(store, camp)
    rows = "".join(f"{d},Eve {d},+1212555{k + 1:04d},1234,1980,ACC-{d},100.00,USD,0,2026-11-30,America/New_York,"
                   f"first,en,\n" for k, d in enumerate(debtors.split(",")))
    (tmp_path / "d.csv").write_text("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,"
                                    "days_past_due,due_date,timezone,customer_type,lang,contacts\n" + rows)
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), "esc")
    rules = load_rules(REPO / "compliance_rules.yaml")
    clock = FixedClock(DUE)
    tasks: list = []
    collectors = Collectors(store, clock, ["agent1"], {"esc": object()}, 2.0, tasks.append)
    calls: dict = {}
    hopper = Hopper(store, rules, {"esc": camp}, clock, calls, collectors, None, lambda call: None, lambda e: None)
    hopper.ami = RecordingAmi()
    esc = Escalation(store, rules, {"esc": camp}, clock, sweep_seconds=0)
    hopper.escalation = esc
    return store, camp, rules, clock, hopper, esc, calls


def _at(clock: FixedClock, day: int, hh: int, mm: int = 0) -> datetime:
    when = DUE + timedelta(days=day, hours=hh, minutes=mm)
    clock._t = when.timestamp()
    return when


def _step(hopper: Hopper, esc: Escalation, camp) -> int:
    esc.tick()
    return asyncio.run(hopper._fill(camp, 2))


def test_sms_then_bot_call_then_collector_call_as_days_pass(tmp_path: Path):
    store, camp, rules, clock, hopper, esc, calls = _setup(tmp_path)
    ami = hopper.ami

    # day 1 (dpd 1), 08:30 local: the SMS stage; the SMS window (us: 08:00–21:00) is open → one task, no call
    _at(clock, 1, 7, 30)  # before the window: blocked by time.window, nothing queued, nothing dialled
    assert _step(hopper, esc, camp) == 0
    [blocked] = esc_store.tasks(store, debtor_id="E1")
    assert (blocked["status"], blocked["rule_id"], blocked["channel"]) == ("blocked", "time.window", "sms")
    assert blocked["next_allowed_at"] == (DUE + timedelta(days=1, hours=8)).timestamp()
    assert not outbox_events(store, kind="contact_task") and not ami.originated

    _at(clock, 1, 8, 0)  # the gate's next allowed time: the sweep looks again then
    assert _step(hopper, esc, camp) == 0
    [sms] = outbox_events(store, kind="contact_task")
    p = sms["payload"]
    assert (p["channel"], p["to"], p["stage"], p["template"], p["days_past_due"]) == \
        ("sms", "+12125550001", "reminder", "m1_sms", 1)
    assert sms["subject"] == "E1" and not ami.originated
    assert esc_store.get_state(store, "E1")["stage"] == "reminder"

    # the SMS cap (daily: 1) holds whoever asks: a second SMS the same day is blocked with cap.daily
    again = take_task(store, debtor_id="E1", account_id="ACC-E1", campaign="esc", segment="all", stage="reminder",
                      channel="sms", to="+12125550001", rules=rules, now=_at(clock, 1, 15))
    assert not again.queued and again.decision.rule_id == "cap.daily"
    assert len(outbox_events(store, kind="contact_task")) == 1

    # day 2 (dpd 2): still the SMS stage, but `every: 2d` → nothing; day 3 (dpd 3): the second SMS
    _at(clock, 2, 12)
    assert _step(hopper, esc, camp) == 0 and len(outbox_events(store, kind="contact_task")) == 1
    _at(clock, 3, 12)
    assert _step(hopper, esc, camp) == 0 and len(outbox_events(store, kind="contact_task")) == 2
    assert not ami.originated

    # day 4 (dpd 4): the bot stage — no SMS, a bot call (inside the voice window)
    _at(clock, 4, 7, 0)  # 07:00: outside the voice window → the gate blocks the call
    assert _step(hopper, esc, camp) == 0 and not ami.originated
    _at(clock, 4, 10, 0)
    assert _step(hopper, esc, camp) == 1
    [(call_id, number, kw)] = ami.originated
    assert (number, kw["context"], kw["exten"]) == ("+12125550001", "dialer-outbound", "bot")
    assert len(outbox_events(store, kind="contact_task")) == 2
    core.update_attempt(store, call_id, state="ended", outcome="no_answer", ended_at=clock.timestamp(),
                        at=clock.timestamp())
    calls.clear()

    # day 16 (dpd 16): the collector stage — the call goes to the collectors' side of the dialplan
    _at(clock, 16, 10, 0)
    assert _step(hopper, esc, camp) == 1
    (call_id2, number2, kw2) = ami.originated[-1]
    assert (number2, kw2["context"], kw2["exten"]) == ("+12125550001", "dialer-agent", "agent")
    assert len(outbox_events(store, kind="contact_task")) == 2
    assert esc_store.get_state(store, "E1")["stage"] in ("bot", "collector")


def test_a_cease_request_stops_every_channel(tmp_path: Path):
    store, camp, rules, clock, hopper, esc, calls = _setup(tmp_path, "C1,C2")
    _at(clock, 1, 10)
    assert _step(hopper, esc, camp) == 0
    assert {e["subject"] for e in outbox_events(store, kind="contact_task")} == {"C1", "C2"}
    core.add_contact_request(store, "C1", "cease", {}, clock.timestamp(), "operator")

    # every channel's gate says `cease`, whoever asks
    for channel, to in (("sms", "+12125550001"), ("letter", None), ("legal_review", None)):
        res = take_task(store, debtor_id="C1", account_id="ACC-C1", campaign="esc", segment="all", stage="x",
                        channel=channel, to=to, rules=rules, now=_at(clock, 3, 12))
        assert not res.queued and res.decision.rule_id == "cease", (channel, res.decision)
    # and the daemon's side: through the SMS days and the call days, C1 gets nothing; C2 goes on
    for day in (3, 5, 17):
        _at(clock, day, 12)
        _step(hopper, esc, camp)
        for cid, c in list(calls.items()):
            core.update_attempt(store, cid, state="ended", outcome="no_answer", ended_at=clock.timestamp(),
                                at=clock.timestamp())
            calls.pop(cid)
    sent = outbox_events(store, kind="contact_task")
    assert [e["subject"] for e in sent].count("C1") == 1  # only the SMS before the cease
    assert [e["subject"] for e in sent].count("C2") == 2
    dialled = [n for _, n, _ in hopper.ami.originated]
    assert "+12125550001" not in dialled and dialled.count("+12125550002") == 2
    assert not store.query("SELECT 1 FROM attempts WHERE debtor_id='C1'")
    assert [e for e in outbox_events(store, kind="cease") if e["subject"] == "C1"]


def test_dialer_escalation_tasks_shows_queued_and_blocked_tasks(tmp_path: Path):
    import json
    import subprocess
    import sys

    from tests.engines import db_target

    store, camp, rules, clock, hopper, esc, calls = _setup(tmp_path)
    _at(clock, 1, 7, 0)
    _step(hopper, esc, camp)  # blocked: before the SMS window
    _at(clock, 1, 9, 0)
    _step(hopper, esc, camp)  # queued
    out = subprocess.run([sys.executable, "-m", "dialer.cli", "escalation", "tasks", "--db",
                          db_target(tmp_path / "d.db"), "--debtor", "E1", "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [(t["status"], t["rule_id"]) for t in got["tasks"]] == [("blocked", "time.window"), ("queued", None)]
    assert got["stage"]["stage"] == "reminder" and got["stage"]["action"] == "sms"
    text = subprocess.run([sys.executable, "-m", "dialer.cli", "escalation", "tasks", "--db",
                           db_target(tmp_path / "d.db")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "time.window" in text.stdout and "+12125550001" not in text.stdout  # numbers masked


def _task(store, rules, channel: str, when: datetime, to: str | None = "+12125550001"):
    return take_task(store, debtor_id="E1", account_id="ACC-E1", campaign="esc", segment="all", stage="s",
                     channel=channel, to=to if channel == "sms" else None, rules=rules, now=when)


def test_each_channel_keeps_its_own_window_and_caps(tmp_path: Path):
    store, camp, rules, clock, hopper, esc, calls = _setup(tmp_path)
    day = lambda d, h: DUE + timedelta(days=d, hours=h)  # noqa: E731 - DUE is a Monday
    # sms (us: 08:00–21:00, daily 1, weekly 3, 48 h apart)
    assert _task(store, rules, "sms", day(1, 10)).queued
    assert _task(store, rules, "sms", day(2, 11)).decision.rule_id == "gap.min"
    assert _task(store, rules, "sms", day(3, 10)).queued
    assert _task(store, rules, "sms", day(5, 10)).queued
    seventh = _task(store, rules, "sms", day(7, 10))
    assert seventh.decision.rule_id == "cap.7in7"  # a fourth within 7 days
    assert seventh.decision.next_allowed_at == day(8, 10)
    assert _task(store, rules, "sms", day(1, 22)).decision.rule_id == "time.window"
    # letter: weekdays 09:00–17:00 — a Saturday waits for Monday 09:00; SMS caps do not count for letters
    sat = _task(store, rules, "letter", day(5, 10))
    assert sat.decision.rule_id == "time.window" and sat.decision.next_allowed_at == day(7, 9)
    assert _task(store, rules, "letter", day(7, 9)).queued
    assert _task(store, rules, "letter", day(9, 10)).decision.rule_id == "cap.7in7"
    # legal review: any hour, once a week at most
    assert _task(store, rules, "legal_review", day(9, 3)).queued
    assert _task(store, rules, "legal_review", day(10, 3)).decision.rule_id == "cap.7in7"
    # the calls' own caps are untouched by tasks: a call is still allowed
    from dialer.gate.account import check_attempt

    assert check_attempt(store, debtor_id="E1", account_id="ACC-E1", campaign="esc", rules=rules,
                         now=day(7, 12)).allowed
    # a suppression list (here a complaint hold) blocks every channel with its own rule id
    from dialer.store.suppression import import_suppressions

    import_suppressions(store, [{"phone": "", "debtor_id": "E1", "account_id": "", "effective_date": "2026-12-01",
                                 "source": "hotline", "note": ""}], "complaint_hold", now=day(1, 0).timestamp())
    for channel in ("sms", "letter", "legal_review"):
        assert _task(store, rules, channel, day(30, 10)).decision.rule_id == "suppress.complaint_hold", channel
    queued = [t for t in esc_store.tasks(store, debtor_id="E1") if t["status"] == "queued"]
    assert [t["channel"] for t in queued] == ["sms", "sms", "sms", "letter", "legal_review"]
