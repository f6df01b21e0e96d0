"""The daily report's figures, from rows the store hands over (dialer/store/reports.py); pure, no SQL.

One table per grouping — by campaign, by segment (within its campaign), by collector, by day (the
report's zone) — with the same figures in every row, so efficiency and compliance sit side by side:

attempts, connects (answered by a person), machines and the AMD rate (machines / answered), right-party
contacts (the debt was discussed with the verified debtor), promises (count and amount) and those kept,
amount collected (payments dated in the range; per campaign and day only — a payment is not tied to a
call), abandoned calls and the abandon rate (abandoned / connects) beside the profile's limit, average
handle time (answer → hang-up of connects), collector occupancy (talk time over the span from the
collector's first answer to their last hang-up in the range), cease-contact requests, QA calls scored,
mean score and hits by rule, bot containment (connects that ended with no collector on the call).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any, Iterable

GROUPS = ("campaign", "segment", "collector", "day")
KEYS = {"campaign": ("campaign",), "segment": ("campaign", "segment"), "collector": ("collector",),
        "day": ("campaign", "day")}
COLUMNS = ("attempts", "connects", "machines", "amd_rate", "right_party_contacts", "promises", "promised_amount",
           "promises_kept", "collected_amount", "abandoned", "abandon_rate", "abandon_limit", "avg_handle_seconds",
           "occupancy", "cease_requests", "qa_calls", "qa_mean_score", "qa_hits", "bot_containment")


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


@dataclass
class _Acc:
    attempts: int = 0
    connects: int = 0
    answered: int = 0
    machines: int = 0
    rpc: int = 0
    promises: int = 0
    promised: Decimal = Decimal("0")
    kept: int = 0
    collected: Decimal = Decimal("0")
    abandoned: int = 0
    handle: list[float] = field(default_factory=list)
    talk: list[tuple[float, float]] = field(default_factory=list)
    cease: int = 0
    qa: list[int] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)
    contained: int = 0
    campaigns: set = field(default_factory=set)


def local_day(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def build(attempts: Iterable[dict[str, Any]], *, tz: tzinfo, payments: Iterable[dict[str, Any]] = (),
          ceases: Iterable[dict[str, Any]] = (), limits: dict[str, float] | None = None,
          since: float | None = None, until: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """{group: [row, …]} for every grouping in GROUPS. `limits` maps a campaign to its profile's abandon
    limit; payments count when their date (the lender's ISO date, read in `tz`) falls in [since, until)."""
    limits = limits or {}
    accs: dict[str, dict[tuple, _Acc]] = {g: defaultdict(_Acc) for g in GROUPS}

    def keys(a: dict[str, Any]) -> dict[str, tuple]:
        return {"campaign": (a["campaign"],), "segment": (a["campaign"], a.get("segment") or "-"),
                "collector": (a["agent"],) if a.get("agent") else None,
                "day": (a["campaign"], local_day(a["placed_at"], tz))}

    for a in attempts:
        for g, k in keys(a).items():
            if k is None:
                continue
            acc = accs[g][k]
            acc.campaigns.add(a["campaign"])
            acc.attempts += 1
            answered = a.get("answered_at") is not None or a.get("outcome") in ("answered", "callee_hangup",
                                                                                  "abandoned")
            machine = bool(a.get("machine"))
            acc.answered += answered
            acc.machines += machine
            if answered and not machine:
                acc.connects += 1
                if not a.get("agent"):
                    acc.contained += 1
                if a.get("answered_at") is not None and a.get("ended_at") is not None:
                    acc.handle.append(max(0.0, a["ended_at"] - a["answered_at"]))
                    if a.get("agent"):
                        acc.talk.append((a["answered_at"], a["ended_at"]))
            acc.rpc += bool(a.get("conversation"))
            acc.abandoned += bool(a.get("abandoned"))
            acc.promises += a.get("promises") or 0
            acc.kept += a.get("kept") or 0
            if a.get("promised"):
                acc.promised += sum((Decimal(x) for x in a["promised"].split("|") if x), Decimal("0"))
            if a.get("qa_score") is not None:
                acc.qa.append(a["qa_score"])
                acc.hits.update(v["rule"] for v in json.loads(a.get("qa_violations") or "[]"))
    for p in payments:
        day = p["paid_at"][:10]
        if not _day_in_range(day, since, until, tz):
            continue
        amount = Decimal(p["amount"])
        accs["campaign"][(p["campaign"],)].collected += amount
        accs["day"][(p["campaign"], day)].collected += amount
    for c in ceases:
        accs["campaign"][(c["campaign"],)].cease += 1
        accs["day"][(c["campaign"], local_day(c["created_at"], tz))].cease += 1

    out: dict[str, list[dict[str, Any]]] = {}
    for g in GROUPS:
        rows = []
        for k, acc in sorted(accs[g].items(), key=lambda kv: tuple(str(x) for x in kv[0])):
            row: dict[str, Any] = {"group": g, **dict(zip(KEYS[g], k))}
            limit = None
            if g != "collector":
                limit = limits.get(k[0])
            elif len(acc.campaigns) == 1:
                limit = limits.get(next(iter(acc.campaigns)))
            span = (min(t[0] for t in acc.talk), max(t[1] for t in acc.talk)) if acc.talk else None
            talk = sum(e - s for s, e in acc.talk)
            row.update({
                "attempts": acc.attempts, "connects": acc.connects, "machines": acc.machines,
                "amd_rate": _ratio(acc.machines, acc.answered), "right_party_contacts": acc.rpc,
                "promises": acc.promises, "promised_amount": str(acc.promised), "promises_kept": acc.kept,
                "collected_amount": None if g in ("segment", "collector") else str(acc.collected),
                "abandoned": acc.abandoned, "abandon_rate": _ratio(acc.abandoned, acc.connects),
                "abandon_limit": limit,
                "avg_handle_seconds": round(sum(acc.handle) / len(acc.handle), 1) if acc.handle else None,
                "occupancy": (_ratio(talk, span[1] - span[0]) if span and span[1] > span[0] else None)
                if g == "collector" else None,
                "cease_requests": acc.cease if g in ("campaign", "day") else None,
                "qa_calls": len(acc.qa), "qa_mean_score": round(sum(acc.qa) / len(acc.qa), 1) if acc.qa else None,
                "qa_hits": dict(sorted(acc.hits.items())),
                "bot_containment": _ratio(acc.contained, acc.connects),
            })
            rows.append(row)
        out[g] = rows
    return out


def _day_in_range(day: str, since: float | None, until: float | None, tz: tzinfo) -> bool:
    """A whole local day inside [since, until): until at local midnight excludes that day."""
    if since is not None and day < local_day(since, tz):
        return False
    if until is not None:
        last = local_day(until, tz)
        if day > last or (day == last and _midnight(until, tz) == 0):
            return False
    return True


def _midnight(ts: float, tz: tzinfo) -> float:
    """Seconds past local midnight of `ts` (0: the range ends exactly at a day boundary)."""
    d = datetime.fromtimestamp(ts, tz)
    return d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6


def outcomes_by_hour(attempts: Iterable[dict[str, Any]], tz: tzinfo) -> dict[int, Counter]:
    """Local hour of placement → Counter of outcomes ('open' for attempts not settled yet)."""
    out: dict[int, Counter] = defaultdict(Counter)
    for a in attempts:
        out[datetime.fromtimestamp(a["placed_at"], tz).hour][a.get("outcome") or "open"] += 1
    return dict(sorted(out.items()))


def blocks_by_rule(blocks: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(b["rule_id"] for b in blocks).items()))
