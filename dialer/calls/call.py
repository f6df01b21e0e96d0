"""One call while it runs: who and where (ids, mode), what the floor saw (answer, greeting end, machine,
queue result, collector) from the typed call events, the AMI controller's TrackedCall and the bot's record.
A composition of the three state objects the daemon keeps; `disposition.settle()` reads it at the end."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialer.calls import events as ev
from dialer.telephony.ami import TrackedCall

BOT, AGENT = "bot", "agent"  # a voice bot answers, or (collector modes) a person goes straight to the queue
PREVIEW = "preview"  # a collector accepted the debtor first: their phone rings, then the debtor's (calls/preview.py)


@dataclass
class CallRecord:
    """What the bot's flow reports about one call while it runs (through calls/ports.py)."""

    call_id: str
    debtor_id: str
    campaign: str
    kinds: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    transfer: dict[str, Any] | None = None
    verified: bool = False
    started_at: float | None = None


@dataclass
class Call:
    call_id: str
    debtor_id: str
    campaign: str
    phone: str
    segment: str | None
    placed_at: float = 0.0
    mode: str = BOT
    inbound: bool = False
    tracked: TrackedCall | None = None  # the AMI controller's view: dial status, hangup cause, outcome
    record: CallRecord | None = None  # the bot's side (outcomes, transcript), attached when the call ends
    transfer: dict[str, Any] | None = None  # the bot's context for the collector, kept until the queue connects
    # the floor, in the daemon's clock
    answered_t: float | None = None
    human_t: float | None = None  # end of the greeting (AMD said HUMAN): the abandon clock starts
    machine: bool = False
    connected_t: float | None = None
    agent: str | None = None
    queue_status: str | None = None  # set when the queue gave up (no collector in time)
    info_played: bool = False

    def apply(self, event: ev.CallEvent, now: float) -> None:
        """What one event tells about this call (the daemon writes the call events and feeds the pacer)."""
        if isinstance(event, ev.DialAnswered):
            if self.answered_t is None:
                self.answered_t = now
            if self.mode == PREVIEW and self.connected_t is None:
                self.connected_t = now  # the collector is on the line before the debtor answers
        elif isinstance(event, ev.DialerAMD):
            if self.answered_t is None:
                self.answered_t = now
            if event.status == "MACHINE":
                self.machine = True
        elif isinstance(event, ev.DialerHuman):
            self.human_t = now
        elif isinstance(event, ev.DialerQueueResult):
            if event.status:
                self.queue_status = event.status
        elif isinstance(event, ev.DialerInfoPlayed):
            self.info_played = True
        elif isinstance(event, ev.AgentConnect):
            self.connected_t, self.agent = now, event.member

    @property
    def done_waiting(self) -> bool:
        """In the pacer's terms: nobody waits for a collector on this call any more (a machine, connected,
        or the queue gave up)."""
        return self.machine or self.connected_t is not None or self.queue_status is not None
