"""Features computed from the store, one row per debtor, and the willingness/ability quadrant."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import numpy as np

from common.vocab import CONTACT_OUTCOMES
from dialer.gate.zones import candidate_zone, local_hour

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
