"""Complaints (docs/COMPLAINTS.md): the vocabulary, the validation of a complaint and of a review's finding, what a
profile's `complaints:` settings make of a complaint (its hold, linked calls, severity, due time), and a frequency
complaint's attempt counts against the caps. Seed 001 names the categories that dominate the trade: attitude and
over-collection (63 %), information leaks (18 %), harassing relatives (12 %), compliance disputes (7 %)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from common.vocab import COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_SEVERITIES

if TYPE_CHECKING:
    from dialer.gate.rules import GateRules, Rules
    from dialer.store import Store

CATEGORIES = COMPLAINT_CATEGORIES
# Which categories hold contact, link every attempt, how severe each is and how long its review may take are
# a profile's settings (compliance_rules.yaml `complaints:`, dialer/gate/rules.py ComplaintRules). A held debtor
# (or number) goes on HOLD_LIST: the gate blocks with HOLD_RULE_ID until every complaint holding it is released.
HOLD_LIST = "harassment_hold"
HOLD_RULE_ID = "complaint.harassment_hold"
CHANNELS = COMPLAINT_CHANNELS
SEVERITIES = COMPLAINT_SEVERITIES
FINDINGS = ("substantiated", "not_substantiated")
MAX_WINDOW_DAYS = 365.0
MAX_TEXT = 5000
MAX_AHEAD_DAYS = 7.0
FIELDS = ("debtor_id", "phone", "channel", "category", "text", "received_at", "reference", "window_days")
RESPONSIBLE = ("collector", "owner")
REVIEW_FIELDS = ("finding", "call_id", "rule", "note", "responsible", "by")
RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


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
    window_days: float | None = None  # None: the profile's window_days


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


def _known_fields(record: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(record) - set(allowed))
    if unknown:
        raise ComplaintError(unknown[0], f"unknown field (allowed: {', '.join(allowed)})")


def _text(record: Mapping[str, Any], name: str, *, required: bool = False, limit: int = 200) -> str | None:
    """A free-text field: stripped; blank or absent is None (or `required`); not a string, or too long, is refused."""
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


def parse_complaint(record: Mapping[str, Any], *, now: float, region: str | None = None) -> Complaint:
    """A complaint from CLI options or an API body: {debtor_id?, phone?, channel, category, text, received_at?
    (ISO with offset, or epoch seconds), reference?, window_days?}. At least one of debtor_id and phone."""
    from dialer.campaign.imports import parse_phone

    _known_fields(record, FIELDS)

    def text(name: str, required: bool = False, limit: int = 200) -> str | None:
        return _text(record, name, required=required, limit=limit)

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
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, float))
                               or not 0 < window <= MAX_WINDOW_DAYS):
        raise ComplaintError("window_days", f"must be a number of days in (0, {MAX_WINDOW_DAYS:g}]")
    return Complaint(channel=channel, category=category, text=body or "",  # type: ignore[arg-type]
                     received_at=_time(record.get("received_at"), now), debtor_id=debtor_id, phone=phone,
                     reference=text("reference"), window_days=None if window is None else float(window))


def per_10k(complaints: int, calls: int) -> float | None:
    """Complaints per 10,000 calls (None when there were no calls)."""
    return round(complaints * 10_000 / calls, 1) if calls else None


@dataclass(frozen=True)
class Review:
    finding: str
    call_id: str | None = None
    rule: str | None = None
    note: str | None = None
    responsible: str | None = None  # collector | owner; None: the only collector, else the campaign's owner


def parse_review(record: Mapping[str, Any]) -> Review:
    """A review's finding from CLI options or an API body: {finding, call_id?, rule? (a dotted rule id), note?,
    responsible? (collector | owner)}; `by` is the caller's and not checked here."""
    _known_fields(record, REVIEW_FIELDS)

    def text(name: str, limit: int) -> str | None:
        return _text(record, name, limit=limit)

    finding = text("finding", 40)
    if finding not in FINDINGS:
        raise ComplaintError("finding", "required" if finding is None else
                             f"{finding!r} is not one of {', '.join(FINDINGS)}")
    rule = text("rule", 100)
    if rule is not None and not RULE_ID.match(rule):
        raise ComplaintError("rule", f"{rule!r} is not a rule id (dotted, lower case: conduct.threat, cap.daily)")
    responsible = text("responsible", 40)
    if responsible is not None and responsible not in RESPONSIBLE:
        raise ComplaintError("responsible", f"{responsible!r} is not one of {', '.join(RESPONSIBLE)}")
    return Review(finding=finding, call_id=text("call_id", 200), rule=rule, note=text("note", MAX_TEXT),
                  responsible=responsible)


