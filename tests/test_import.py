"""Debtor and payment CSV import: all or nothing, errors naming file, row and column; idempotent re-import."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.campaign.imports import ImportRejected, read_debtors_csv, read_payments_csv
from dialer.cli.campaign import campaign as campaign_cmd
from dialer.cli.campaign import debtors as debtors_cmd
from dialer.cli.campaign import payments as payments_cmd
from dialer.store import Store, core
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts")
GOOD_1 = "D1,Ann Lee,+12125550101;+12125550102,1234,1980,A1,100.00,USD,12,2026-11-10,America/New_York,first,en,"
GOOD_2 = ("D2,Bo Chen,+12125550103,5678,1975,A2,2500,USD,45,2026-10-01,America/Chicago,repeat,en,"
          "Cy Chen|sister|+12125550190")
GOOD_3 = "D3,Di Wu,+12125550104,,,A3,0,,95,,,wilful,,"


@pytest.fixture
def env(tmp_path: Path):
    """A database with the English demo campaign loaded (scripts as placeholders)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    db = tmp_path / "d.db"
    res = CliRunner().invoke(campaign_cmd, ["load", str(REPO / "campaigns" / "en_demo.yaml"), "--db", str(db),
                                            "--scripts-dir", str(scripts)])
    assert res.exit_code == 0, res.output + res.stderr
    return tmp_path, db


