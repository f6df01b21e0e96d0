"""One clock for the whole process: real time, or a simulated start (`--at`) that then runs at real speed."""
from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """Wall clock with an optional offset. `now()` is always timezone-aware (UTC)."""

    def __init__(self, at: datetime | None = None):
        if at is not None and at.tzinfo is None:
            raise ValueError("--at needs a UTC offset, e.g. 2026-11-23T10:00:00+08:00")
        self._offset = (at - datetime.now(timezone.utc)).total_seconds() if at is not None else 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self._offset, timezone.utc)

    def timestamp(self) -> float:
        return time.time() + self._offset

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


class FixedClock(Clock):
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._t = at.timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, timezone.utc)

    def timestamp(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds


AT_RANGE = (1970, 2199)


def parse_at(value: str) -> datetime:
    """Parse `--at`; the value must carry a UTC offset."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--at: not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"--at: {value!r} has no UTC offset (e.g. +08:00)")
    if not AT_RANGE[0] <= dt.year <= AT_RANGE[1]:
        # Days and weeks are added to the clock (quiet periods, retries); near year 9999 that overflows.
        raise ValueError(f"--at: {value!r} is outside the years {AT_RANGE[0]}–{AT_RANGE[1]}")
    return dt
