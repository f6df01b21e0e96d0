"""Training on the store's own outcomes: features as of a day, label = a payment in the following window."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dialer.campaign.config import load_campaign
from dialer.cli import main
from dialer.store import Store, core
from dialer.strategy.data import DataError
from dialer.strategy.features import STORE_FEATURES
from dialer.strategy.rescore import load_model_or_none, store_training_data
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

CAMPAIGN = Path(__file__).resolve().parents[1] / "campaigns" / "examples" / "strategy_example.yaml"
AS_OF = datetime(2026, 11, 1, 23, 59, 59, tzinfo=timezone.utc)


def _build(path: Path, n: int = 150) -> tuple[Store, set[str]]:
    """n debtors; half of the 'first' customers who were reached pay within the window, 10 % of the others."""
    rng = np.random.default_rng(3)
    st = Store(path)
    core.upsert_campaign(st, load_campaign(CAMPAIGN), now=AS_OF.timestamp() - 86400 * 40)
    rows = []
    for i in range(n):
        rows.append({"debtor_id": f"D{i}", "name": f"N{i}", "phones": f"+8613900{i:06d}", "account_id": f"A{i}",
                     "amount_owed": f"{rng.integers(500, 9000)}.00", "currency": "CNY",
                     "days_past_due": str(int(rng.integers(1, 120))), "timezone": "Asia/Shanghai",
                     "customer_type": ["first", "repeat", "wilful"][i % 3], "lang": "zh"})
    core.import_debtors(st, rows, "strategy_example", now=AS_OF.timestamp() - 86400 * 30)
    payers, pays = set(), []
    for i in range(n):
        reached = bool(rng.random() < 0.6)
        at = AS_OF - timedelta(days=int(rng.integers(1, 20)), hours=3)
        with st.transaction() as conn:
            core.insert_attempt(conn, call_id=f"c{i}", debtor_id=f"D{i}", account_id=f"A{i}",
                                campaign="strategy_example", phone=f"+8613900{i:06d}", placed_at=at.timestamp())
        core.update_attempt(st, f"c{i}", at=at.timestamp() + 60, state="ended",
                            outcome="answered" if reached else "no_answer", conversation=int(reached),
                            disposition="promise" if reached else None)
        p_pay = 0.5 if (i % 3 == 0 and reached) else 0.1
        if rng.random() < p_pay:
            payers.add(f"D{i}")
            pays.append({"account_id": f"A{i}", "paid_at": (AS_OF + timedelta(days=int(rng.integers(1, 25))))
                         .date().isoformat(), "amount": "100.00", "currency": "CNY", "reference": f"r{i}"})
    # a call after the as-of day must not leak into the features
    with st.transaction() as conn:
        core.insert_attempt(conn, call_id="late", debtor_id="D0", account_id="A0", campaign="strategy_example",
                            phone="+8613900000000", placed_at=(AS_OF + timedelta(days=3)).timestamp())
    core.import_payments(st, pays, now=(AS_OF + timedelta(days=26)).timestamp())
    return st, payers


def test_store_outcomes_become_a_labelled_frame(tmp_path: Path) -> None:
    st, payers = _build(tmp_path / "d.db")
    data = store_training_data(st, AS_OF, horizon_days=30)
    assert list(data.X.columns) == list(STORE_FEATURES) and len(data.y) == 150
    ids = [f"D{i}" for i in range(150)]
    assert {d for d, y in zip(sorted(ids), data.y) if y} == payers  # rows come in debtor_id order
    assert data.X.loc[0, "attempts"] == 1  # D0's later call is not a feature as of the day
    # a window after every payment has one class only, and a day before the import has no debtors: refusals
    with pytest.raises(DataError, match="training needs both"):
        store_training_data(st, AS_OF + timedelta(days=30), horizon_days=10)
    with pytest.raises(DataError, match="no debtors imported"):
        store_training_data(st, AS_OF - timedelta(days=60), horizon_days=10)


def test_train_from_store_cli(tmp_path: Path) -> None:
    st, payers = _build(tmp_path / "d.db")
    st.close()
    out = tmp_path / "model"
    res = CliRunner().invoke(main, ["models", "train", "--from-store", "--db", str(tmp_path / "d.db"),
                                    "--as-of", "2026-11-01", "--horizon-days", "30", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["rule_feature"] == "days_past_due" and report["rows"] == 150
    meta = json.loads((out / "model.json").read_text())
    assert [f["name"] for f in meta["features"]] == list(STORE_FEATURES)
    assert meta["data_source"].startswith("store(as_of=2026-11-01")
    assert load_model_or_none(out) is not None  # a store-feature model the hopper can use
    bad = CliRunner().invoke(main, ["models", "train", "--from-store", "--data", "x.csv", "--target", "y"])
    assert bad.exit_code != 0 and "either --data" in bad.output
