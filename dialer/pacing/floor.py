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
