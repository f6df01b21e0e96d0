"""disposition.settle on calls built by hand: the bot's refinements of 'answered', call-backs, and the
collector-mode edges the recorded transcripts (test_calls_replay.py) do not reach."""
from __future__ import annotations

import asyncio

from common import vocab
from dialer.calls.call import AGENT, Call, CallRecord
from dialer.calls.disposition import settle
from dialer.telephony.ami import TrackedCall

T0 = 1_000_000.0


def _call(outcome: str, *, mode: str = "bot", answered_at: float | None = None, **facts) -> Call:
    async def tracked() -> TrackedCall:
        t = TrackedCall("c1", "+12125550100", placed_at=T0, answered_at=answered_at, dial_status="ANSWER",
                        hangup_cause=16)
        t.finish(outcome)
        return t

    call = Call("c1", "D1", "camp", "+12125550100", "m1", placed_at=T0, mode=mode, **facts)
    call.tracked = asyncio.run(tracked())
    return call


def _record(kinds=(), data=None, verified=False, transfer=None) -> CallRecord:
    return CallRecord("c1", "D1", "camp", kinds=list(kinds), data=dict(data or {}), verified=verified,
                      transfer=transfer)


def test_bot_call_answered_keeps_the_bots_last_disposition():
    call = _call(vocab.ANSWERED, answered_at=T0 + 5)
    call.record = _record(["promise"], {"verified": True}, verified=True, transfer={"agent": "agent1"})
    d = settle(call, now=T0 + 60, wall_now=T0 + 60)
    assert (d.outcome, d.abandoned, d.kind) == (vocab.ANSWERED, False, "promise")
    assert d.fields["conversation"] is True and d.fields["agent"] == "agent1"
    assert d.fields["answered_at"] == T0 + 5 and d.fields["state"] == "ended"


def test_bot_call_refined_to_machine_or_callee_hangup():
    machine = _call(vocab.ANSWERED)
    machine.record = _record(["machine"])
    assert settle(machine, now=T0).outcome == vocab.MACHINE
    assert settle(machine, now=T0).fields["machine"] is True
    gone = _call(vocab.ANSWERED)
    gone.record = _record([], {"hangup": "callee"})
    assert settle(gone, now=T0).outcome == vocab.CALLEE_HANGUP
    verified = _call(vocab.ANSWERED)
    verified.record = _record(["refusal"], {"hangup": "callee", "verified": True}, verified=True)
    assert settle(verified, now=T0).outcome == vocab.ANSWERED


def test_bot_call_not_answered_keeps_the_ami_outcome():
    for outcome in (vocab.BUSY, vocab.NO_ANSWER, vocab.UNALLOCATED, vocab.FAILED):
        d = settle(_call(outcome), now=T0)
        assert (d.outcome, d.abandoned, d.kind) == (outcome, False, None)
    d = settle(_call(vocab.UNKNOWN), now=T0)
    assert d.outcome == vocab.UNKNOWN and d.fields["state"] == "unknown"


def test_call_back_is_answered_with_the_bots_disposition():
    call = Call("in-1", "D1", "camp", "+12125550100", "m1", placed_at=T0, inbound=True)
    call.record = _record(["callback"], verified=True)
    d = settle(call, now=T0 + 30)
    assert (d.outcome, d.kind, d.fields["conversation"]) == (vocab.ANSWERED, "callback", True)


def test_collector_mode_person_who_waited_past_the_patience_and_hung_up_is_abandoned():
    call = _call(vocab.ANSWERED, mode=AGENT, answered_t=T0 + 3, human_t=T0 + 5)
    assert settle(call, now=T0 + 7.5, patience=2.0).outcome == vocab.ABANDONED
    assert settle(call, now=T0 + 6.5, patience=2.0).outcome == vocab.CALLEE_HANGUP  # hung up within it
    early = _call(vocab.ANSWERED, mode=AGENT, answered_t=T0 + 3)  # gone before the end of the greeting
    d = settle(early, now=T0 + 20, patience=2.0)
    assert (d.outcome, d.abandoned, d.fields["answered_at"]) == (vocab.CALLEE_HANGUP, False, T0 + 3)
