"""The clock cannot be turned back: an attempt later than the gate's clock still counts (as the latest
attempt), a cease recorded 'in the future' still holds, and the daemon refuses to start when its clock is
behind the last recorded attempt (one line, non-zero exit)."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main as cli
from dialer.gate.account import load_history
from dialer.gate.decide import Attempt, History, PastAttempt, decide
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store.gate import add_cease
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "compliance_rules.yaml")
US = RULES.profile_for("us")
NYC = "+12125551234"


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def test_an_attempt_later_than_the_clock_keeps_the_minimum_gap():
    now = at("2026-11-23T11:00:00-05:00")
    later = PastAttempt(placed_at=(now + timedelta(minutes=5)).timestamp(), phone=NYC, outcome="no_answer")
    d = decide(Attempt("d", NYC), History("d", attempts=(later,)), US, now)
    assert not d.allowed and d.rule_id == "gap.min", d.reason
    assert d.next_allowed_at.timestamp() >= later.placed_at + US.gate.min_gap_minutes * 60


def test_a_conversation_later_than_the_clock_keeps_the_quiet_period():
    now = at("2026-11-23T11:00:00-05:00")
    conv = PastAttempt(placed_at=(now + timedelta(days=1)).timestamp(), phone=NYC, outcome="answered",
                       conversation=True)
    d = decide(Attempt("d", NYC), History("d", attempts=(conv,)), US, now)
    assert not d.allowed
    assert not next(c for c in d.checks if c.rule_id == "conv.7day").passed


def test_a_7in7_count_includes_attempts_later_than_the_clock():
    now = at("2026-11-23T11:00:00-05:00")
    cap = US.gate.rolling_7day
    attempts = tuple(PastAttempt(placed_at=(now + timedelta(days=i + 1)).timestamp(), phone=NYC, outcome="no_answer")
                     for i in range(cap))
    d = decide(Attempt("d", NYC), History("d", attempts=attempts), US, now)
    assert not next(c for c in d.checks if c.rule_id == "cap.7in7").passed


def _store_with_debtor(tmp_path) -> Store:
    from dialer.campaign.config import load_campaign

    store = Store(tmp_path / "d.db")
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, [{"debtor_id": "C1", "name": "Cal Clock", "phones": NYC, "id_last4": "1234",
                                 "birth_year": "1980", "account_id": "A-C1", "amount_owed": "100.00",
                                 "currency": "USD", "days_past_due": "10", "due_date": "2026-11-13",
                                 "timezone": "America/New_York", "customer_type": "first", "lang": "en",
                                 "contacts": ""}], camp.name)
    return store


def test_a_cease_recorded_later_than_the_clock_still_holds(tmp_path):
    store = _store_with_debtor(tmp_path)
    now = at("2026-11-23T11:00:00-05:00")
    add_cease(store, "C1", source="call", at=(now + timedelta(hours=1)).timestamp())
    assert load_history(store, "C1", now).cease


def test_run_refuses_to_start_with_a_clock_behind_the_last_attempt(tmp_path):
    store = _store_with_debtor(tmp_path)
    placed = at("2026-11-23T11:00:00-05:00")
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="c-1", debtor_id="C1", account_id="A-C1", campaign="en_demo",
                            phone=NYC, placed_at=placed.timestamp())
    core.update_attempt(store, "c-1", state="ended", outcome="no_answer", ended_at=placed.timestamp() + 30)
    earlier = (placed - timedelta(hours=1)).isoformat()
    res = CliRunner().invoke(cli, ["run", "--db", str(tmp_path / "d.db"), "--at", earlier,
                                   "--run-dir", str(tmp_path / "no-pbx")])
    assert res.exit_code != 0
    out = (res.output or "").strip()
    assert "clock" in out and "behind" in out, out
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert core.get_attempt(store, "c-1")["state"] == "ended"
