"""Collector dispositions through `dialer agent dispo`: validated against the collector's last call; a promise
is kept by a later payment import; a call-back time becomes the next allowed attempt and the gate still
decides then; cease and dispute stop the calls; wrap-up ends on the disposition or runs out to `not_entered`."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from common.clock import FixedClock
from dialer.calls.collectors import Collectors
from dialer.campaign.config import load_campaign_text
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.gate.rules import load_rules
from dialer.pacing.floor import CollectorLive
from dialer.pacing.pacers import READY, WRAPUP
from dialer.store import Store, core
from dialer.store.dispositions import disposition_for, dispositions_by_agent
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=NY)  # a Tuesday, inside the US window
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CAMPAIGN = """name: floor
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


@pytest.fixture
def floor(tmp_path: Path):
    db = tmp_path / "dialer.db"
    store = Store(db)
    core.upsert_campaign(store, load_campaign_text(CAMPAIGN, "floor.yaml", scripts_dir=REPO / "campaigns/scripts"))
    (tmp_path / "d.csv").write_text(HEADER + "".join(
        f"D{i},Debtor {i},+1212555060{i},1234,1980,ACC-D{i},500.00,USD,12,,America/New_York,first,en,\n"
        for i in range(1, 4)))
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), "floor")
    rules = load_rules(REPO / "compliance_rules.yaml")

    def call(debtor: str, agent: str, at: datetime) -> str:
        cid = f"floor-{debtor}-{int(at.timestamp())}"
        d = take_attempt(store, call_id=cid, debtor_id=debtor, account_id=f"ACC-{debtor}", campaign="floor",
                         phone=None, rules=rules, now=at)
        assert d.allowed, d.reason
        t = at.timestamp()
        core.update_attempt(store, cid, state="ended", outcome="answered", answered_at=t + 5, ended_at=t + 60,
                            agent=agent, at=t + 60)
        return cid

    return {"db": db, "store": store, "rules": rules, "call": call, "tmp": tmp_path}


def _dispo(db: Path, *args: str):
    return CliRunner().invoke(main, ["agent", "dispo", *args, "--db", str(db), "--json"])


