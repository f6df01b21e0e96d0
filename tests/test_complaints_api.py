"""POST/GET /api/complaints: the same validation and store as `dialer complaints add`; a bad request gets 400 naming
the field, an unknown debtor 404; phones leave masked."""
from __future__ import annotations

import pytest

from dialer.store import core
from tests.test_lender_api import Api
from tests.test_lender_payments import AT, CAMP


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    a = Api(tmp_path_factory.mktemp("capi"))
    store = a.store()
    core.import_debtors(store, [
        {"debtor_id": "K1", "name": "Debtor K1", "phones": "+12125550111", "id_last4": "1234", "birth_year": "1984",
         "account_id": "A-K1", "amount_owed": "100.00", "currency": "USD", "days_past_due": "10",
         "due_date": "2026-11-13", "timezone": "America/New_York", "customer_type": "first", "lang": "en",
         "contacts": ""}], CAMP.name)
    t = AT.timestamp() - 86400
    store.db["attempts"].insert({"id": "k-1", "debtor_id": "K1", "campaign": CAMP.name, "phone": "+12125550111",
                                 "placed_at": t, "answered_at": t + 4, "ended_at": t + 90, "state": "ended",
                                 "outcome": "answered", "agent": "bob"})
    store.close()
    try:
        yield a
    finally:
        a.stop()


def test_post_and_get_a_complaint(api):
    status, body = api("POST", "/complaints", json_body={
        "phone": "+12125550111", "channel": "regulator_hotline", "category": "harassment",
        "text": "They threatened me", "received_at": AT.isoformat(), "reference": "REG-1"})
    assert status == 201, body
    assert body["debtor_id"] == "K1" and [c["call_id"] for c in body["calls"]] == ["k-1"]
    assert body["review"]["status"] == "open" and body["hold"]["list"] == "harassment_hold"
    assert body["phone"] != "+12125550111" and body["phone"].endswith("0111")
    status, one = api("GET", f"/complaints/{body['id']}")
    assert status == 200 and one["calls"][0]["recordings"] == [] and one["calls"][0]["agent"] == "bob"
    status, listed = api("GET", "/complaints", params={"debtor_id": "K1"})
    assert status == 200 and [c["id"] for c in listed["complaints"]] == [body["id"]]
    status, err = api("GET", "/complaints/999")
    assert status == 404 and err["field"] == "complaint_id"


@pytest.mark.parametrize("body,field", [
    ({"debtor_id": "K1", "channel": "fax", "category": "attitude", "text": "x"}, "body.channel"),
    ({"debtor_id": "K1", "channel": "lender_cs", "category": "attitude"}, "body.text"),
    ({"channel": "lender_cs", "category": "attitude", "text": "x"}, "body.debtor_id"),
    ({"phone": "555", "channel": "lender_cs", "category": "attitude", "text": "x"}, "body.phone"),
    ({"debtor_id": "K1", "channel": "lender_cs", "category": "attitude", "text": "x", "received_at": "monday"},
     "body.received_at"),
    ({"debtor_id": "K1", "channel": "lender_cs", "category": "attitude", "text": "x", "mood": 1}, "body.mood"),
])
def test_bad_requests_name_the_field(api, body, field):
    status, err = api("POST", "/complaints", json_body=body)
    assert status == 400 and err["field"] == field, err
    assert err["error"].startswith(field), err


def test_unknown_debtor_is_404(api):
    status, err = api("POST", "/complaints", json_body={"debtor_id": "NOPE", "channel": "lender_cs",
                                                         "category": "attitude", "text": "x"})
    assert status == 404 and err["field"] == "body.debtor_id"


def _add(api, **extra):
    status, body = api("POST", "/complaints", json_body={"debtor_id": "K1", "channel": "lender_cs",
                                                         "received_at": AT.isoformat(), **extra})
    assert status == 201, body
    return body


def test_review_a_complaint_through_the_api(api):
    c = _add(api, category="attitude", text="rude collector")
    assert c["severity"] == "moderate" and c["due_at"] == AT.timestamp() + 120 * 3600   # us profile
    path = f"/complaints/{c['id']}/review"
    for body, field in [({"finding": "maybe", "by": "qa"}, "body.finding"),
                        ({"finding": "substantiated"}, "body.by"),
                        ({"finding": "substantiated", "by": "qa", "rule": "Rude!"}, "body.rule"),
                        ({"finding": "substantiated", "by": "qa", "call_id": "k-404"}, "body.call_id"),
                        ({"finding": "substantiated", "by": "qa", "responsible": "boss"}, "body.responsible"),
                        ({"finding": "substantiated", "by": "qa", "colour": 1}, "body.colour")]:
        status, err = api("POST", path, json_body=body)
        assert status == 400 and err["field"] == field, (body, err)
    status, out = api("POST", path, json_body={"finding": "substantiated", "by": "qa.wang", "note": "heard it"})
    assert status == 200, out
    assert (out["review"]["agent"], out["review"]["call_id"], out["review"]["responsible"]) == ("bob", "k-1",
                                                                                                "collector")
    status, err = api("POST", path, json_body={"finding": "substantiated", "by": "qa.wang"})
    assert status == 409 and "already closed" in err["error"]
    status, err = api("POST", "/complaints/999/review", json_body={"finding": "substantiated", "by": "qa"})
    assert status == 404 and err["field"] == "complaint_id"


def test_release_a_hold_through_the_api(api):
    first = _add(api, category="harassment", text="calls my office")
    second = _add(api, category="threat", text="and threatened me")
    assert first["hold_id"] == second["hold_id"]
    status, err = api("DELETE", f"/complaints/{first['id']}/hold", params={"by": "cs.li"})
    assert status == 400 and err["field"] == "reason"
    status, out = api("DELETE", f"/complaints/{first['id']}/hold", params={"by": "cs.li", "reason": "closed"})
    assert status == 200 and out["hold"]["released_by"] == "cs.li" and out["hold"]["in_force"], out
    assert second["id"] in out["hold"]["held_by"]
    status, err = api("DELETE", f"/complaints/{first['id']}/hold", params={"by": "cs.li", "reason": "again"})
    assert status == 409
    no_hold = _add(api, category="attitude", text="x")
    status, err = api("DELETE", f"/complaints/{no_hold['id']}/hold", params={"by": "cs.li", "reason": "x"})
    assert status == 404 and err["field"] == "complaint_id"
    status, listed = api("GET", "/complaints", params={"overdue_at": str(AT.timestamp() + 200 * 3600)})
    assert status == 200 and no_hold["id"] in [c["id"] for c in listed["complaints"]]
