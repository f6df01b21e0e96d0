"""Model metrics: AUC, Brier, calibration, paired bootstrap differences."""
from __future__ import annotations

from typing import Any

import numpy as np

from dialer.strategy.data import DataError

# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-count bins of the predicted probability: n, mean predicted, observed rate."""
    order = np.argsort(p, kind="stable")
    rows = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk) == 0:
            continue
        rows.append({"n": int(len(chunk)), "p_min": float(p[chunk].min()), "p_max": float(p[chunk].max()),
                     "predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean())})
    return rows


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    if len(set(y.tolist())) < 2:
        raise DataError("evaluation data has only one class; ROC AUC needs both")
    table = calibration_table(y, p)
    ece = sum(r["n"] * abs(r["predicted"] - r["observed"]) for r in table) / len(y)
    return {"n": int(len(y)), "positive_rate": float(y.mean()), "auc": float(roc_auc_score(y, p)),
            "brier": float(brier_score_loss(y, p)), "ece": float(ece), "calibration": table}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the Mann–Whitney rank formula (ties get average ranks); fast enough to bootstrap."""
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = len(y) - pos
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def paired_difference(y: np.ndarray, p_model: np.ndarray, p_base: np.ndarray, n_boot: int = 300,
                      seed: int = 0) -> dict[str, float]:
    """Model minus baseline on the same rows, with 95 % paired-bootstrap intervals (AUC: higher is better;
    Brier: lower is better)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=int)
    auc_d, brier_d = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        yi = y[i]
        if yi.min() == yi.max():
            continue
        auc_d.append(_auc(yi, p_model[i]) - _auc(yi, p_base[i]))
        brier_d.append(float(np.mean((p_model[i] - yi) ** 2) - np.mean((p_base[i] - yi) ** 2)))
    return {"auc_diff": _auc(y, p_model) - _auc(y, p_base),
            "auc_diff_lo": float(np.quantile(auc_d, 0.025)), "auc_diff_hi": float(np.quantile(auc_d, 0.975)),
            "brier_diff": float(np.mean((p_model - y) ** 2) - np.mean((p_base - y) ** 2)),
            "brier_diff_lo": float(np.quantile(brier_d, 0.025)), "brier_diff_hi": float(np.quantile(brier_d, 0.975))}