def test_a_promise_is_kept_by_a_later_payment_import(floor):
    store, db = floor["store"], floor["db"]
    cid = floor["call"]("D1", "agent1", T0)
    at = (T0 + timedelta(minutes=2)).isoformat()
    res = _dispo(db, "agent1", "--outcome", "promise", "--amount", "200.00", "--date", "2026-12-10", "--at", at)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["call_id"] == cid
    [p] = core.promises_for(store, call_id=cid)
    assert p["status"] == "open" and p["amount"] == "200.00" and p["due_date"] == "2026-12-10"
    assert core.get_attempt(store, cid)["disposition"] == "promise"
    (floor["tmp"] / "pay.csv").write_text("account_id,paid_at,amount,currency,reference\n"
                                          "ACC-D1,2026-12-08,200.00,USD,R1\n")
    res = CliRunner().invoke(main, ["payments", "import", str(floor["tmp"] / "pay.csv"), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert core.promises_for(store, call_id=cid)[0]["status"] == "kept"


def test_a_callback_is_the_next_allowed_attempt_and_the_gate_still_applies(floor):
    store, db, rules = floor["store"], floor["db"], floor["rules"]
    floor["call"]("D2", "agent1", T0)
    late = datetime(2026, 12, 1, 21, 30)  # the debtor asks for 21:30 their time: outside the US window
    res = _dispo(db, "agent1", "--outcome", "callback", "--date", late.isoformat(),
                 "--at", (T0 + timedelta(minutes=2)).isoformat())
    assert res.exit_code == 0, res.output
    ts = late.replace(tzinfo=NY).timestamp()
    assert core.get_debtor(store, "D2")["next_allowed_at"] == pytest.approx(ts)
    assert not [c for c in core.due_debtors(store, "floor", ts - 60) if c.debtor_id == "D2"]
    assert [c.debtor_id for c in core.due_debtors(store, "floor", ts + 1) if c.debtor_id == "D2"] == ["D2"]
    d = take_attempt(store, call_id="floor-cb", debtor_id="D2", account_id="ACC-D2", campaign="floor", phone=None,
                     rules=rules, now=late.replace(tzinfo=NY) + timedelta(seconds=1))
    assert not d.allowed and d.rule_id == "time.window"


def test_a_disposition_is_checked_against_the_collectors_last_call(floor):
    store, db = floor["store"], floor["db"]
    at = ["--at", (T0 + timedelta(minutes=2)).isoformat()]
    res = _dispo(db, "agent1", "--outcome", "promise", "--date", "2026-12-10", *at)
    assert res.exit_code != 0 and "has had no call" in res.output
    floor["call"]("D3", "agent1", T0)
    for args, msg in ((["--outcome", "paid"], "unknown outcome"),
                      (["--outcome", "promise"], "needs --date"),
                      (["--outcome", "promise", "--date", "2026-11-01"], "before today"),
                      (["--outcome", "promise", "--date", "2026-12-10", "--amount", "-5"], "more than 0"),
                      (["--outcome", "refusal", "--amount", "5"], "--amount is for a promise"),
                      (["--outcome", "callback", "--date", "2026-11-30T10:00"], "not in the future")):
        res = _dispo(db, "agent1", *args, *at)
        assert res.exit_code != 0 and msg in res.output, (args, res.output)
    assert _dispo(db, "agent1", "--outcome", "refuse", *at).exit_code == 0
    assert core.get_attempt(store, store.query_one("SELECT id FROM attempts WHERE debtor_id='D3'")["id"])[
        "disposition"] == "refusal"
    res = _dispo(db, "agent1", "--outcome", "promise", "--date", "2026-12-10", *at)
    assert res.exit_code != 0 and "already has a disposition: refusal" in res.output


def test_cease_and_dispute_stop_the_calls(floor):
    store, db, rules = floor["store"], floor["db"], floor["rules"]
    at = (T0 + timedelta(minutes=2)).isoformat()
    floor["call"]("D1", "agent1", T0)
    floor["call"]("D2", "agent2", T0)
    assert _dispo(db, "agent1", "--outcome", "cease", "--at", at).exit_code == 0
    assert _dispo(db, "agent2", "--outcome", "dispute", "--note", "says paid in 2024", "--at", at).exit_code == 0
    later = T0 + timedelta(days=2)
    d = take_attempt(store, call_id="x1", debtor_id="D1", account_id="ACC-D1", campaign="floor", phone=None,
                     rules=rules, now=later)
    assert not d.allowed and d.rule_id == "cease"
    assert core.get_debtor(store, "D2")["next_allowed_at"] >= (T0 + timedelta(days=29)).timestamp()
    assert not [c for c in core.due_debtors(store, "floor", later.timestamp()) if c.debtor_id == "D2"]


class _Ami:
    async def send(self, action, timeout=10.0):
        return {"Response": "Success"}


def test_wrapup_ends_on_the_disposition_or_runs_out_to_not_entered(floor):
    store, db = floor["store"], floor["db"]
    clock = FixedClock(T0 + timedelta(minutes=1))
    tasks: list = []

    async def run() -> None:
        col = Collectors(store, clock, ["agent1", "agent2"], {}, wrap_up=10.0, spawn=tasks.append)
        col.ami = _Ami()
        c1 = floor["call"]("D1", "agent1", T0)
        c2 = floor["call"]("D2", "agent2", T0)
        now = clock.timestamp()
        col.start_wrapup("agent1", c1, now)
        col.start_wrapup("agent2", c2, now)
        clock.advance(3)
        assert _dispo(db, "agent1", "--outcome", "no_contact", "--at", clock.now().isoformat()).exit_code == 0
        await col.apply_states()
        assert col.live["agent1"].state == READY  # ended by the disposition, 7 s early
        assert col.live["agent2"].state == WRAPUP
        res = CliRunner().invoke(main, ["agent", "wrapup", "agent1", "--seconds", "30", "--db", str(db),
                                        "--at", clock.now().isoformat()])
        assert res.exit_code == 0, res.output
        col.live["agent1"] = CollectorLive(WRAPUP, clock.timestamp())  # a new call's wrap-up, extended by hand
        clock.advance(8)
        await col.apply_states()
        assert col.live["agent2"].state == READY and col.live["agent1"].state == WRAPUP
        assert disposition_for(store, c2)["outcome"] == "not_entered"
        clock.advance(25)
        await col.apply_states()
        assert col.live["agent1"].state == READY

    asyncio.run(run())
    assert dispositions_by_agent(store) == {"agent1": {"no_contact": 1}, "agent2": {"not_entered": 1}}


def test_the_wallboard_form_records_a_disposition_like_agent_dispo(floor):
    """POST /dispo on the daemon's web server: the same checks and effects as `dialer agent dispo`, behind the
    token, at the daemon's clock; a refusal comes back as 400 with the CLI's reason in the form's words."""
    import aiohttp

    from dialer.observe.floor import FloorView
    from dialer.observe.wallboard import Wallboard
    from dialer.web.server import WebServer, build_app

    store = floor["store"]
    cid = floor["call"]("D1", "agent1", T0)
    from dialer.calls.daemon import Dialer

    clock = FixedClock(T0 + timedelta(minutes=2))
    src = SimpleNamespace(store=store, clock=clock, calls={}, campaigns={}, collectors=None, rules=floor["rules"])
    src.enter_disposition = lambda *a, **kw: Dialer.enter_disposition(src, *a, **kw)  # the daemon's method
    board = Wallboard(FloorView(src))

    async def scenario() -> list:
        server = WebServer(build_app("tok", board.routes()), port=0)
        await server.start()
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(server.url, headers={"Authorization": "Bearer tok"}) as r:
                    out.append(await r.text())
                for body, auth in (({"collector": "agent1", "outcome": "promise", "date": "2026-12-10"}, False),
                                   ({"collector": "agent1", "outcome": "paid"}, True),
                                   ({"collector": "agent1", "outcome": "promise"}, True),
                                   ({"collector": "agent1", "outcome": "promise", "date": "2026-11-01"}, True),
                                   ({"collector": "agent1", "outcome": "refusal", "amount": "5"}, True),
                                   ({"collector": "agent2", "outcome": "refusal"}, True),
                                   ({"outcome": "refusal"}, True),
                                   ({"collector": "agent1", "outcome": "promise", "date": "2026-12-10",
                                     "amount": "150.50", "note": "pays from salary", "extra": ""}, True),
                                   ({"collector": "agent1", "outcome": "refusal"}, True)):
                    hdr = {"Authorization": "Bearer tok"} if auth else {}
                    async with s.post(server.url + "dispo", json=body, headers=hdr) as r:
                        out.append((r.status, await r.json() if r.status != 401 else None))
        finally:
            await server.stop()
        return out

    page, anon, unknown, no_date, past, amount, other, no_collector, ok, again = asyncio.run(scenario())
    for o in ("promise", "callback", "refusal", "dispute", "hardship", "cease", "wrong_number", "third_party",
              "no_contact"):
        assert f'<option value="{o}">' in page
    assert 'id="dispo"' in page and 'id="dispo-status"' in page
    assert anon[0] == 401
    assert unknown[0] == 400 and "unknown outcome 'paid'" in unknown[1]["error"]
    assert no_date[0] == 400 and "a promise needs date YYYY-MM-DD" in no_date[1]["error"]
    assert past[0] == 400 and "before today" in past[1]["error"]
    assert amount[0] == 400 and "amount is for a promise, not refusal" in amount[1]["error"]
    assert other[0] == 400 and "'agent2' has had no call" in other[1]["error"]
    assert no_collector[0] == 400 and "collector" in no_collector[1]["error"]
    assert ok[0] == 200 and (ok[1]["call_id"], ok[1]["outcome"], ok[1]["amount"]) == (cid, "promise", "150.50")
    [p] = core.promises_for(store, call_id=cid)
    assert (p["status"], p["amount"], p["due_date"]) == ("open", "150.50", "2026-12-10")
    d = disposition_for(store, cid)
    assert (d["agent"], d["source"], d["note"]) == ("agent1", "collector", "pays from salary")
    assert d["at"] == pytest.approx((T0 + timedelta(minutes=2)).timestamp())  # the daemon's clock
    assert again[0] == 400 and "already has a disposition: promise" in again[1]["error"]
