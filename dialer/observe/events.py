"""The facts the daemon publishes on its bus besides the typed AMI / dialplan events of calls/events.py: one
small frozen dataclass each. Subscribers match on the class; nothing here knows who listens."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallPlaced:
    """The gate allowed the call and Asterisk took the Originate."""

    call_id: str
    campaign: str
    mode: str  # bot | agent
    at: float


@dataclass(frozen=True)
class GateBlocked:
    """The gate refused a call: the rule that said no (a rule id of docs/CONTRACTS.md) and why."""

    campaign: str
    rule: str
    reason: str
    at: float


@dataclass(frozen=True)
class OriginateFailed:
    call_id: str
    campaign: str
    error: str
    at: float


@dataclass(frozen=True)
class CallSettled:
    """How a call ended (calls/disposition.py), once, when the daemon wrote it."""

    call_id: str
    campaign: str
    outcome: str
    abandoned: bool
    disposition: str | None  # what the bot recorded last (promise, refusal, …)
    verified: bool  # a right-party contact
    mode: str
    inbound: bool
    agent: str | None
    at: float


@dataclass(frozen=True)
class PaceDecision:
    """One pacing decision of a collector-mode campaign, and how long it took to decide."""

    campaign: str
    seconds: float
    at: float
    ready: int
    ringing: int
    screening: int
    waiting: int
    talking: int
    wrapup: int
    want: int
    floor: int
    placed: int
    in_flight: int
    budget_left: float
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("campaign", "seconds")}


@dataclass(frozen=True)
class QaAlert:
    """A compliance finding on a call (live QA while it runs, or the end-of-call score)."""

    call_id: str
    campaign: str
    rules: tuple[str, ...]
    at: float
    score: float | None = None
    live: bool = False
    detail: str = ""


@dataclass(frozen=True)
class AgiSession:
    """A FastAGI connection: `session` (served), `rejected` (no token, no route, not a live call) or `error`."""

    result: str


@dataclass(frozen=True)
class RecognizerTiming:
    """How long the recognizer took for one utterance (published by the voice side when it runs)."""

    seconds: float
    lang: str = ""
    backend: str = ""


@dataclass(frozen=True)
class CallAdopted:
    """A call a previous process left live on the PBX, followed from now on."""

    call_id: str
    campaign: str


@dataclass(frozen=True)
class CallReconciled:
    """An attempt a previous process left open, settled by this one (`source`: ami, cdr+cel, none)."""

    call_id: str
    campaign: str
    outcome: str
    source: str


@dataclass(frozen=True)
class Stopping:
    """The daemon stopped placing calls (SIGTERM, Ctrl-C, --max-seconds, idle) with this many calls live."""

    live: int
    why: str


@dataclass(frozen=True)
class Drained:
    """The graceful stop: `finished` calls ended during the grace period, `hung_up` channels were hung up."""

    finished: int
    hung_up: int = 0


@dataclass(frozen=True)
class Tick:
    """The daemon's loop went round (the stalled-daemon alert watches this)."""

    at: float
    live: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
