"""A new operator's first hour (issue 17): phone status as a fact with a history, Chinese data as it
comes (national numbers, GBK, currency codes), and the small traps — all through the CLI an operator types."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main
from dialer.store import Store, core
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CAMPAIGN = """name: zh_t
profile: cn
locale: zh-CN
default_region: CN
institution: 示例消费金融
callback_number: "+864008001234"
caller_id: "+862161234567"
dial_mode: bot_only
line_limit: 2
segments:
  - {name: m1, dpd: M1, script: m1_reminder}
  - {name: m2, dpd: "31+", script: m1_reminder}
"""
AT = "2026-11-25T10:00:00+08:00"


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "zh_t.yaml").write_text(CAMPAIGN, encoding="utf-8")
    dbp = tmp_path / "t.db"
    res = cli("campaign", "load", str(tmp_path / "zh_t.yaml"), "--db", str(dbp))
    assert res.exit_code == 0, res.output
    return dbp


def _import(tmp_path: Path, db: Path, rows: str, *extra: str, encoding: str = "utf-8", name: str = "d.csv"):
    f = tmp_path / name
    f.write_bytes((HEADER + rows).encode(encoding))
    return cli("debtors", "import", str(f), "--campaign", "zh_t", "--db", str(db), *extra)


# -- 4. phone status is a fact with a history -------------------------------------------------------

def test_unallocated_then_reset_makes_the_debtor_callable_again(tmp_path, db):
    res = _import(tmp_path, db, "Z1,张伟,13800000001,3821,1986,L1,3200.00,CNY,15,,Asia/Shanghai,first,zh,\n")
    assert res.exit_code == 0, res.output
    store = Store(db)
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="c-unalloc-1", debtor_id="Z1", account_id="L1", campaign="zh_t",
                            phone="+8613800000001", placed_at=1795000000.0)
    core.update_attempt(store, "c-unalloc-1", at=1795000005.0, state="ended", outcome="unallocated",
                        ended_at=1795000005.0)
    core.mark_phone(store, "Z1", "+8613800000001", "unallocated", at=1795000005.0)  # as the daemon does
    assert core.due_debtors(store, "zh_t", 1795000100.0) == []
    store.close()

    # explain says why, when and by which call — not "may be called now"
    res = cli("compliance", "explain", "--debtor", "Z1", "--at", AT, "--db", str(db))
    assert res.exit_code == 0, res.output
    assert "unallocated since" in res.output and "c-unalloc-1" in res.output
    assert "may be called now" not in res.output
    out = json.loads(cli("compliance", "explain", "--debtor", "Z1", "--at", AT, "--db", str(db), "--json").output)
    assert out["allowed"] is False and out["numbers"][0]["phone_status"] == "unallocated"
    assert out["numbers"][0]["phone_status_call"] == "c-unalloc-1"
    # the debtor's history shows it too
    res = cli("debtors", "show", "Z1", "--db", str(db))
    assert res.exit_code == 0 and "unallocated since" in res.output and "c-unalloc-1" in res.output

    # re-importing the same list keeps the fact
    assert _import(tmp_path, db, "Z1,张伟,13800000001,3821,1986,L1,3200.00,CNY,15,,Asia/Shanghai,first,zh,\n").exit_code == 0
    assert core.phone_statuses(Store(db), phone="+8613800000001")[0]["status"] == "unallocated"

    # reset (national number accepted with --region), audited
    res = cli("debtors", "phone-status", "13800000001", "--region", "CN", "--reset", "--reason", "carrier fixed",
              "--db", str(db))
    assert res.exit_code == 0, res.output
    assert "unallocated -> ok" in res.output and "carrier fixed" in res.output
    store = Store(db)
    assert [c.debtor_id for c in core.due_debtors(store, "zh_t", 1795000100.0)] == ["Z1"]
    assert core.phone_statuses(store, phone="+8613800000001")[0]["status"] == "ok"
    acts = [r["kind"] for r in store.query("SELECT kind FROM audit_log ORDER BY seq")]
    assert "phone.reset" in acts
    store.close()
    res = cli("compliance", "explain", "--debtor", "Z1", "--at", AT, "--db", str(db))
    assert "may be called now" in res.output


def test_reimport_with_a_changed_phone_list_applies_the_change(tmp_path, db):
    assert _import(tmp_path, db, "Z2,王芳,+8613800000002;+8613900000102,5517,1990,L2,8650.50,CNY,27,,,repeat,zh,\n").exit_code == 0
    store = Store(db)
    core.mark_phone(store, "Z2", "+8613800000002", "wrong_number", at=1795000000.0, actor="dialer")
    store.close()
    # the operator replaces the dead number with a new one
    res = _import(tmp_path, db, "Z2,王芳,+8613900000102;13700000999,5517,1990,L2,8650.50,CNY,27,,,repeat,zh,\n")
    assert res.exit_code == 0, res.output
    store = Store(db)
    phones = {p["phone"]: p["status"] for p in core.get_debtor(store, "Z2")["phones"]}
    assert phones == {"+8613900000102": "ok", "+8613700000999": "ok"}
    hist = core.phone_status_history(store, phone="+8613800000002")
    assert [h["status"] for h in hist] == ["wrong_number", "removed"]
    store.close()


def test_phone_status_of_an_unknown_number_and_missing_db(tmp_path, db):
    res = cli("debtors", "phone-status", "+8613800009999", "--db", str(db))
    assert res.exit_code == 2 and "no debtor has the number" in res.output
    res = cli("debtors", "phone-status", "+8613800009999", "--db", str(tmp_path / "nope.db"))
    assert res.exit_code != 0 and "no database" in res.output
    assert not (tmp_path / "nope.db").exists()


# -- 5. Chinese data as it comes -------------------------------------------------------------------

def test_national_numbers_need_the_campaign_region(tmp_path, db):
    res = _import(tmp_path, db, "Z3,李娜,13800000003,0942,1978,L3,100.00,CNY,12,,,first,zh,陈明|父亲|13600000305\n")
    assert res.exit_code == 0, res.output
    d = core.get_debtor(Store(db), "Z3")
    assert d["phones"][0]["phone"] == "+8613800000003" and d["contacts"][0]["phone"] == "+8613600000305"
    # without a default region a national number is refused, naming row and column
    from dialer.campaign.imports import ImportRejected, read_debtors_csv
    with pytest.raises(ImportRejected) as exc:
        read_debtors_csv("x.csv", HEADER + "Z3,李娜,13800000003,,,L3,100.00,CNY,12,,,first,zh,\n")
    assert "row 2, column phones" in str(exc.value) and "default_region" in str(exc.value)


def test_gbk_csv_is_named_then_read_with_encoding(tmp_path, db):
    rows = "Z4,刘洋,13800000004,7736,1995,L4,2100.00,CNY,52,,,wilful,zh,\n"
    res = _import(tmp_path, db, rows, encoding="gbk", name="gbk.csv")
    assert res.exit_code == 2
    assert "GBK" in res.output and "--encoding gbk" in res.output and "gbk.csv" in res.output
    res = _import(tmp_path, db, rows, "--encoding", "gbk", encoding="gbk", name="gbk.csv")
    assert res.exit_code == 0, res.output
    assert core.get_debtor(Store(db), "Z4")["name"] == "刘洋"


def test_currency_must_be_iso_4217_with_a_suggestion(tmp_path, db):
    res = _import(tmp_path, db, "Z5,陈静,13800000005,1268,1983,L5,100.00,RMB,70,,,repeat,zh,\n")
    assert res.exit_code == 2
    assert "row 2, column currency" in res.output and "'RMB' is not an ISO 4217" in res.output and "CNY" in res.output
    res = _import(tmp_path, db, "Z5,陈静,13800000005,1268,1983,L5,100.00,XYZ,70,,,repeat,zh,\n", "--json")
    out = json.loads(res.stdout)  # --json: one JSON object on stdout, nothing else
    assert out["ok"] is False and "XYZ" in out["error"]
    assert res.stderr == "" and len(res.stdout.strip().splitlines()) == 1  # printed once


def test_days_past_due_counts_from_due_date_at_dial_time():
    from datetime import date

    from dialer.campaign.dpd import days_past_due_on

    assert days_past_due_on("2026-11-08", 15, date(2026, 12, 1)) == 23
    assert days_past_due_on(None, 15, date(2026, 12, 1)) == 15
    assert days_past_due_on("2026-12-05", 0, date(2026, 12, 1)) == 0


# -- 6. small traps ---------------------------------------------------------------------------------

def test_campaign_validate_reports_every_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAMPAIGN.replace("profile: cn", "profile: xx").replace("line_limit: 2", "line_limit: 0")
                   .replace('caller_id: "+862161234567"', 'caller_id: "12345"')
                   .replace("script: m1_reminder}\n  - {name: m2", "script: m1_remindr}\n  - {name: m2"),
                   encoding="utf-8")
    res = cli("campaign", "validate", str(bad))
    assert res.exit_code == 2
    for where in (":2: profile:", ":7: caller_id:", ":9: line_limit:", ":11: segments[0].script:"):
        assert where in res.output, res.output
    assert "4 errors" in res.output and "did you mean 'm1_reminder'" in res.output
    res = cli("campaign", "validate", str(bad), "--json")
    out = json.loads(res.stdout)
    assert out["ok"] is False and len(out["errors"]) == 4 and res.stderr == ""
    ok = tmp_path / "ok.yaml"
    ok.write_text(CAMPAIGN, encoding="utf-8")
    assert cli("campaign", "validate", str(ok)).exit_code == 0


@pytest.mark.parametrize("args", [
    ["compliance", "explain", "--debtor", "Z1"],
    ["report"],
    ["qa", "show", "call-1"],
    ["qa", "report"],
    ["agent", "watch", "agent1", "--timeout", "0"],
    ["debtors", "show", "Z1"],
    ["script", "preview", "m1_reminder", "--debtor", "Z1"],
])
def test_read_only_commands_refuse_a_missing_db(tmp_path, args):
    missing = tmp_path / "typo.db"
    res = cli(*args, "--db", str(missing))
    assert res.exit_code != 0 and f"no database at {missing}" in res.output, res.output
    assert not missing.exists()


def test_unknown_agent_is_an_error(tmp_path, db):
    res = cli("agent", "pause", "bob", "--db", str(db))
    assert res.exit_code == 1 and "unknown collector 'bob'" in res.output and "dialer agent login bob" in res.output
    assert cli("agent", "login", "bob", "--db", str(db)).exit_code == 0
    assert cli("agent", "pause", "bob", "--db", str(db)).exit_code == 0


def test_screen_pop_shows_debtor_local_and_collector_time():
    from zoneinfo import ZoneInfo

    from dialer.cli.agent import render_screen_pop

    pop = {"call_id": "c1", "agent": "agent1", "debtor_id": "Z1", "at": 1795000000.0,  # 2026-11-18 11:06:40 UTC
           "context": {"name": "张伟", "amount_owed": "3200.00", "currency": "CNY", "days_past_due": 15}}
    text = render_screen_pop(pop, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/London"))
    assert "debtor Wed 19:06 Asia/Shanghai" in text and "you Wed 11:06 Europe/London" in text


def test_every_option_has_help():
    import click

    ctx = click.Context(main)
    missing = []

    def walk(cmd: click.Command, name: str) -> None:
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, sub), f"{name} {sub}")
            return
        missing.extend(f"{name} {p.opts[-1]}" for p in cmd.params
                       if isinstance(p, click.Option) and not p.hidden and not p.help)

    walk(main, "dialer")
    assert missing == []


def test_json_errors_print_once(tmp_path, db):
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + "Z1,张伟,+8613800000001,,,L1,abc,CNY,15,,,first,zh,\n", encoding="utf-8")
    res = cli("debtors", "import", str(f), "--campaign", "zh_t", "--db", str(db), "--json")
    assert res.exit_code == 2 and res.stderr == ""
    assert json.loads(res.stdout)["ok"] is False
    assert len(res.stdout.strip().splitlines()) == 1


def test_the_default_carrier_file_lists_every_chinese_example_number():
    """Loading zh_example and its debtors and running against `asterisk up` must not come back
    unallocated: only Z010's number is (deliberately, and says so)."""
    from dialer.campaign.imports import read_debtors_csv
    from dialer.telephony.carrier import load_behaviours

    rows = read_debtors_csv(REPO / "campaigns" / "examples" / "zh_debtors.csv", region="CN")
    numbers = {p for r in rows for p in r.phones} | {c.phone for r in rows for c in r.contacts}
    listed = load_behaviours(REPO / "campaigns" / "examples" / "carrier_behaviours.yaml").behaviours
    assert numbers <= set(listed), sorted(numbers - set(listed))
    assert [n for n in numbers if listed[n].kind == "unallocated"] == ["+8613800000010"]
