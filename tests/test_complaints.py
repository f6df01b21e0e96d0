"""Complaint intake (docs/COMPLAINTS.md), on SQLite and PostgreSQL: a complaint is linked to the answered calls
before it (same debtor or number, within the window), opens one QA review of them that shows in the QA review
queue, and the review's finding puts the collector on the coaching list and into `dialer report` (complaints per
10,000 calls by campaign, collector and rule). A harassment complaint holds contact: the gate blocks with
`complaint.harassment_hold` until the hold is released. Every step goes out through the webhook outbox."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.qa.complaints import ComplaintError, parse_complaint, per_10k
from dialer.store import Store
from dialer.store.outbox import outbox_events
from dialer.store.qa import review_queue
from tests.engines import both_engines
from tests.test_lender_payments import AT, CAMP, RULES, _store

pytestmark = both_engines
T0 = AT.timestamp()
DAY = 86400.0


def _cli(db: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--db", str(db)])


def _call(store: Store, call_id: str, debtor: str, phone: str, agent: str | None, days_before: float,
          answered: bool = True) -> None:
    t = T0 - days_before * DAY
    store.db["attempts"].insert({"id": call_id, "debtor_id": debtor, "account_id": f"A-{debtor}",
                                 "campaign": CAMP.name, "phone": phone, "placed_at": t, "state": "ended",
                                 "outcome": "answered" if answered else "no_answer",
                                 "answered_at": t + 5 if answered else None, "ended_at": t + 60, "agent": agent,
                                 "conversation": 1 if answered else 0})


@pytest.fixture
def world(tmp_path):
    store = _store(tmp_path, ["D0", "D1", "D2", "D3"])  # phones +121255501NN
    _call(store, "c-old", "D1", "+12125550101", "alice", 20)           # outside the 14-day window
    _call(store, "c-1", "D1", "+12125550101", "bob", 3)
    _call(store, "c-2", "D1", "+12125550101", None, 2)                 # a bot call
    _call(store, "c-miss", "D1", "+12125550101", "bob", 1, answered=False)
    _call(store, "c-3", "D2", "+12125550102", "carol", 1)
    for i in range(20):
        _call(store, f"c-x{i}", "D0", "+12125550100", "carol", 5 + i / 10, answered=False)
    return store, tmp_path / "d.db"


def test_parse_names_the_field():
    ok = parse_complaint({"phone": "+12125550101", "channel": "lender_cs", "category": "attitude", "text": "rude",
                          "received_at": "2026-11-23T10:00:00-05:00"}, now=T0)
    assert ok.received_at == T0 - 3600 and ok.window_days is None   # None: the profile's complaints.window_days
    bad = [({"channel": "fax", "category": "attitude", "text": "x", "debtor_id": "D1"}, "channel"),
           ({"channel": "lender_cs", "category": "rude", "text": "x", "debtor_id": "D1"}, "category"),
           ({"channel": "lender_cs", "category": "attitude", "text": " ", "debtor_id": "D1"}, "text"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x"}, "debtor_id"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x", "phone": "12345"}, "phone"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x", "debtor_id": "D1",
             "received_at": "2026-11-23 10:00"}, "received_at"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x", "debtor_id": "D1",
             "received_at": "2027-01-01T00:00:00+00:00"}, "received_at"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x", "debtor_id": "D1", "window_days": 0},
            "window_days"),
           ({"channel": "lender_cs", "category": "attitude", "text": "x", "debtor_id": "D1", "colour": "red"},
            "colour")]
    for record, field in bad:
        with pytest.raises(ComplaintError) as e:
            parse_complaint(record, now=T0)
        assert e.value.field == field and str(e.value).startswith(field + ":"), (record, str(e.value))
    assert per_10k(1, 0) is None and per_10k(3, 1500) == 20.0


def test_a_complaint_links_its_calls_opens_a_review_and_the_finding_coaches_the_collector(world):
    store, db = world
    res = _cli(db, "complaints", "add", "--phone", "+12125550101", "--channel", "regulator_hotline",
               "--category", "attitude", "--text", "The collector shouted at me", "--at", AT.isoformat(),
               "--reference", "REG-77", "--by", "cs.li", "--json")
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)
    assert c["debtor_id"] == "D1"                       # found from the number
    assert [x["call_id"] for x in c["calls"]] == ["c-2", "c-1"]   # answered, in the window, newest first
    assert c["status"] == "review" and c["review"]["status"] == "open" and c["hold"] is None
    queue = [q for q in review_queue(store) if q.get("complaint_id") == c["id"]]
    assert {q["call_id"] for q in queue} == {"c-1", "c-2"} and {q["rule"] for q in queue} == {"complaint.attitude"}
    text = _cli(db, "qa", "report").stdout
    assert "complaint.attitude" in text and f"complaint {c['id']} via regulator_hotline: The collector" in text

    shown = _cli(db, "complaints", "show", str(c["id"]))
    assert shown.exit_code == 0 and "call c-1" in shown.stdout and "collector bob" in shown.stdout
    assert "REG-77" in shown.stdout and "QA review open" in shown.stdout

    # only one collector among the linked calls: the finding is about bob's call
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated", "--note", "heard it",
               "--by", "qa.wang", "--json")
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["review"]
    assert (r["status"], r["finding"], r["agent"], r["call_id"], r["rule"]) == \
        ("closed", "substantiated", "bob", "c-1", "complaint.attitude")
    again = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated")
    assert again.exit_code == 1 and "already closed" in again.output
    assert not [q for q in review_queue(store) if q.get("complaint_id") == c["id"]]

    coach = [json.loads(x) for x in _cli(db, "qa", "coaching", "--collector", "bob", "--json").stdout.splitlines()]
    assert [(x["agent"], x["call_id"], x["rule"], x["complaint_id"]) for x in coach] == \
        [("bob", "c-1", "complaint.attitude", c["id"])]
    assert _cli(db, "qa", "coaching", "--collector", "carol").stdout.strip() == "nobody on the coaching list"
    assert _cli(db, "qa", "coaching", "--done", str(coach[0]["id"])).exit_code == 0
    assert _cli(db, "qa", "coaching", "--json").stdout.strip() == ""

    kinds = [(e["kind"], e["payload"]) for e in outbox_events(store) if e["kind"].startswith("complaint.")]
    assert [k for k, _ in kinds] == ["complaint.received", "complaint.reviewed"]
    assert kinds[0][1]["calls"] == ["c-2", "c-1"] and kinds[0][1]["phone"] != "+12125550101"
    assert kinds[1][1]["agent"] == "bob" and kinds[1][1]["finding"] == "substantiated"


def test_the_finding_must_name_the_call_when_several_collectors_were_on_the_line(world):
    store, db = world
    _call(store, "c-4", "D1", "+12125550101", "dave", 0.5)
    c = json.loads(_cli(db, "complaints", "add", "--debtor", "D1", "--channel", "lender_cs", "--category",
                        "over_collection", "--text", "called me all week", "--at", AT.isoformat(), "--json").stdout)
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated")
    assert res.exit_code == 1 and "--call" in res.output and "bob, dave" in res.output
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated", "--call", "c-3")
    assert res.exit_code == 1 and "not linked" in res.output
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated", "--call", "c-4",
               "--rule", "conduct.threat", "--json")
    assert json.loads(res.stdout)["review"]["agent"] == "dave"
    c2 = json.loads(_cli(db, "complaints", "add", "--debtor", "D2", "--channel", "app", "--category", "attitude",
                         "--text", "x", "--at", AT.isoformat(), "--json").stdout)
    assert _cli(db, "complaints", "review", str(c2["id"]), "--finding", "not_substantiated").exit_code == 0
    assert [x["agent"] for x in map(json.loads, _cli(db, "qa", "coaching", "--json").stdout.splitlines())] == ["dave"]

    rep = json.loads(_cli(db, "report", "--json").stdout.splitlines()[0])["complaints"]
    # 26 calls in the campaign (1 + 20 for D0, 4 + c-4 for D1 ... ), 2 complaints
    calls = store.query_one("SELECT count(*) AS n FROM attempts")["n"]
    assert rep["complaints"] == 2 and rep["calls"] == calls
    assert rep["per_10k_calls"] == round(2 * 10_000 / calls, 1)
    assert rep["by_rule"] == {"conduct.threat": {"complaints": 1, "per_10k_calls": round(10_000 / calls, 1)}}
    assert rep["by_collector"]["dave"] == {"complaints": 1, "calls": 1, "per_10k_calls": 10000.0}
    assert rep["by_collector"]["carol"]["complaints"] == 1     # not substantiated, still on her call
    assert rep["by_category"] == {"over_collection": 1, "attitude": 1}
    text = _cli(db, "report").stdout
    assert "complaints 2" in text and "conduct.threat 1" in text and "dave 1/1" in text


def test_a_harassment_complaint_holds_contact_with_its_own_rule_id_until_released(world):
    store, db = world
    res = _cli(db, "complaints", "add", "--debtor", "D3", "--channel", "regulator_hotline", "--category",
               "harassment", "--text", "they keep calling my mother", "--at", AT.isoformat(), "--json")
    c = json.loads(res.stdout)
    assert c["hold"]["list"] == "harassment_hold" and c["hold"]["by"] == "debtor" and c["hold"]["released_at"] is None
    d = take_attempt(store, call_id="g-1", debtor_id="D3", account_id="A-D3", campaign=CAMP.name, phone=None,
                     rules=RULES, now=AT + timedelta(hours=3))
    assert not d.allowed and d.rule_id == "complaint.harassment_hold", (d.rule_id, d.reason)
    assert "harassment_hold" in d.reason and f"complaint {c['id']}" in d.reason
    # a hold by number when the complaint names only a number nobody is known by
    n = json.loads(_cli(db, "complaints", "add", "--phone", "+12125550199", "--channel", "lender_cs",
                        "--category", "harassing_relatives", "--text", "stop calling me about my cousin",
                        "--json").stdout)
    assert n["debtor_id"] is None and n["status"] == "no_calls" and n["hold"]["by"] == "phone"
    assert "+12125550199" not in json.dumps(n["hold"])

    res = _cli(db, "complaints", "release", str(c["id"]), "--reason", "regulator closed the case", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["hold"]["released_at"] is not None
    assert take_attempt(store, call_id="g-2", debtor_id="D3", account_id="A-D3", campaign=CAMP.name, phone=None,
                        rules=RULES, now=AT + timedelta(days=1, hours=1)).allowed
    kinds = [e["kind"] for e in outbox_events(store) if e["kind"].startswith("complaint.")]
    assert kinds == ["complaint.received", "complaint.received", "complaint.hold_released"]


def test_bad_input_names_the_option(world):
    _, db = world
    res = _cli(db, "complaints", "add", "--channel", "lender_cs", "--category", "attitude", "--text", "x")
    assert res.exit_code == 1 and "--debtor: give a debtor_id or a phone" in res.output
    res = _cli(db, "complaints", "add", "--debtor", "NOPE", "--channel", "lender_cs", "--category", "attitude",
               "--text", "x", "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["error"] == "--debtor: no debtor 'NOPE'"
    res = _cli(db, "complaints", "add", "--debtor", "D1", "--channel", "lender_cs", "--category", "attitude",
               "--text", "x", "--at", "yesterday")
    assert res.exit_code == 1 and "--at: not an ISO-8601 time" in res.output
    res = _cli(db, "complaints", "add", "--debtor", "D1", "--channel", "fax", "--category", "attitude", "--text", "x")
    assert res.exit_code == 2 and "--channel" in res.output


def _owned(store: Store, owner: str) -> None:
    """Give the campaign an owner (`owner:` in its YAML)."""
    from dataclasses import replace

    from dialer.store import core
    core.upsert_campaign(store, replace(CAMP, raw=dict(CAMP.raw, owner=owner), owner=owner))


def test_a_frequency_complaint_links_every_attempt_and_shows_them_against_the_caps(world):
    store, db = world
    _owned(store, "ops.lee")
    # D0: 20 unanswered attempts 5.0-6.9 days before (the us profile: 3 a day, 3 a number a day, 7 in 7 days)
    res = _cli(db, "complaints", "add", "--debtor", "D0", "--channel", "regulator_hotline", "--category",
               "over_collection", "--text", "they call me all the time and nobody speaks", "--at", AT.isoformat(),
               "--json")
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)
    assert c["link_scope"] == "attempts" and len(c["calls"]) == 20 and c["status"] == "review"
    p = c["attempts"]
    assert p["attempts"] == 20 and p["answered"] == 0 and p["zone"] == "America/New_York"
    assert sum(d["attempts"] for d in p["days"]) == 20 and p["peak_day"] == max(d["attempts"] for d in p["days"])
    assert p["caps"] == {"cap.daily": 3, "cap.number_daily": 3, "cap.7in7": 7}
    assert p["held"] == {"cap.daily": False, "cap.number_daily": False, "cap.7in7": False}   # the caps did not hold
    # over_collection is moderate; through the regulator's hotline one grade up: serious, due in the us 24 h
    assert c["severity"] == "serious" and c["due_at"] == T0 + 24 * 3600 and c["profile"] == "us"
    shown = _cli(db, "complaints", "show", str(c["id"])).stdout
    assert "20 linked attempt(s), answered or not" in shown and "cap.daily 3: EXCEEDED" in shown
    assert "severity serious (profile us)" in shown
    # the QA queue gets one item for it (no recording to open), not twenty
    items = [q for q in review_queue(store) if q.get("complaint_id") == c["id"]]
    assert len(items) == 1 and items[0]["severity"] == "serious" and items[0]["due_at"] == c["due_at"]

    # an answered-calls complaint about the same debtor still links answered calls only
    a = json.loads(_cli(db, "complaints", "add", "--debtor", "D0", "--channel", "lender_cs", "--category",
                        "attitude", "--text", "x", "--at", AT.isoformat(), "--json").stdout)
    assert a["link_scope"] == "answered" and a["calls"] == [] and a["attempts"] is None
    assert a["severity"] == "moderate" and a["due_at"] == T0 + 120 * 3600

    # no collector on the line: the finding goes to the campaign's owner, booked under the broken cap
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated", "--by", "qa.wang", "--json",
               "--at", (AT + timedelta(hours=2)).isoformat())
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["review"]
    assert (r["responsible"], r["agent"], r["owner"], r["campaign"], r["rule"]) == \
        ("owner", None, "ops.lee", CAMP.name, "cap.daily")
    coach = [json.loads(x) for x in _cli(db, "qa", "coaching", "--json").stdout.splitlines()]
    assert [(x["agent"], x["kind"], x["campaign"], x["rule"]) for x in coach] == \
        [("ops.lee", "campaign_owner", CAMP.name, "cap.daily")]
    assert "campaign owner" in _cli(db, "qa", "coaching").stdout
    rep = json.loads(_cli(db, "report", "--json", "--until", "2026-11-24T12:00:00-05:00").stdout.splitlines()[0])
    cp = rep["complaints"]
    assert cp["against_owner"] == 1 and "carol" not in cp["by_collector"] and cp["closed_late"] == 0
    assert cp["by_severity"] == {"serious": 1, "moderate": 1}
    reviewed = [e["payload"] for e in outbox_events(store) if e["kind"] == "complaint.reviewed"]
    assert reviewed[-1]["responsible"] == "owner" and reviewed[-1]["owner"] == "ops.lee"


def test_a_collector_call_among_the_attempts_can_still_be_named(world):
    store, db = world
    c = json.loads(_cli(db, "complaints", "add", "--debtor", "D1", "--channel", "lender_cs", "--category",
                        "harassment", "--text", "calls every hour", "--at", AT.isoformat(), "--json").stdout)
    assert sorted(x["call_id"] for x in c["calls"]) == ["c-1", "c-2", "c-miss"]   # c-miss unanswered, linked too
    # bob is the only collector: by default the finding is his; the owner can be named instead
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "substantiated", "--responsible", "owner",
               "--json")
    r = json.loads(res.stdout)["review"]
    assert r["responsible"] == "owner" and r["owner"] == f"owner of {CAMP.name}" and r["agent"] is None
    res = _cli(db, "complaints", "review", str(c["id"]), "--finding", "maybe")
    assert res.exit_code == 2 and "--finding" in res.output
    c2 = json.loads(_cli(db, "complaints", "add", "--debtor", "D1", "--channel", "lender_cs", "--category",
                         "attitude", "--text", "rude", "--at", AT.isoformat(), "--json").stdout)
    res = _cli(db, "complaints", "review", str(c2["id"]), "--finding", "substantiated", "--rule", "Rude!")
    assert res.exit_code == 1 and "--rule: 'Rude!' is not a rule id" in res.output
    res = _cli(db, "complaints", "review", str(c2["id"]), "--finding", "substantiated", "--call", "c-2",
               "--responsible", "collector")
    assert res.exit_code == 1 and "--responsible: call c-2 had no collector" in res.output


def test_overdue_reviews_are_listed_and_counted(world):
    store, db = world
    late = json.loads(_cli(db, "complaints", "add", "--debtor", "D2", "--channel", "regulator_hotline",
                           "--category", "threat", "--text", "he said they would come to my door",
                           "--at", AT.isoformat(), "--json").stdout)
    assert late["severity"] == "serious" and late["due_at"] == T0 + 24 * 3600
    on_time = json.loads(_cli(db, "complaints", "add", "--debtor", "D1", "--channel", "app", "--category", "other",
                              "--text", "x", "--at", AT.isoformat(), "--json").stdout)
    assert on_time["severity"] == "minor" and on_time["due_at"] == T0 + 360 * 3600
    next_day = (AT + timedelta(hours=25)).isoformat()
    listed = [json.loads(x) for x in _cli(db, "complaints", "list", "--overdue", "--at", next_day,
                                          "--json").stdout.splitlines()]
    assert [x["id"] for x in listed] == [late["id"]]
    text = _cli(db, "complaints", "list", "--at", next_day).stdout
    assert "serious" in text and "OVERDUE" in text.splitlines()[0] and "OVERDUE" not in text.splitlines()[1]
    assert _cli(db, "complaints", "list", "--overdue", "--at", AT.isoformat()).stdout.strip() == "no overdue reviews"
    rep = json.loads(_cli(db, "report", "--json", "--until", next_day).stdout.splitlines()[0])["complaints"]
    assert rep["overdue"] == 1 and rep["open_reviews"] == 2
    # closed after its due time: no longer overdue, counted as closed late
    from dialer.store.complaints import close_review
    close_review(store, late["id"], "not_substantiated", reviewer="qa", now=T0 + 30 * 3600)
    rep = json.loads(_cli(db, "report", "--json", "--until", next_day).stdout.splitlines()[0])["complaints"]
    assert rep["overdue"] == 0 and rep["closed_late"] == 1
    assert "overdue 0" in _cli(db, "report", "--until", next_day).stdout


def test_releasing_one_complaint_keeps_the_hold_another_complaint_put(world):
    store, db = world
    first = json.loads(_cli(db, "complaints", "add", "--debtor", "D3", "--channel", "regulator_hotline",
                            "--category", "harassment", "--text", "they call my office", "--at",
                            AT.isoformat(), "--json").stdout)
    second = json.loads(_cli(db, "complaints", "add", "--debtor", "D3", "--channel", "lender_cs", "--category",
                             "threat", "--text", "and threatened my mother", "--at",
                             (AT + timedelta(hours=1)).isoformat(), "--json").stdout)
    assert first["hold_id"] == second["hold_id"] and second["hold"]["held_by"] == [first["id"], second["id"]]
    res = _cli(db, "complaints", "release", str(first["id"]), "--reason", "regulator closed it", "--json")
    out = json.loads(res.stdout)["hold"]
    assert out["released_at"] is not None and out["in_force"] and out["held_by"] == [second["id"]]
    assert "still hold it" in _cli(db, "complaints", "show", str(first["id"])).stdout
    d = take_attempt(store, call_id="h-1", debtor_id="D3", account_id="A-D3", campaign=CAMP.name, phone=None,
                     rules=RULES, now=AT + timedelta(hours=3))
    assert not d.allowed and d.rule_id == "complaint.harassment_hold" and f"complaint {second['id']}" in d.reason
    again = _cli(db, "complaints", "release", str(first["id"]), "--reason", "twice")
    assert again.exit_code == 1 and "already released" in again.output
    assert _cli(db, "complaints", "release", str(second["id"]), "--reason", "settled").exit_code == 0
    assert take_attempt(store, call_id="h-2", debtor_id="D3", account_id="A-D3", campaign=CAMP.name, phone=None,
                        rules=RULES, now=AT + timedelta(days=1, hours=1)).allowed
    released = [e["payload"] for e in outbox_events(store) if e["kind"] == "complaint.hold_released"]
    assert [(x["lifted"], x["still_held_by"]) for x in released] == [(False, [second["id"]]), (True, [])]


def test_the_complaints_settings_are_checked_with_file_line_and_field():
    from dialer.gate.rules import RulesError, rules_from_text

    text = (Path(__file__).resolve().parent.parent / "compliance_rules.yaml").read_text(encoding="utf-8")
    bad = text.replace("hold: [harassment, harassing_relatives, threat]", "hold: [harassment, shouting]", 1)
    with pytest.raises(RulesError) as e:
        rules_from_text(bad, "r.yaml")
    assert "profiles.cn.complaints.hold[1]: unknown category 'shouting'" in e.value.render()
    assert ":" in e.value.render().split(" ")[0]   # r.yaml:LINE:
    r = rules_from_text(text.replace("due_hours: {serious: 2,", "due_hours: {serious: 6,", 1), "r.yaml")
    assert r.profiles["cn"].complaints.due_hours["serious"] == 6
    assert r.profiles["cn"].complaints.grade("attitude", "regulator_hotline") == "serious"
    assert r.profiles["cn"].complaints.grade("other", "lender_cs") == "minor"


def test_attempt_pattern_counts_our_attempts_per_local_day_against_the_caps():
    from zoneinfo import ZoneInfo

    from dialer.qa.complaints import attempt_pattern

    cn = RULES.profiles["cn"].gate   # 3 a day, 6 a number a day, no 7-day cap
    sh = ZoneInfo("Asia/Shanghai")
    base = datetime(2026, 11, 20, 23, 30, tzinfo=sh).timestamp()   # 23:30 local: the next hour is the next day
    rows = [{"placed_at": base + i * 600, "phone": "+8613800000001", "answered_at": None} for i in range(5)]
    rows.append({"placed_at": base + 60, "phone": "+8613800000001", "answered_at": base + 70, "inbound": 1})
    p = attempt_pattern(rows, sh, cn)
    assert p["attempts"] == 5 and [(d["date"], d["attempts"]) for d in p["days"]] == \
        [("2026-11-20", 3), ("2026-11-21", 2)]                       # the call-back is not our attempt
    assert (p["peak_day"], p["peak_number_day"], p["peak_7days"]) == (3, 3, 5)
    assert p["held"] == {"cap.daily": True, "cap.number_daily": True, "cap.7in7": None}