def _csv(tmp_path: Path, *lines: str, name: str = "debtors.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _import(db: Path, csv_path: Path, *extra: str):
    return CliRunner().invoke(debtors_cmd, ["import", str(csv_path), "--campaign", "en_demo", "--db", str(db), *extra])


def _count(db: Path, table: str) -> int:
    s = Store(db)
    try:
        return s.query_one(f"SELECT count(*) FROM {table}")[0]
    finally:
        s.close()


def test_good_csv_imports_everything(env):
    tmp, db = env
    res = _import(db, _csv(tmp, HEADER, GOOD_1, GOOD_2, GOOD_3), "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["debtors"] == 3 and out["new"] == 3
    s = Store(db)
    d1 = core.get_debtor(s, "D1")
    assert [p["phone"] for p in d1["phones"]] == ["+12125550101", "+12125550102"]
    assert d1["segment"] == "early" and d1["accounts"][0]["bucket"] == "M1" and d1["birth_year"] == 1980
    d2 = core.get_debtor(s, "D2")
    assert d2["contacts"] == [{"name": "Cy Chen", "relation": "sister", "phone": "+12125550190"}]
    assert d2["segment"] == "mid" and d2["timezone"] == "America/Chicago"
    d3 = core.get_debtor(s, "D3")
    assert d3["segment"] == "firm_wilful" and d3["accounts"][0]["currency"] == "USD" and d3["lang"] == "en"
    assert d3["id_last4"] is None and d3["accounts"][0]["bucket"] == "M3+"
    # an account with nothing owed is not offered to the hopper
    assert {c.debtor_id for c in core.due_debtors(s, "en_demo", 1e12, 10)} == {"D1", "D2"}
    s.close()


@pytest.mark.parametrize("bad_row,column,words", [
    ("D9,Eve,+1212555,1111,1990,A9,10,USD,5,2026-11-01,America/New_York,first,en,", "phones", "phone number"),
    ("D9,Eve,+12125550109,1111,1990,A9,-10.00,USD,5,2026-11-01,America/New_York,first,en,", "amount_owed", ">= 0"),
    ("D9,Eve,+12125550109,1111,1990,A9,10,USD,5,2026-13-45,America/New_York,first,en,", "due_date", "ISO date"),
    ("D9,Eve,+12125550109,1111,1990,A9,10,USD,5,2026-11-01,America/New_York,firts,en,", "customer_type",
     "did you mean 'first'"),
])
def test_one_bad_row_imports_nothing_and_names_row_and_column(env, bad_row, column, words):
    tmp, db = env
    path = _csv(tmp, HEADER, GOOD_1, GOOD_2, bad_row, GOOD_3)
    res = _import(db, path)
    assert res.exit_code == 2
    assert f"{path}: row 4, column {column}:" in res.stderr and words in res.stderr
    assert _count(db, "debtors") == 0 and _count(db, "accounts") == 0 and _count(db, "phones") == 0
    with pytest.raises(ImportRejected) as err:      # the same through the Python API
        read_debtors_csv(path)
    assert [(e.row, e.column) for e in err.value.errors] == [(4, column)]


def test_all_errors_collected_first_few_shown(env):
    tmp, db = env
    bad = [f"D{i},X,+1999,,,A{i},-1,USD,x,,,nobody,xx," for i in range(5)]
    res = _import(db, _csv(tmp, HEADER, *bad))
    assert res.exit_code == 2
    assert "25 errors" in res.stderr and "... and 20 more errors" in res.stderr
    assert _count(db, "debtors") == 0


def test_header_problems_are_row_1(env):
    tmp, db = env
    path = _csv(tmp, HEADER.replace("amount_owed", "amount_owned"), GOOD_1)
    res = _import(db, path)
    assert res.exit_code == 2
    assert "row 1, column amount_owned: unknown column (did you mean 'amount_owed'?)" in res.stderr
    assert "row 1, column amount_owed: required column is missing" in res.stderr


@pytest.mark.parametrize("cell_from,cell_to,column", [
    ("America/New_York", "America/Nowhere", "timezone"),
    (",1234,", ",12a4,", "id_last4"),
    (",1980,", ",1780,", "birth_year"),
    (",en,", ",fr,", "lang"),
    (",12,", ",twelve,", "days_past_due"),
    (",USD,", ",dollars,", "currency"),
])
def test_other_bad_cells(env, cell_from, cell_to, column):
    tmp, db = env
    assert cell_from in GOOD_1
    res = _import(db, _csv(tmp, HEADER, GOOD_1.replace(cell_from, cell_to, 1)))
    assert res.exit_code == 2 and f"row 2, column {column}:" in res.stderr


def test_bad_contact_and_unknown_campaign(env):
    tmp, db = env
    res = _import(db, _csv(tmp, HEADER, GOOD_2.replace("Cy Chen|sister|", "Cy Chen|")))
    assert res.exit_code == 2 and "row 2, column contacts:" in res.stderr
    res = CliRunner().invoke(debtors_cmd, ["import", str(_csv(tmp, HEADER, GOOD_1)), "--campaign", "nope",
                                           "--db", str(db)])
    assert res.exit_code == 2 and "unknown campaign 'nope'" in res.stderr


def test_reimport_is_idempotent_and_updates_in_place(env):
    tmp, db = env
    path = _csv(tmp, HEADER, GOOD_1, GOOD_2, GOOD_3)
    assert _import(db, path).exit_code == 0
    s = Store(db)
    core.set_next_allowed(s, "D1", 4_000_000_000.0)
    core.mark_phone(s, "D1", "+12125550102", "wrong_number")
    s.close()
    before = {t: _count(db, t) for t in ("debtors", "accounts", "phones", "contacts")}
    res = _import(db, path, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["updated"] == 3
    assert {t: _count(db, t) for t in before} == before

    # the institution's next file: new balance and a new number for D1
    changed = GOOD_1.replace("100.00", "80.00").replace("+12125550101;+12125550102", "+12125550105;+12125550102")
    assert _import(db, _csv(tmp, HEADER, changed, name="next.csv")).exit_code == 0
    s = Store(db)
    d1 = core.get_debtor(s, "D1")
    assert d1["accounts"][0]["amount_owed"] == "80.00"
    assert {p["phone"]: p["status"] for p in d1["phones"]} == {"+12125550105": "ok", "+12125550102": "wrong_number"}
    assert d1["next_allowed_at"] == 4_000_000_000.0      # dialling state survives re-import
    assert s.query_one("SELECT count(*) FROM debtors")[0] == 3
    s.close()


def test_account_cannot_move_to_another_debtor(env):
    tmp, db = env
    assert _import(db, _csv(tmp, HEADER, GOOD_1)).exit_code == 0
    res = _import(db, _csv(tmp, HEADER, GOOD_2.replace(",A2,", ",A1,"), name="x.csv"))
    assert res.exit_code == 2 and "row 2, column account_id:" in res.stderr


def test_example_csvs_import(tmp_path: Path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for sid in ("dtmf_verify", "m1_reminder", "m2_firm_instalment", "m3_plan_or_notice"):
        (scripts / f"{sid}.yaml").write_text("handler: dtmf_verify\n")
    db = tmp_path / "d.db"
    for camp, csv_name, n in (("en_demo", "demo_debtors.csv", 10), ("zh_example", "zh_debtors.csv", 10)):
        res = CliRunner().invoke(campaign_cmd, ["load", str(REPO / "campaigns" / f"{camp}.yaml"), "--db", str(db),
                                                "--scripts-dir", str(scripts)])
        assert res.exit_code == 0, res.stderr
        res = CliRunner().invoke(debtors_cmd, ["import", str(REPO / "campaigns" / "examples" / csv_name),
                                               "--campaign", camp, "--db", str(db), "--json"])
        assert res.exit_code == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["debtors"] == n and out["no_segment"] == []
    s = Store(db)
    demo = core.due_debtors(s, "en_demo", 1e12, 100)
    assert sorted(p for c in demo for p in c.phones) == [f"+121255501{i:02d}" for i in range(1, 11)]
    assert {c.timezone for c in demo} == {"America/New_York"} and all(c.birth_year for c in demo)
    assert {c.bucket for c in demo} >= {"M1", "M2", "M3", "M3+"}
    assert {c.customer_type for c in demo} == {"first", "repeat", "wilful"}
    zh = core.due_debtors(s, "zh_example", 1e12, 100)
    assert len(zh) == 10 and {c.lang for c in zh} == {"zh"} and all(p.startswith("+86") for c in zh for p in c.phones)
    s.close()


# -- payments ---------------------------------------------------------------------------------------

PAY_HEADER = "account_id,paid_at,amount,currency,reference"


def test_payments_import_all_or_nothing(env):
    tmp, db = env
    assert _import(db, _csv(tmp, HEADER, GOOD_1, GOOD_2)).exit_code == 0
    s = Store(db)
    pid = core.record_promise(s, "c1", "D1", "A1", "50", "2026-12-31", 1_790_000_000.0)  # 2026-09-21
    s.close()
    good = _csv(tmp, PAY_HEADER, "A1,2026-11-01,50.00,USD,TX-1", "A2,2026-11-02T10:00:00-05:00,10,USD,TX-2",
                name="pay.csv")
    res = CliRunner().invoke(payments_cmd, ["import", str(good), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["payments"] == 2 and out["promises_kept"] == [pid]

    again = CliRunner().invoke(payments_cmd, ["import", str(good), "--db", str(db)])
    assert again.exit_code == 2 and "row 2, column reference: duplicate reference 'TX-1'" in again.stderr
    assert _count(db, "payments") == 2

    for lines, column, row in (
        (["A1,2026-11-05,5,USD,TX-3", "A404,2026-11-05,5,USD,TX-4"], "account_id", 3),
        (["A1,yesterday,5,USD,TX-3"], "paid_at", 2),
        (["A1,2026-11-05,0,USD,TX-3"], "amount", 2),
        (["A1,2026-11-05,-5,USD,TX-3"], "reference", 2),   # a reversal names the payment it undoes
        (["A1,2026-11-05,5,CNY,TX-3"], "currency", 2),
        (["A1,2026-11-05,5,USD,TX-3", "A2,2026-11-05,5,USD,TX-3"], "reference", 3),
    ):
        path = _csv(tmp, PAY_HEADER, *lines, name="bad_pay.csv")
        res = CliRunner().invoke(payments_cmd, ["import", str(path), "--db", str(db)])
        assert res.exit_code == 2 and f"row {row}, column {column}:" in res.stderr, res.stderr
        assert _count(db, "payments") == 2


def test_payments_csv_parser_normalizes(tmp_path: Path):
    rows = read_payments_csv(_csv(tmp_path, PAY_HEADER, 'A1,2026-11-02T10:00:00-05:00,"1,234.50",usd,R-1'))
    assert len(rows) == 1
    r = rows[0]
    assert (r.row, str(r.amount), r.currency, r.paid_date) == (2, "1234.50", "USD", "2026-11-02")
