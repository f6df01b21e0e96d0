"""Complaint intake (docs/COMPLAINTS.md), on SQLite and PostgreSQL: a complaint is linked to the answered calls
before it (same debtor or number, within the window), opens one QA review of them that shows in the QA review
queue, and the review's finding puts the collector on the coaching list and into `dialer report` (complaints per
10,000 calls by campaign, collector and rule). A harassment complaint holds contact: the gate blocks with
`complaint.harassment_hold` until the hold is released. Every step goes out through the webhook outbox."""
from __future__ import annotations

import json
from datetime import timedelta
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
    assert ok.received_at == T0 - 3600 and ok.window_days == 14 and not ok.holds
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
