"""`dialer compliance explain`: every rule with pass/fail and why, zones, local times, next allowed time."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from click.testing import CliRunner

from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.store import Store
from tests.test_compliance_gate import NOW, RULES, RULES_FILE, end_call, seed
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines


def _db(tmp_path):
    s = Store(tmp_path / "x.db")
    seed(s, tz="Asia/Shanghai")
    t = NOW
    for i in range(3):
        assert take_attempt(s, call_id=f"c{i}", debtor_id="d1", account_id=None, campaign="c1", phone=None,
                            rules=RULES, now=t).allowed
        end_call(s, f"c{i}")
        t += timedelta(minutes=40)
    assert take_attempt(s, call_id="c9", debtor_id="d1", account_id=None, campaign="c1", phone=None,
                        rules=RULES, now=t).rule_id == "cap.daily"
    s.close()
    return tmp_path / "x.db", t


def test_explain_json_lists_every_rule_and_next_time(tmp_path):
    db, t = _db(tmp_path)
    res = CliRunner().invoke(main, ["compliance", "explain", "--debtor", "d1", "--at", t.isoformat(), "--db", str(db),
                                    "--rules", str(RULES_FILE), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["allowed"] is False and out["profile"] == "cn"
    assert datetime.fromisoformat(out["next_allowed_at"]) == datetime.fromisoformat("2026-11-24T08:00:00+08:00")
    first = out["numbers"][0]
    assert first["phone"].endswith("8000") and "*" in first["phone"]  # masked
    assert first["zones"] == ["Asia/Shanghai"] and first["local_times"]["Asia/Shanghai"].startswith("2026-11-23T12:00")
    daily = next(c for c in first["checks"] if c["rule_id"] == "cap.daily")
    assert daily["passed"] is False and "3 attempts" in daily["why"]
    assert len(first["checks"]) == 20 and sum(not c["passed"] for c in first["checks"]) == 1
    assert out["recent_blocks"][0]["rule_id"] == "cap.daily"


def test_explain_text_and_errors(tmp_path):
    db, t = _db(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["compliance", "explain", "--debtor", "d1", "--at", "2026-11-25T09:00:00+08:00",
                               "--db", str(db), "--rules", str(RULES_FILE)])
    assert res.exit_code == 0, res.output
    assert "ALLOWED" in res.output and "[pass] time.window" in res.output and "may be called now" in res.output
    res = runner.invoke(main, ["compliance", "explain", "--debtor", "nobody", "--db", str(db), "--rules", str(RULES_FILE)])
    assert res.exit_code == 1 and "no debtor 'nobody'" in res.output
    res = runner.invoke(main, ["compliance", "explain", "--debtor", "d1", "--at", "2026-11-25T09:00", "--db", str(db)])
    assert res.exit_code == 2 and "UTC offset" in res.output
