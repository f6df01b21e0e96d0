"""I/O edge: re-score debtors in the store (nightly, or after an outcome) and save their treatments."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from common.log import log_event
from dialer.strategy.data import DataError, Dataset, frame_hash
from dialer.strategy.features import (
    STORE_FEATURES,
    DebtorHistory,
    _get,
    bucket_of,
    debtor_features,
)
from dialer.strategy.model import PropensityModel
from dialer.strategy.rank import rank_candidates

_log = logging.getLogger("dialer.strategy")

# ---------------------------------------------------------------------------------------------
# I/O edge: re-score debtors in the store (nightly, or after an outcome) and save their treatments
# ---------------------------------------------------------------------------------------------

def rescore(store: Any, model: Any, table: Any, now: datetime, *, campaign: str | None = None,
            debtor_ids: Sequence[str] | None = None, reason: str = "nightly",
            default_tz: str = "UTC") -> list[dict[str, Any]]:
    """Score active debtors (all of a campaign, or the ones named, e.g. the debtor of a call that just ended),
    choose each one's treatment from the campaign's strategy table (a StrategyTable, or None), and save both
    (`strategy_scores`, `debtors.propensity`) in one transaction. Returns the saved rows, best first."""
    from dialer.store import strategy as sstore
    from dialer.strategy.table import choose_treatment

    rows = sstore.scoring_rows(store, campaign, debtor_ids)
    hist = sstore.histories(store, [r["debtor_id"] for r in rows])
    model_id = "fallback"
    if isinstance(model, PropensityModel):
        model_id = f"{model.meta.get('family')}:{str(model.meta.get('data_hash', ''))[:12]}"
    out = []
    for r in rank_candidates(rows, model, now, hist, default_tz=default_tz):
        prop = None if r.source == "fallback" else r.propensity
        bucket = _get(r.candidate, "bucket") or bucket_of(int(_get(r.candidate, "days_past_due") or 0))
        treatment = choose_treatment(table, prop, r.quadrant, bucket).as_dict() if table is not None else {}
        out.append({"debtor_id": _get(r.candidate, "debtor_id"), "propensity": prop, "quadrant": r.quadrant,
                    "band": table.band(prop) if table is not None else None, "bucket": bucket,
                    "treatment": treatment, "best_hour": r.best_hour,
                    "model": model_id if r.source == "model" else r.source, "reason": reason})
    sstore.save_scores(store, out, now.timestamp())
    log_event(_log, "strategy.rescored", reason=reason, debtors=len(out), model=model_id,
              scored=sum(1 for r in out if r["propensity"] is not None))
    return out


def load_model_or_none(directory: str | Path) -> PropensityModel | None:
    """The saved model if there is one that can score store debtors, else None (the hopper then falls back to
    stored scores or days-past-due order), so a fresh checkout runs without a trained model."""
    try:
        model = PropensityModel.load(directory)
    except DataError:
        return None
    if any(name not in STORE_FEATURES for name in model.kinds):
        return None
    return model


def store_training_data(store: Any, as_of: datetime, horizon_days: int = 30, campaign: str | None = None,
                        default_tz: str = "UTC") -> Dataset:
    """Labelled rows from the store's own outcomes: each debtor's STORE_FEATURES as of `as_of` (attempts and
    promises made by then; a promise counts as kept/broken only if it fell due by then), labelled 'paid' when
    a payment is dated within `horizon_days` after `as_of`."""
    from datetime import timedelta

    from dialer.store import strategy as sstore

    cut = as_of.timestamp()
    rows = sstore.debtors_as_of(store, cut, campaign)
    if not rows:
        raise DataError(f"store: no debtors imported by {as_of.isoformat()}")
    ids = [r["debtor_id"] for r in rows]
    raw = sstore.histories(store, ids)
    promises: dict[str, list[dict[str, Any]]] = {}
    for p in sstore.promise_rows(store, ids):
        promises.setdefault(p["debtor_id"], []).append(p)
    day = as_of.date().isoformat()
    payers = sstore.payers_between(store, day, (as_of.date() + timedelta(days=horizon_days)).isoformat())
    feats, labels = [], []
    for r in rows:
        hist = DebtorHistory.coerce([a for a in raw[r["debtor_id"]]["attempts"] if a["placed_at"] <= cut])
        made = [p for p in promises.get(r["debtor_id"], []) if p["created_at"] <= cut]
        hist.promises_made = len(made)
        hist.promises_kept = sum(1 for p in made if p["due_date"] < day and p["status"] == "kept")
        hist.promises_broken = sum(1 for p in made if p["due_date"] < day and p["status"] == "broken")
        feats.append(debtor_features(r, hist, as_of, default_tz))
        labels.append(int(r["debtor_id"] in payers))
    X = pd.DataFrame(feats, columns=list(STORE_FEATURES))
    for col, kind in STORE_FEATURES.items():
        X[col] = X[col].astype(float) if kind == "numeric" else X[col].astype(object)
    y = np.array(labels)
    if len(set(labels)) < 2:
        raise DataError(f"store: every debtor is {'a payer' if labels[0] else 'a non-payer'} in the "
                        f"{horizon_days} days after {day}; training needs both")
    source = f"store(as_of={day}, horizon={horizon_days}d{', campaign=' + campaign if campaign else ''})"
    return Dataset(X, y, dict(STORE_FEATURES), "paid", "1", "0", source, frame_hash(X.assign(paid=y)))
