"""Tabular data for the propensity model: reading, typing and validating a CSV."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

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