def attempt_pattern(attempts: list[Mapping[str, Any]], zone: tzinfo, gate: "GateRules") -> dict[str, Any]:
    """How often we called, against what the gate allows: attempts per local day (`zone`: the debtor's) and the most
    in any 7 days, with the profile's caps and, per cap rule id, whether it held (None: no such cap). Calls the
    debtor made to us (inbound) are not our attempts and are not counted. Pure."""
    days: dict[date, dict[str, Any]] = {}
    attempts = [a for a in attempts if not a.get("inbound")]
    for a in attempts:
        d = datetime.fromtimestamp(float(a["placed_at"]), zone).date()
        g = days.setdefault(d, {"attempts": 0, "answered": 0, "numbers": {}})
        g["attempts"] += 1
        g["answered"] += 1 if a.get("answered_at") is not None else 0
        g["numbers"][a.get("phone")] = g["numbers"].get(a.get("phone"), 0) + 1
    rows = [{"date": d.isoformat(), "attempts": g["attempts"], "answered": g["answered"],
             "most_to_one_number": max(g["numbers"].values())} for d, g in sorted(days.items())]
    counted = "answered" if gate.count == "connected" else "attempts"
    peak_day = max((r[counted] for r in rows), default=0)
    peak_number = max((r["most_to_one_number"] for r in rows), default=0)
    peak_7 = max((sum(g["attempts"] for x, g in days.items() if d - timedelta(days=6) <= x <= d) for d in days),
                 default=0)
    caps = {"cap.daily": gate.daily_attempts, "cap.number_daily": gate.number_daily_attempts,
            "cap.7in7": gate.rolling_7day}
    peaks = {"cap.daily": peak_day, "cap.number_daily": peak_number, "cap.7in7": peak_7}
    return {"zone": str(zone), "attempts": len(attempts), "answered": sum(r["answered"] for r in rows),
            "count": gate.count, "days": rows, "peak_day": peak_day, "peak_number_day": peak_number,
            "peak_7days": peak_7, "caps": caps,
            "held": {k: (None if cap is None else peaks[k] <= cap) for k, cap in caps.items()}}


def take_complaint(store: "Store", c: Complaint, rules: "Rules", *, actor: str,
                   now: float | None = None) -> dict[str, Any]:
    """Record a complaint under its debtor's profile (the campaign's; the default one when no debtor or campaign is
    known): link the answered calls in the window, or every attempt for a frequency category, with the attempt
    counts against the caps; grade it and give its review a due time; hold contact for a holding category. One
    transaction; raises dialer.store.complaints.ComplaintStoreError (unknown debtor)."""
    from dialer.gate.zones import debtor_zone
    from dialer.store import tx
    from dialer.store.complaints import add_complaint, complaint_subject, linked_calls

    with tx(store) as conn:
        subj = complaint_subject(conn, c.debtor_id, c.phone)
        profile = rules.profile_for(subj["profile"], subj["campaign"])
        cr = profile.complaints
        window = c.window_days if c.window_days is not None else cr.window_days
        scope = "attempts" if c.category in cr.all_attempts else "answered"
        calls = linked_calls(conn, subj["debtor_id"], c.phone, c.received_at, window,
                             answered_only=scope == "answered")
        pattern = None
        if scope == "attempts":
            zone = debtor_zone(subj["phone"], subj["timezone"], profile.gate.fallback_zones)
            pattern = attempt_pattern(calls, zone, profile.gate)
        severity = cr.grade(c.category, c.channel)
        record = c.__dict__ | {"debtor_id": subj["debtor_id"], "window_days": window, "profile": profile.name,
                               "severity": severity, "due_at": c.received_at + cr.due_hours[severity] * 3600,
                               "link_scope": scope, "attempts": pattern}
        return add_complaint(conn, record, calls=calls, hold_list=HOLD_LIST if c.category in cr.hold else None,
                             actor=actor, now=now)
