"""The run's tally: what `dialer run` prints when it stops (the `stopped:` line and the JSON summary), counted
from the bus. It replaces the daemon's own counters."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dialer.calls.events as ev
from dialer.observe import events as oe


@dataclass
class Tally:
    placed: int = 0
    blocked: int = 0
    ended: int = 0
    reconciled: int = 0
    adopted: int = 0
    drained: int = 0  # live calls that finished during a graceful stop
    hung_up: int = 0  # channels still up when the stop's grace ran out
    abandoned: int = 0
    connected: int = 0  # calls a collector took from the queue
    by_outcome: dict[str, int] = field(default_factory=dict)
    blocked_by_rule: dict[str, int] = field(default_factory=dict)
    agi: dict[str, int] = field(default_factory=lambda: {"session": 0, "rejected": 0, "error": 0})

    def __call__(self, event: Any) -> None:
        if isinstance(event, oe.CallPlaced):
            self.placed += 1
        elif isinstance(event, oe.GateBlocked):
            self.blocked += 1
            self.blocked_by_rule[event.rule] = self.blocked_by_rule.get(event.rule, 0) + 1
        elif isinstance(event, oe.CallSettled):
            if event.abandoned:
                self.abandoned += 1
            if not event.inbound:
                self.ended += 1
                self.by_outcome[event.outcome] = self.by_outcome.get(event.outcome, 0) + 1
        elif isinstance(event, oe.CallReconciled):
            self.reconciled += 1
        elif isinstance(event, oe.CallAdopted):
            self.adopted += 1
        elif isinstance(event, oe.Drained):
            self.drained += event.finished
            self.hung_up += event.hung_up
        elif isinstance(event, ev.AgentConnect):
            self.connected += 1
        elif isinstance(event, oe.AgiSession):
            self.agi[event.result] = self.agi.get(event.result, 0) + 1

    def summary(self, still_open: int) -> dict[str, Any]:
        """The JSON summary `dialer run` prints on stdout (docs/CONTRACTS.md)."""
        return {"placed": self.placed, "blocked": self.blocked, "ended": self.ended, "reconciled": self.reconciled,
                "adopted": self.adopted, "drained": self.drained, "hung_up": self.hung_up, "open": still_open,
                "outcomes": self.by_outcome, "blocked_by_rule": self.blocked_by_rule}
