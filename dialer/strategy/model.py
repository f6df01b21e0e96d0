"""The propensity model: the one-feature baseline, model families, selection and the saved model."""
from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from dialer.strategy.data import DataError, Dataset, check_columns, coerce_frame
from dialer.strategy.metrics import _auc, metrics, paired_difference

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
    from common.progress import progress

    with progress("training model families", len(families) + 2) as bar:
        for fam in families:
            est = make_estimator(fam, data.kinds, seed).fit(X.iloc[tr], y[tr])
            p = val_pred[fam] = est.predict_proba(X.iloc[va])[:, 1]
            validation[fam] = {"auc": float(roc_auc_score(y[va], p)), "brier": float(brier_score_loss(y[va], p))}
            bar.advance()
        chosen = _select(validation, val_pred, y[va])
        fit_idx = np.concatenate([tr, va])
        model_est = make_estimator(chosen, data.kinds, seed).fit(X.iloc[fit_idx], y[fit_idx])
        bar.advance()
        logit = make_estimator("logit", data.kinds, seed).fit(X.iloc[fit_idx], y[fit_idx])
        bar.advance()
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
