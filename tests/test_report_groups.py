"""`dialer report --format …`: figures by campaign, segment, collector and day; the formats agree; the HTML
file is self-contained; an empty range is an empty report."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.gate.rules import load_rules
from dialer.reports import figures
from dialer.store import Store, core
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent
NY = ZoneInfo("America/New_York")
DAY1 = datetime(2026, 11, 24, 10, 0, tzinfo=NY)


def _seed(tmp_path) -> Path:
    db = tmp_path / "d.db"
    store = Store(db)
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(REPO / "campaigns" / "examples" / "demo_debtors.csv"), camp.name)
    rules = load_rules(REPO / "compliance_rules.yaml")
    # debtor: (day offset, minutes, outcome, conversation, collector, talk seconds, abandoned)
    plan = {"D001": (0, 0, "answered", True, "agent1", 120, False), "D002": (0, 5, "busy", False, None, 0, False),
            "D003": (0, 10, "answered", True, None, 60, False), "D004": (0, 20, "answered", False, None, 5, True),
            "D005": (0, 30, "machine", False, None, 20, False), "D006": (1, 0, "answered", True, "agent2", 200, False),
            "D007": (1, 10, "answered", True, "agent1", 100, False)}
    for debtor, (day, minute, outcome, rpc, agent, talk, abandoned) in plan.items():
        at = DAY1 + timedelta(days=day, minutes=minute)
        acct = core.get_debtor(store, debtor)["accounts"][0]["account_id"]
        assert take_attempt(store, call_id=f"c-{debtor}", debtor_id=debtor, account_id=acct, campaign=camp.name,
                            phone=None, rules=rules, now=at).allowed
        answered = at.timestamp() + 5 if outcome in ("answered", "machine") else None
        core.update_attempt(store, f"c-{debtor}", state="ended", outcome=outcome, conversation=rpc,
                            machine=outcome == "machine", abandoned=abandoned, agent=agent,
                            answered_at=answered, ended_at=(answered or at.timestamp()) + talk)
    core.record_promise(store, "c-D001", "D001", "ACC-1001", "100.00", "2026-11-25", DAY1.timestamp())
    core.record_promise(store, "c-D006", "D006", "ACC-1006", "50.00", "2026-11-26", DAY1.timestamp())
    return db


def _run(db, *args):
    res = CliRunner().invoke(main, ["report", "--db", str(db), "--tz", "America/New_York", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_every_grouping_counts_what_happened(tmp_path):
    rows = [json.loads(x) for x in _run(_seed(tmp_path), "--format", "jsonl").splitlines()]
    by = {(r["group"], r.get("campaign"), r.get("segment"), r.get("collector"), r.get("day")): r for r in rows}
    camp = by[("campaign", "en_demo", None, None, None)]
    assert (camp["attempts"], camp["connects"], camp["machines"], camp["right_party_contacts"]) == (7, 5, 1, 4)
    assert camp["abandoned"] == 1 and camp["abandon_rate"] == 0.2 and camp["abandon_limit"] == 0.03
    assert camp["promises"] == 2 and camp["promised_amount"] == "150.00"
    assert camp["amd_rate"] == round(1 / 6, 4)
    assert camp["bot_containment"] == 0.4  # D003 and D004 ended with no collector, of five connects
    days = {r["day"]: r for r in rows if r["group"] == "day"}
    assert {d: r["attempts"] for d, r in days.items()} == {"2026-11-24": 5, "2026-11-25": 2}
    a1 = by[("collector", None, None, "agent1", None)]
    assert a1["attempts"] == 2 and a1["avg_handle_seconds"] == 110.0 and a1["promises"] == 1
    # talk 120 s + 100 s over the span from the first answer (day 1 10:00:05) to the last hang-up (day 2 10:11:45)
    span = (DAY1 + timedelta(days=1, minutes=10, seconds=105)).timestamp() - (DAY1.timestamp() + 5)
    assert a1["occupancy"] == round(220 / span, 4)
    assert sum(r["attempts"] for r in rows if r["group"] == "segment") == 7


def test_the_formats_hold_the_same_numbers(tmp_path):
    db = _seed(tmp_path)
    jl = [json.loads(x) for x in _run(db, "--format", "jsonl").splitlines()]
    cs = list(csv.DictReader(io.StringIO(_run(db, "--format", "csv"))))
    assert len(jl) == len(cs)
    for j, c in zip(jl, cs):
        for k in figures.COLUMNS:
            if k == "qa_hits":
                continue
            assert ("" if j[k] is None else str(j[k])) == c[k], (k, j, c)
    text = _run(db)
    assert "by collector" in text and "agent1" in text and "by day" in text and "2026-11-25" in text


def test_html_is_one_file_with_its_charts_and_nothing_to_fetch(tmp_path):
    db = _seed(tmp_path)
    out = tmp_path / "r.html"
    _run(db, "--format", "html", "--out", str(out))
    page = out.read_text()
    assert page.count("<svg") >= 5  # funnel, outcomes by hour, abandon vs limit, hits by rule, collectors
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "the report fetches something"
    assert "@import" not in page and "<script" not in page and "url(http" not in page
    assert out.stat().st_mode & 0o077 == 0  # reports name debtors' figures: private like the database


def test_an_empty_range_is_an_empty_report(tmp_path):
    db = _seed(tmp_path)
    for fmt in ("text", "html", "csv", "jsonl"):
        got = _run(db, "--since", "2025-01-01", "--until", "2025-01-02", "--format", fmt)
        if fmt == "jsonl":
            assert got == ""
        if fmt == "text":
            assert "no attempts in this range" in got


def test_bad_flags_name_the_flag(tmp_path):
    db = _seed(tmp_path)
    for args, flag in ((["--tz", "Mars/Base"], "--tz"), (["--since", "2026-11-25", "--until", "2026-11-24"], "--until"),
                       (["--format", "pdf"], "--format")):
        res = CliRunner().invoke(main, ["report", "--db", str(db), *args])
        assert res.exit_code == 2 and flag in res.output, res.output
