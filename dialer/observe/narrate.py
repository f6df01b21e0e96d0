"""The daemon says what it is doing: a line a minute (placed, blocked and by which rule, settled by outcome,
live calls), or with `-v` a line per call; a line when it stops placing calls, and the run's summary."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable

from dialer.observe import events as oe
from dialer.observe.tally import Tally


def _counts(c: Counter | dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


class Narrator:
    """A bus subscriber writing human lines through `write` (stderr in `dialer run`)."""

    def __init__(self, write: Callable[[str], None], *, per_call: bool = False, every: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.write = write
        self.per_call = per_call
        self.every = every
        self.monotonic = monotonic
        self._last = monotonic()
        self._reset()

    def _reset(self) -> None:
        self.placed = 0
        self.blocked: Counter = Counter()
        self.settled: Counter = Counter()
        self.alerts = 0

    def __call__(self, event: Any) -> None:
        if isinstance(event, oe.CallPlaced):
            self.placed += 1
            if self.per_call:
                self.write(f"placed {event.call_id} ({event.campaign}, {event.mode})")
        elif isinstance(event, oe.GateBlocked):
            self.blocked[event.rule] += 1
            if self.per_call:
                self.write(f"blocked ({event.campaign}) by {event.rule}: {event.reason}")
        elif isinstance(event, oe.CallSettled):
            if not event.inbound:
                self.settled[event.outcome] += 1
            if self.per_call:
                extra = "".join(f", {k}" for k in (event.disposition,) if k)
                self.write(f"settled {event.call_id}: {event.outcome}{extra}"
                           f"{' (abandoned)' if event.abandoned else ''}")
        elif isinstance(event, oe.QaAlert):
            self.alerts += 1
            self.write(f"QA alert on {event.call_id} ({event.campaign}): {', '.join(event.rules)}")
        elif isinstance(event, oe.Stopping):
            self.minute(event.live, force=True)
            self.write(f"stopping ({event.why}): no new calls; {event.live} live call(s) may finish")
        elif isinstance(event, oe.Tick):
            self.minute(event.live)

    def minute(self, live: int, force: bool = False) -> None:
        now = self.monotonic()
        if not force and now - self._last < self.every:
            return
        if force and not (self.placed or self.blocked or self.settled):
            return
        self._last = now
        blocked = sum(self.blocked.values())
        line = f"last {self.every:.0f}s:" if not force else "since the last line:"
        line += f" placed {self.placed}, blocked {blocked}"
        if blocked:
            line += f" ({_counts(self.blocked)})"
        line += f", settled {sum(self.settled.values())}"
        if self.settled:
            line += f" ({_counts(self.settled)})"
        line += f", {live} live"
        self.write(line)
        self._reset()


def summary_lines(tally: Tally) -> list[str]:
    """The run in two lines, for the end (exit, Ctrl-C, SIGTERM)."""
    lines = [f"summary: {tally.placed} placed, {tally.blocked} blocked"
             + (f" ({_counts(tally.blocked_by_rule)})" if tally.blocked_by_rule else "")
             + f", {tally.ended} settled" + (f" ({_counts(tally.by_outcome)})" if tally.by_outcome else "")
             + (f", {tally.abandoned} abandoned" if tally.abandoned else "")]
    return lines
