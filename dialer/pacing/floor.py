"""Live pacing's pure pieces: the pacer's view of collectors and calls as the daemon observes them,
the abandon window. The daemon feeds them from AMI events."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.pacing.estimator import Estimator
from dialer.pacing.pacers import (
    LOGGED_OUT,
    PAUSED,
    READY,
    TALKING,
    WRAPUP,
    CollectorView,
    ProgressivePacer,
)

WINDOW_SECONDS = {"calendar_day": None, "rolling_30_days": 30 * 86400.0}


def window_start(now: datetime, window: str) -> float:
    """Start (epoch seconds) of the profile's abandon window containing `now`: the UTC calendar day
    (debtors' zones differ; the day of the process clock is used) or the last 30 days."""
    span = WINDOW_SECONDS.get(window)
    if span is not None:
        return now.timestamp() - span
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass
class CollectorLive:
    """What the queue's events say a collector is doing (the desired state comes from `dialer agent`)."""

    state: str = READY  # ready | talking | wrapup
    since: float = 0.0
    call: str | None = None


def collector_views(names: list[str], live: dict[str, CollectorLive], desired: dict[str, str], now: float,
                    wrap_up: float) -> tuple[CollectorView, ...]:
    """The pacer's view of each collector: a collector paused or logged out is not capacity, one talking
    who has paused leaves after the call; wrap-up ends `wrap_up` seconds after the call."""
    out = []
    for name in names:
        want = desired.get(name, "ready")
        cur = live.get(name) or CollectorLive()
        if cur.state == TALKING:
            out.append(CollectorView(TALKING, cur.since, leaving=want != "ready"))
        elif want == "logged_out":
            out.append(CollectorView(LOGGED_OUT, cur.since))
        elif want == "paused":
            out.append(CollectorView(PAUSED, cur.since))
        elif cur.state == WRAPUP and now < cur.since + wrap_up:
            out.append(CollectorView(WRAPUP, cur.since))
        else:
            since = cur.since + wrap_up if cur.state == WRAPUP else cur.since
            out.append(CollectorView(READY, since))
    return tuple(out)


def call_views(calls: list[tuple[float, float | None, float | None, bool]]) -> tuple[tuple[float, ...], ...]:
    """(ringing, screening, waiting) times from (placed, answered, greeting end, done with queue) per call.

    A call connected to a collector (or abandoned, or hung up on) is `done`: it is not demand any more."""
    ringing, screening, waiting = [], [], []
    for placed, answered, human, done in calls:
        if done:
            continue
        if human is not None:
            waiting.append(human)
        elif answered is not None:
            screening.append(answered)
        else:
            ringing.append(placed)
    return tuple(ringing), tuple(screening), tuple(waiting)


PROGRESSIVE_FLOOR = ProgressivePacer()


@dataclass
class PaceState:
    """One collector-mode campaign's pacer and estimator. Its decisions go on the daemon's bus
    (observe/events.py PaceDecision), where the metrics and the floor view keep them."""

    pacer: Any
    estimator: Estimator
    last_at: float = float("-inf")


@dataclass(frozen=True)
class AbandonFigures:
    """A campaign's abandon rate over its profile's window against the limit, and the worst rolling hour."""

    window: str
    limit: float
    answered: int
    abandoned: int
    worst_hour_start: float | None = None
    worst_hour_answered: int = 0
    worst_hour_abandoned: int = 0

    @property
    def rate(self) -> float | None:
        return self.abandoned / self.answered if self.answered else None

    @property
    def worst_hour_rate(self) -> float | None:
        return self.worst_hour_abandoned / self.worst_hour_answered if self.worst_hour_answered else None

    def as_dict(self) -> dict[str, Any]:
        r, w = self.rate, self.worst_hour_rate
        return {"window": self.window, "limit": self.limit, "answered": self.answered, "abandoned": self.abandoned,
                "rate": None if r is None else round(r, 4), "over_limit": bool(r is not None and r > self.limit),
                "worst_hour": {"start": self.worst_hour_start, "answered": self.worst_hour_answered,
                               "abandoned": self.worst_hour_abandoned,
                               "rate": None if w is None else round(w, 4)}}


def abandon_figures(calls: list[tuple[float, bool]], window: str, limit: float, hour: float = 3600.0) -> AbandonFigures:
    """From (answered time, abandoned) of each call a person answered in the window: the window's rate and the
    hour (any 60-minute span starting at an answered call) with the highest abandon rate; ties go to the
    hour with more abandoned calls, then the earlier one."""
    calls = sorted(calls)
    best: tuple[float, int, float, int, int] | None = None  # (rate, abandoned, -start, answered, ...)
    j = 0
    ab = 0
    for i, (start, _) in enumerate(calls):
        while j < len(calls) and calls[j][0] < start + hour:
            ab += calls[j][1]
            j += 1
        n = j - i
        key = (ab / n, ab, -start, n)
        if best is None or key > best[:4]:
            best = (*key, 0)
        ab -= calls[i][1]
    total_ab = sum(1 for _, a in calls if a)
    if best is None:
        return AbandonFigures(window, limit, 0, 0)
    return AbandonFigures(window, limit, len(calls), total_ab, -best[2], best[3], best[1])
