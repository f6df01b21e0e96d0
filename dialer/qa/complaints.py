"""Complaints (docs/COMPLAINTS.md): the vocabulary and the validation of one complaint, pure (time comes in as an
argument). Seed 001 names the categories that dominate the trade: attitude and over-collection (63 %),
information leaks (18 %), harassing relatives (12 %), compliance disputes (7 %)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from common.vocab import COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_SEVERITIES

CATEGORIES = COMPLAINT_CATEGORIES
# A complaint of these categories puts a contact hold on the debtor (and the number) at once: the gate blocks
# with HOLD_RULE_ID until the hold is released (`dialer complaints release`).
HOLD_CATEGORIES = ("harassment", "harassing_relatives", "threat")
HOLD_LIST = "harassment_hold"
HOLD_RULE_ID = "complaint.harassment_hold"
CHANNELS = COMPLAINT_CHANNELS
SEVERITIES = COMPLAINT_SEVERITIES
FINDINGS = ("substantiated", "not_substantiated")
DEFAULT_WINDOW_DAYS = 14.0
MAX_WINDOW_DAYS = 365.0
MAX_TEXT = 5000
MAX_AHEAD_DAYS = 7.0
FIELDS = ("debtor_id", "phone", "channel", "category", "text", "received_at", "reference", "window_days")


class ComplaintError(ValueError):
    """A bad complaint; `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Complaint:
    channel: str
    category: str
    text: str
    received_at: float
    debtor_id: str | None = None
    phone: str | None = None
    reference: str | None = None
    window_days: float = DEFAULT_WINDOW_DAYS

    @property
    def holds(self) -> bool:
        return self.category in HOLD_CATEGORIES


def _time(value: Any, now: float) -> float:
    if value is None or value == "":
        return now
    if isinstance(value, bool):
        raise ComplaintError("received_at", "not a time")
    if isinstance(value, (int, float)):
        t = float(value)
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            raise ComplaintError("received_at", f"not an ISO-8601 time: {str(value)[:40]!r}") from None
        if dt.tzinfo is None:
            raise ComplaintError("received_at", f"{value!r} has no UTC offset (e.g. +08:00)")
        t = dt.timestamp()
    if t > now + MAX_AHEAD_DAYS * 86400:  # a typo (the year); a simulated clock may run a few days ahead
        raise ComplaintError("received_at", f"more than {MAX_AHEAD_DAYS:g} days in the future")
    if t < 0:
        raise ComplaintError("received_at", "before 1970")
    return t


def parse_complaint(record: Mapping[str, Any], *, now: float, region: str | None = None) -> Complaint:
    """A complaint from CLI options or an API body: {debtor_id?, phone?, channel, category, text, received_at?
    (ISO with offset, or epoch seconds), reference?, window_days?}. At least one of debtor_id and phone."""
    from dialer.campaign.imports import parse_phone

    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ComplaintError(unknown[0], f"unknown field (allowed: {', '.join(FIELDS)})")

    def text(name: str, required: bool = False, limit: int = 200) -> str | None:
        v = record.get(name)
        if v is None or (isinstance(v, str) and not v.strip()):
            if required:
                raise ComplaintError(name, "required")
            return None
        if not isinstance(v, str):
            raise ComplaintError(name, "must be a string")
        if len(v) > limit:
            raise ComplaintError(name, f"longer than {limit} characters")
        return v.strip()

    channel = text("channel", True)
    if channel not in CHANNELS:
        raise ComplaintError("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    category = text("category", True)
    if category not in CATEGORIES:
        raise ComplaintError("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    body = text("text", True, MAX_TEXT)
    debtor_id, raw_phone = text("debtor_id"), text("phone", limit=40)
    if debtor_id is None and raw_phone is None:
        raise ComplaintError("debtor_id", "give a debtor_id or a phone (or both)")
    phone = None
    if raw_phone is not None:
        try:
            phone = parse_phone(raw_phone, region)
        except ValueError as exc:
            raise ComplaintError("phone", str(exc)) from None
    window = record.get("window_days")
    if window is None:
        window = DEFAULT_WINDOW_DAYS
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= MAX_WINDOW_DAYS:
        raise ComplaintError("window_days", f"must be a number of days in (0, {MAX_WINDOW_DAYS:g}]")
    return Complaint(channel=channel, category=category, text=body or "",  # type: ignore[arg-type]
                     received_at=_time(record.get("received_at"), now), debtor_id=debtor_id, phone=phone,
                     reference=text("reference"), window_days=float(window))


def per_10k(complaints: int, calls: int) -> float | None:
    """Complaints per 10,000 calls (None when there were no calls)."""
    return round(complaints * 10_000 / calls, 1) if calls else None
