"""Hopper ranking from the store: outcomes change the order (a broken promise moves a debtor, a cease-contact
removes them), best time to call from contact history, and the no-model fallback."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dialer.campaign.config import load_campaign
from dialer.store import Store, core
from dialer.store import strategy as sstore
from dialer.strategy.features import Contact, DebtorHistory
from dialer.strategy.model import PropensityModel, train_model
from dialer.strategy.rank import best_time_to_call, rank_candidates
from dialer.strategy.simulate import SimConfig, training_data
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

CAMPAIGN = Path(__file__).resolve().parents[1] / "campaigns" / "examples" / "strategy_example.yaml"
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)  # 19:00 in Shanghai
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def model() -> PropensityModel:
    """A propensity model trained on store features of a synthetic past campaign (small and quick)."""
    return train_model(training_data(SimConfig(train_debtors=4000), seed=0), seed=0,
                       rule_feature="days_past_due", families=("hgb", "logit")).model


def _debtor(i: int, amount: str, dpd: int, ctype: str = "first") -> dict:
    return {"debtor_id": f"D{i}", "name": f"测试{i}", "phones": f"+861380000{i:04d}", "id_last4": "1234",
            "birth_year": "1985", "account_id": f"A{i}", "amount_owed": amount, "currency": "CNY",
            "days_past_due": str(dpd), "due_date": "", "timezone": TZ, "customer_type": ctype, "lang": "zh",
            "contacts": ""}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "d.db")
    cfg = load_campaign(CAMPAIGN)
    core.upsert_campaign(st, cfg, now=NOW.timestamp() - 86400 * 10)
    return st


def _call(st: Store, call_id: str, debtor: str, at: datetime, *, reached: bool, disposition: str | None = None):
    with st.transaction() as conn:
        core.insert_attempt(conn, call_id=call_id, debtor_id=debtor, account_id=f"A{debtor[1:]}",
                            campaign="strategy_example", phone=f"+861380000{int(debtor[1:]):04d}",
                            placed_at=at.timestamp())
    core.update_attempt(st, call_id, at=at.timestamp() + 60, state="ended",
                        outcome="answered" if reached else "no_answer", conversation=int(reached),
                        answered_at=at.timestamp() + 5 if reached else None, ended_at=at.timestamp() + 60,
                        disposition=disposition)


def _order(st: Store, model, candidates=None) -> list[str]:
    cands = candidates if candidates is not None else core.due_debtors(st, "strategy_example", NOW.timestamp(), 50)
    hist = sstore.histories(st, [c["debtor_id"] for c in cands])
    return [r.candidate["debtor_id"] for r in rank_candidates(cands, model, NOW, hist, default_tz=TZ)]


def test_broken_promise_moves_debtor_and_cease_removes(store: Store, model: PropensityModel) -> None:
    # two look-alike debtors: D1 owes slightly more, so it ranks first while both histories are equal
    core.import_debtors(store, [_debtor(1, "3000.00", 20), _debtor(2, "2950.00", 20), _debtor(3, "800.00", 40)],
                        "strategy_example", now=NOW.timestamp() - 86400 * 9)
    day = NOW - timedelta(days=6)
    for d, due in (("D1", day + timedelta(days=3)), ("D2", NOW + timedelta(days=2))):
        _call(store, f"c-{d}", d, day, reached=True, disposition="promise")
        core.record_promise(store, f"c-{d}", d, f"A{d[1:]}", None, due.date(), day.timestamp())
    before = _order(store, model)
    assert before.index("D1") < before.index("D2")

    # D1's promised date passes without a payment: the nightly settlement marks it broken (D2's is not due yet)
    core.settle_promises(store, NOW.date(), at=NOW.timestamp())
    assert [p["status"] for p in core.promises_for(store, debtor_id="D1")] == ["broken"]
    assert [p["status"] for p in core.promises_for(store, debtor_id="D2")] == ["open"]
    hist = sstore.histories(store, ["D1"])["D1"]
    assert DebtorHistory.coerce(hist).promises_broken == 1
    after = _order(store, model)
    assert after.index("D1") > after.index("D2"), (before, after)

    # D3 asks us to stop calling: gone from the ranking, even from a hopper list fetched before the request
    stale = core.due_debtors(store, "strategy_example", NOW.timestamp(), 50)
    core.add_contact_request(store, "D3", "cease", {}, NOW.timestamp(), "operator")
    assert "D3" in [c["debtor_id"] for c in stale]
    assert "D3" not in _order(store, model, stale)
    assert "D3" not in _order(store, model)


def test_ranking_scores_and_saves_treatments(store: Store, model: PropensityModel) -> None:
    core.import_debtors(store, [_debtor(1, "3000.00", 20), _debtor(2, "500.00", 20, "wilful")],
                        "strategy_example", now=NOW.timestamp() - 86400)
    ranked = rank_candidates(core.due_debtors(store, "strategy_example", NOW.timestamp(), 50), model, NOW,
                             sstore.histories(store, ["D1", "D2"]), default_tz=TZ)
    assert [r.source for r in ranked] == ["model", "model"]
    for r in ranked:
        assert 0 < r.propensity < 1 and 0 < r.contact_probability < 1
        assert r.expected_recovery == pytest.approx(r.contact_probability * r.propensity
                                                    * float(r.candidate["amount_owed"]))
    assert {r.candidate["debtor_id"]: r.quadrant for r in ranked} == {"D1": "willing_able", "D2": "unwilling_able"}
    rows = [{"debtor_id": r.candidate["debtor_id"], "propensity": r.propensity, "quadrant": r.quadrant,
             "bucket": r.candidate["bucket"], "treatment": {"script": "m1_reminder"}, "best_hour": r.best_hour,
             "model": model.meta["data_hash"], "reason": "nightly"} for r in ranked]
    assert sstore.save_scores(store, rows, NOW.timestamp()) == 2
    saved = sstore.get_score(store, "D2")
    assert saved["quadrant"] == "unwilling_able" and saved["treatment"] == {"script": "m1_reminder"}
    assert core.get_debtor(store, "D2")["propensity"] == pytest.approx(ranked[1].propensity
                                                                        if ranked[1].candidate["debtor_id"] == "D2"
                                                                        else ranked[0].propensity)


def test_best_time_to_call_follows_contact_history() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(TZ)
    evening = DebtorHistory([Contact(datetime(2026, 11, d, h, 10, tzinfo=tz).timestamp(), h >= 18)
                             for d in (16, 17, 18) for h in (10, 14, 19)])
    assert best_time_to_call(evening, tz) == 19
    morning = DebtorHistory([Contact(datetime(2026, 11, d, h, 10, tzinfo=tz).timestamp(), h == 9)
                             for d in (16, 17, 18) for h in (9, 14, 19)])
    assert best_time_to_call(morning, tz) in (8, 9)
    # at 19:00 local the evening debtor outranks an otherwise identical morning debtor, and vice versa at 09:00
    cands = [{"debtor_id": "E", "amount_owed": 1000, "days_past_due": 10, "bucket": "M1", "customer_type": "first",
              "timezone": TZ, "propensity": 0.5},
             {"debtor_id": "M", "amount_owed": 1000, "days_past_due": 10, "bucket": "M1", "customer_type": "first",
              "timezone": TZ, "propensity": 0.5}]
    hist = {"E": evening, "M": morning}
    at_19 = rank_candidates(cands, None, datetime(2026, 11, 23, 19, 0, tzinfo=tz), hist)
    at_09 = rank_candidates(cands, None, datetime(2026, 11, 23, 9, 0, tzinfo=tz), hist)
    assert [r.candidate["debtor_id"] for r in at_19] == ["E", "M"] and at_19[0].source == "stored"
    assert [r.candidate["debtor_id"] for r in at_09] == ["M", "E"]


def test_fallback_without_model_is_days_past_due_then_amount() -> None:
    cands = [{"debtor_id": "A", "amount_owed": 100, "days_past_due": 40},
             {"debtor_id": "B", "amount_owed": 900, "days_past_due": 5},
             {"debtor_id": "C", "amount_owed": 5000, "days_past_due": 40},
             {"debtor_id": "D", "amount_owed": 50, "days_past_due": 5}]
    ranked = rank_candidates(cands, None, NOW, {"D": [{"placed_at": NOW.timestamp() - 3600, "outcome": "answered",
                                                       "disposition": "cease"}]})
    assert [r.candidate["debtor_id"] for r in ranked] == ["B", "C", "A"]
    assert all(r.source == "fallback" for r in ranked) and rank_candidates([], None, NOW, {}) == []


def test_rescore_saves_scores_and_treatments_from_the_campaign_table(store: Store, model: PropensityModel,
                                                                      tmp_path: Path) -> None:
    from dialer.strategy.rescore import load_model_or_none, rescore

    core.import_debtors(store, [_debtor(1, "3000.00", 20), _debtor(2, "500.00", 75, "wilful"),
                                _debtor(3, "1200.00", 10, "repeat")], "strategy_example",
                        now=NOW.timestamp() - 86400)
    _call(store, "c-2", "D2", NOW - timedelta(days=2), reached=True, disposition="hardship")
    table = load_campaign(CAMPAIGN).strategy
    saved = rescore(store, model, table, NOW, campaign="strategy_example", reason="nightly", default_tz=TZ)
    assert {r["debtor_id"] for r in saved} == {"D1", "D2", "D3"}
    by_id = {r["debtor_id"]: r for r in saved}
    assert by_id["D2"]["quadrant"] == "unwilling_unable" and by_id["D2"]["bucket"] == "M3"
    assert by_id["D2"]["treatment"]["escalation"][-1]["channel"] == "legal_review"
    assert all(r["model"].startswith(model.meta["family"]) for r in saved)
    stored = sstore.get_score(store, "D2")
    assert stored["treatment"] == by_id["D2"]["treatment"] and stored["reason"] == "nightly"
    # the store's own hopper query now orders by the saved propensity
    due = core.due_debtors(store, "strategy_example", NOW.timestamp(), 10)
    scores = [c["propensity"] for c in due]
    assert None not in scores and scores == sorted(scores, reverse=True)
    # after an outcome, only that debtor is re-scored
    again = rescore(store, model, table, NOW, debtor_ids=["D3"], reason="outcome", default_tz=TZ)
    assert [r["debtor_id"] for r in again] == ["D3"] and sstore.get_score(store, "D1")["reason"] == "nightly"
    # without a model the saved scores are used ...
    kept = rescore(store, None, table, NOW, campaign="strategy_example", default_tz=TZ)
    assert all(r["model"] == "stored" for r in kept)
    assert [r["propensity"] for r in kept] == pytest.approx([by_id[r["debtor_id"]]["propensity"] for r in kept])
    # ... and on a fresh checkout (no model, nothing scored yet) debtors are still ranked and saved, unscored
    assert load_model_or_none(tmp_path / "none") is None
    for d in ("D1", "D2", "D3"):
        core.set_propensity(store, d, None)
    fallback = rescore(store, None, table, NOW, campaign="strategy_example", default_tz=TZ)
    assert [r["debtor_id"] for r in fallback] == ["D3", "D1", "D2"]  # days past due 10, 20, 75
    assert all(r["propensity"] is None and r["model"] == "fallback" for r in fallback)


def test_zone_comes_from_the_phone_number_when_the_record_has_none() -> None:
    from zoneinfo import ZoneInfo

    from dialer.gate.zones import candidate_zone

    assert candidate_zone({"timezone": None, "phones": ("+8613800138000",)}, "UTC") == ZoneInfo("Asia/Shanghai")
    assert candidate_zone({"timezone": "", "phones": "+12125551234;+8613800138000"}, "UTC") == \
        ZoneInfo("America/New_York")
    assert candidate_zone({"timezone": "Europe/London", "phones": ("+8613800138000",)}, "UTC") == \
        ZoneInfo("Europe/London")
    assert candidate_zone({"phones": ()}, "Asia/Shanghai") == ZoneInfo("Asia/Shanghai")
