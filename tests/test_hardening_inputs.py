"""Bad input is refused with one line naming the file, row or field and a non-zero exit, never misread
and never a traceback: YAML bombs, out-of-range numbers, ambiguous amounts, one debtor_id for two people,
a clock at the end of time, QA rules the daemon could not load, a daily cap switched off by `null`."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.log import RateLimited, escape, kv
from common.yamlfile import ConfigError, load_text
from dialer.cli import main
from dialer.gate.rules import load_rules
from tests.test_import import GOOD_1, GOOD_2, HEADER, _count, _csv, _import, env  # noqa: F401
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "compliance_rules.yaml"


def _one_line_error(res) -> str:
    text = (res.stderr or res.output).strip()
    assert res.exit_code != 0, text
    assert "Traceback" not in res.output + (res.stderr or ""), text
    return text


# -- YAML ----------------------------------------------------------------------------------------

def _laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for i in range(1, levels + 1):
        name = chr(ord("a") + i)
        text += f"{name}: &{name} [" + ",".join(["*" + prev] * 9) + "]\n"
        prev = name
    return text


def test_billion_laughs_is_refused_at_once_naming_the_file():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_text(_laughs(), "bomb.yaml")
    assert time.perf_counter() - t0 < 5  # it used to run 47 s to a MemoryError; any bound shows the refusal
    assert str(err.value).startswith("bomb.yaml:") and "alias" in str(err.value)


def test_too_many_alias_references_and_recursive_aliases_are_refused():
    many = "x: &x 1\nys: [" + ", ".join(["*x"] * 150) + "]\n"
    with pytest.raises(ConfigError, match="more than 100 alias"):
        load_text(many, "many.yaml")
    with pytest.raises(ConfigError, match="recursive alias"):
        load_text("a: &a [1, *a]\n", "loop.yaml")


def test_a_few_ordinary_anchors_still_work():
    loc = load_text("base: &b {start: '08:00', end: '21:00'}\nweekday: *b\nsat: *b\n", "ok.yaml")
    assert loc.data["sat"] == {"start": "08:00", "end": "21:00"}


def test_campaign_numbers_out_of_range_are_one_line_errors(tmp_path):
    src = (REPO / "campaigns" / "en_demo.yaml").read_text()
    cases = {"line_limit: 100000000000000000000000000000": "line_limit: must be <= 10,000",
             "line_limit: 1.0e+29": "line_limit: expected an integer"}
    for value, words in cases.items():
        bad = tmp_path / "c.yaml"
        lines = [value if ln.startswith("line_limit:") else ln for ln in src.splitlines()]
        bad.write_text("\n".join(lines) + "\n")
        res = CliRunner().invoke(main, ["campaign", "load", str(bad), "--db", str(tmp_path / "d.db")])
        text = _one_line_error(res)
        assert words in text and f"{bad}:" in text, text


# -- debtor CSVs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ['"1,50"', "1e400", "1.5e3", '"12,34,567"', "NaN", "Infinity", "-0x10"])
def test_amounts_only_in_the_documented_formats(env, amount):  # noqa: F811
    tmp, db = env
    res = _import(db, _csv(tmp, HEADER, GOOD_1.replace(",100.00,", f",{amount},")))
    text = _one_line_error(res)
    assert "row 2, column amount_owed" in text and "not an amount" in text, text
    assert _count(db, "debtors") == 0


@pytest.mark.parametrize("amount,stored", [("1,234.50", "1234.50"), ("1234.5", "1234.5"), ("0", "0")])
def test_documented_amount_formats_still_import(env, amount, stored):  # noqa: F811
    tmp, db = env
    res = _import(db, _csv(tmp, HEADER, GOOD_1.replace(",100.00,", f',"{amount}",')))
    assert res.exit_code == 0, res.output
    from dialer.store import Store
    s = Store(db)
    try:
        assert s.query_one("SELECT amount_owed FROM accounts")[0] in (stored, float(stored))
    finally:
        s.close()


def test_days_past_due_beyond_a_century_is_refused(env):  # noqa: F811
    tmp, db = env
    for dpd in ("100000000000000000000000", "36501"):
        res = _import(db, _csv(tmp, HEADER, GOOD_1.replace(",12,2026", f",{dpd},2026")))
        assert "column days_past_due" in _one_line_error(res)


@pytest.mark.parametrize("field,change", [
    ("name", ("Ann Lee", "Bob Lee")),
    ("phones", ("+12125550101;+12125550102", "+12125550199")),
    ("birth_year", (",1980,", ",1981,")),
])
def test_one_debtor_id_for_two_people_is_refused_naming_both_rows(env, field, change):  # noqa: F811
    tmp, db = env
    second = GOOD_1.replace(",A1,", ",A9,").replace(*change)
    res = _import(db, _csv(tmp, HEADER, GOOD_1, GOOD_2, second))
    text = _one_line_error(res)
    assert f"row 4, column {field}" in text and "row 2" in text and "debtor D1" in text, text
    assert _count(db, "debtors") == 0


def test_one_debtor_with_two_accounts_still_imports(env):  # noqa: F811
    tmp, db = env
    res = _import(db, _csv(tmp, HEADER, GOOD_1, GOOD_1.replace(",A1,", ",A9,")))
    assert res.exit_code == 0, res.output
    assert _count(db, "debtors") == 1 and _count(db, "accounts") == 2


# -- flags -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["compliance", "explain", "--debtor", "d1", "--at", "9999-12-31T23:59:59+00:00"],
    ["demo", "--at", "garbage"],
    ["demo", "--at", "0001-01-01T00:00:00+00:00"],
])
def test_clock_flags_out_of_range_are_usage_errors(tmp_path, args):
    res = CliRunner().invoke(main, args + (["--db", str(tmp_path / "d.db")] if args[0] == "compliance" else []))
    text = _one_line_error(res)
    assert "--at" in text, text


# -- rules -------------------------------------------------------------------------------------------

def _rules_with(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = RULES.read_text()
    assert old in text
    p = tmp_path / "rules.yaml"
    p.write_text(text.replace(old, new, count))
    return p


def test_check_rules_refuses_an_invalid_qa_regex_the_daemon_would_choke_on(tmp_path):
    bad = _rules_with(tmp_path, "- '\\b(i''m|i am|this is|calling from|with the|from the)\\s+",
                      "- '(unclosed\\b(i''m|i am|this is|calling from|with the|from the)\\s+")
    res = CliRunner().invoke(main, ["compliance", "check-rules", str(bad)])
    text = _one_line_error(res)
    assert res.exit_code == 2
    assert f"{bad}:" in text and "conduct.impersonation.patterns[0]" in text and "regular expression" in text


def test_daily_cap_null_is_an_error_and_absent_is_the_legal_default(tmp_path):
    res = CliRunner().invoke(main, ["compliance", "check-rules",
                                    str(_rules_with(tmp_path, "      daily_attempts: 3\n", "      daily_attempts: null\n"))])
    text = _one_line_error(res)
    assert "profiles.cn.gate.daily_attempts: null would turn the daily cap off" in text, text
    absent = _rules_with(tmp_path, "      daily_attempts: 3\n      count: attempts ", "      count: attempts ")
    assert load_rules(absent).profiles["cn"].gate.daily_attempts == 3  # CN-FREQ
    no_default = _rules_with(tmp_path, "      daily_attempts: 3\n      count: attempts\n", "      count: attempts\n")
    with pytest.raises(ConfigError, match="us.gate.daily_attempts: required"):
        load_rules(no_default)


# -- logs ---------------------------------------------------------------------------------------------

def test_network_values_are_logged_escaped():
    hostile = "abc\r\nfastagi.session call=forged\x00\u202egnp.exe\u2028x"
    line = kv("fastagi.no_route", path=hostile)
    assert "\r" not in line and "\n" not in line and "\x00" not in line and "\u202e" not in line
    assert "\\x0d\\x0a" in line and "\\u202e" in line and "\\u2028" in line
    assert escape("还款 ok") == "还款 ok"  # ordinary text, Chinese included, is left alone


def test_a_flood_of_rejections_is_a_summary_not_a_line_each(caplog):
    now = [0.0]
    lim = RateLimited(logging.getLogger("t.flood"), burst=5, period=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t.flood"):
        for i in range(1000):
            now[0] = i * 0.01
            lim.log("fastagi.bad_token", peer=("127.0.0.1", i))
        now[0] = 61.0
        lim.log("fastagi.bad_token", peer=("127.0.0.1", 1))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5 + 1 + 1
    assert "fastagi.bad_token.suppressed count=995" in lines[5]


def test_a_second_daemon_on_the_same_run_dir_is_refused_naming_the_first(tmp_path):
    from dialer.cli.run import _one_daemon_per_run_dir
    from dialer.telephony.pbx import PbxConnection

    db = tmp_path / "d.db"
    res = CliRunner().invoke(main, ["campaign", "load", str(REPO / "campaigns" / "en_demo.yaml"), "--db", str(db)])
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    PbxConnection(ami_port=1, ami_user="u", ami_secret="s", agi_port=2, agi_token="t", cdr_path="",
                  members=()).save(run_dir)
    first = _one_daemon_per_run_dir(run_dir)  # the first daemon holds the lock
    try:
        res = CliRunner().invoke(main, ["run", "--db", str(db), "--run-dir", str(run_dir), "--max-seconds", "1"])
        text = _one_line_error(res)
        assert res.exit_code == 2 and "another dialer daemon" in text and str(run_dir) in text, text
        import os
        assert f"pid {os.getpid()}" in text
    finally:
        first.close()
