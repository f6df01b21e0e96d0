"""How a call ended, decided once: `settle(call, now=…)` → Disposition(outcome, abandoned, fields). Pure: the
daemon passes the call (its AMI facts, floor times and the bot's record) and the time, and writes the result."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common import vocab

if TYPE_CHECKING:
    from dialer.calls.call import Call


@dataclass(frozen=True)
class Disposition:
    outcome: str
    abandoned: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # the attempt's columns to write

    @property
    def kind(self) -> str | None:
        """What the bot recorded last (promise, refusal, …), if anything."""
        return self.fields.get("disposition")


def settle(call: Call, *, now: float, patience: float = 2.0, wall_now: float | None = None) -> Disposition:
    """The outcome of one finished call. `now` is the daemon's clock; `patience` the profile's seconds a
    collector has after the end of the greeting; `wall_now` the wall clock the AMI times were taken in."""
    if call.inbound:
        return _inbound(call, now)
    if call.mode in ("agent", "preview"):
        return _collector_mode(call, now, patience)
    return _bot(call, now, wall_now)


def _ami(call: Call) -> tuple[str, dict[str, Any]]:
    tracked = call.tracked
    outcome = (tracked.outcome if tracked else None) or vocab.UNKNOWN
    return outcome, {"dial_status": tracked.dial_status if tracked else None,
                     "hangup_cause": tracked.hangup_cause if tracked else None}


def _bot(call: Call, now: float, wall_now: float | None) -> Disposition:
    """A voice-bot call: the AMI outcome, refined by what the bot recorded (a machine, the callee hanging up
    before verification)."""
    rec = call.record
    outcome, ami = _ami(call)
    kind = None
    if outcome == vocab.ANSWERED:
        kinds = rec.kinds if rec else []
        data = rec.data if rec else {}
        last = kinds[-1] if kinds else None
        if last == vocab.MACHINE:
            outcome = vocab.MACHINE
        elif data.get("hangup") == "callee" and not data.get("verified"):
            outcome = vocab.CALLEE_HANGUP
        kind = last
    fields: dict[str, Any] = {
        "state": "unknown" if outcome == vocab.UNKNOWN else "ended", "outcome": outcome, **ami, "ended_at": now,
        "machine": outcome == vocab.MACHINE, "conversation": bool(rec and rec.verified), "disposition": kind,
    }
    answered_at = call.tracked.answered_at if call.tracked else None
    if answered_at and wall_now is not None:  # AMI times are wall-clock; the store uses the process clock (--at)
        fields["answered_at"] = now - (wall_now - answered_at)
    if rec and rec.transfer and rec.transfer.get("agent"):
        fields["agent"] = rec.transfer["agent"]
    return Disposition(outcome, False, fields)


def _collector_mode(call: Call, now: float, patience: float) -> Disposition:
    """A collector-mode call: machine, abandoned (no collector within the patience after the greeting: the
    caller heard the information message), answered (a collector took it; abandoned if late) or the callee
    hung up first."""
    outcome, ami = _ami(call)
    abandoned = False
    if outcome == vocab.ANSWERED:
        late = (call.connected_t is not None and call.human_t is not None
                and call.connected_t - call.human_t > patience)
        if call.machine:
            outcome = vocab.MACHINE
        elif call.connected_t is not None:
            abandoned = late
        elif call.queue_status is not None:
            outcome, abandoned = vocab.ABANDONED, True
        elif call.human_t is not None and now - call.human_t > patience:
            outcome, abandoned = vocab.ABANDONED, True  # waited past the patience and hung up
        else:
            outcome = vocab.CALLEE_HANGUP
    fields: dict[str, Any] = {
        "state": "unknown" if outcome == vocab.UNKNOWN else "ended", "outcome": outcome, **ami, "ended_at": now,
        "machine": outcome == vocab.MACHINE, "abandoned": abandoned, "agent": call.agent,
        "disposition": vocab.MACHINE if outcome == vocab.MACHINE else None,
    }
    if call.answered_t is not None:
        fields["answered_at"] = call.answered_t
    return Disposition(outcome, abandoned, fields)


def _inbound(call: Call, now: float) -> Disposition:
    """A call-back: answered by definition; what the bot recorded last is its disposition."""
    rec = call.record
    kind = rec.kinds[-1] if rec and rec.kinds else None
    return Disposition(vocab.ANSWERED, False, {"state": "ended", "outcome": vocab.ANSWERED, "ended_at": now,
                                               "conversation": bool(rec and rec.verified), "disposition": kind})
