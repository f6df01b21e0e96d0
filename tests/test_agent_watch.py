"""`dialer agent watch NAME`: a call reaching a collector pops the debtor's context on their screen."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.campaign.config import load_campaign
from dialer.cli import main
from dialer.cli.agent import agent, render_screen_pop
from dialer.store import Store, core
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    path = tmp_path / "d.db"
    s = Store(path)
    core.upsert_campaign(s, load_campaign(REPO / "campaigns" / "en_demo.yaml", scripts_dir=scripts))
    core.import_debtors(s, [{"debtor_id": "D1", "name": "Alice Johnson", "phones": "+12125550101",
                             "account_id": "ACC-1", "amount_owed": "1250.00", "days_past_due": "12",
                             "customer_type": "first", "birth_year": "1984"}], "en_demo")
    with s.transaction() as conn:
        core.insert_attempt(conn, call_id="call-1", debtor_id="D1", account_id="ACC-1", campaign="en_demo",
                            phone="+12125550101", placed_at=1_795_000_000.0)
    s.close()
    return path


def _push_later(db: Path, agent_name: str, delay: float, verified: bool) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        s = Store(db)
        if verified:
            core.record_call_event(s, "call-1", "verified", 1_795_000_010.0, {})
            core.record_call_event(s, "call-1", "intent", 1_795_000_020.0, {"intent": "hardship"})
            core.record_promise(s, "call-1", "D1", "ACC-1", "200.00", "2026-12-15", 1_795_000_030.0)
        core.push_screen_pop(s, agent_name, "call-1", "D1", None, 1_795_000_040.0)
        s.close()
    t = threading.Thread(target=run)
    t.start()
    return t


def test_watch_once_prints_the_call_that_arrives(db: Path):
    t = _push_later(db, "alice", 0.3, verified=True)
    res = CliRunner().invoke(agent, ["watch", "alice", "--db", str(db), "--once", "--timeout", "10"])
    t.join()
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "Alice Johnson" in out and "1250.00 USD" in out and "12 days past due (M1)" in out
    assert "segment early" in out and "verified yes" in out
    assert "intents  hardship" in out and "promise  200.00 by 2026-12-15 (open)" in out
    assert "+12125550101" not in out and "0101" in out          # phone masked


def test_watch_only_shows_pops_for_that_collector(db: Path):
    t = _push_later(db, "bob", 0.1, verified=False)
    res = CliRunner().invoke(agent, ["watch", "alice", "--db", str(db), "--once", "--timeout", "1"])
    t.join()
    assert res.exit_code == 1 and "no call reached alice" in res.stderr and res.stdout == ""


def test_watch_all_replays_and_json(db: Path):
    _push_later(db, "alice", 0, verified=False).join()
    # without --all, an earlier pop is not shown again
    res = CliRunner().invoke(agent, ["watch", "alice", "--db", str(db), "--timeout", "0.3"])
    assert res.exit_code == 0 and res.stdout == ""
    res = CliRunner().invoke(agent, ["watch", "alice", "--db", str(db), "--all", "--once", "--json", "--timeout", "2"])
    assert res.exit_code == 0, res.stderr
    pop = json.loads(res.stdout)
    assert pop["call_id"] == "call-1" and pop["context"]["verified"] is False
    assert pop["context"]["amount_owed"] == "1250.00" and pop["context"]["phone"].endswith("0101")


def test_unverified_pop_warns_the_collector():
    text = render_screen_pop({"id": 1, "agent": "a", "call_id": "c", "debtor_id": "D", "at": 0.0,
                              "context": {"name": "X", "verified": False, "amount_owed": "5", "currency": "CNY",
                                          "days_past_due": 40, "bucket": "M2", "note": "asked for a plan"}})
    assert "NO - verify before discussing the debt" in text and "note     asked for a plan" in text


def test_agent_group_is_reachable_from_dialer(db: Path):
    res = CliRunner().invoke(main, ["agent", "--help"])
    assert res.exit_code == 0 and "watch" in res.output
