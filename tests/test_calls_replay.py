"""Recorded AMI transcripts (tests/fixtures/ami/, made by tests/fixtures/ami/record.py against the harness)
replayed with no Asterisk: each message goes through AMIController's event handling (which classifies the
dial), the listener turns it into a typed call event (calls/events.py) that the Call applies at its recorded
time, and disposition.settle() says how the call ended; the outcome and `abandoned` are asserted per case."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from common import vocab
from dialer.calls import events as ev
from dialer.calls.call import AGENT, Call
from dialer.calls.disposition import Disposition, settle
from dialer.telephony.ami import AMIController, TrackedCall

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ami"
T0 = 1_700_000_000.0  # the daemon's clock at the Originate


def load(path: Path) -> tuple[dict[str, str], list[tuple[float, str, dict[str, Any]]]]:
    """(the header's facts, [(seconds since Originate, 'event' | 'response', message)])."""
    meta: dict[str, str] = {}
    blocks: list[tuple[float, str, dict[str, Any]]] = []
    for chunk in path.read_text().split("\n\n"):
        lines = [ln for ln in chunk.splitlines() if ln.strip()]
        if lines and lines[0].startswith("#"):
            for ln in lines:
                key, _, value = ln.lstrip("# ").partition(": ")
                if value:
                    meta[key] = value
            continue
        if not lines:
            continue
        _, t, source = lines[0].split()
        msg: dict[str, Any] = {}
        for ln in lines[1:]:
            key, _, value = ln.partition(": ")
            msg[key] = value
        blocks.append((float(t), source, msg))
    return meta, blocks


def replay(path: Path) -> tuple[Call, Disposition, dict[str, str]]:
    meta, blocks = load(path)
    call_id = meta["call_id"]

    async def run() -> tuple[Call, float]:
        ami = AMIController("127.0.0.1", 9, "u", "s")
        ami.late_grace = 0.05
        tracked = TrackedCall(call_id, meta["number"], placed_at=T0)
        ami.calls[call_id] = tracked
        call = Call(call_id, "D1", "camp", meta["number"], None, placed_at=T0, mode=AGENT, tracked=tracked)
        clock = {"now": T0, "ended": None}

        def listener(msg: dict[str, Any]) -> None:
            event = ev.parse(msg)
            if event is not None and call_id in (getattr(event, "call_id", None), getattr(event, "uniqueid", None)):
                call.apply(event, clock["now"])

        ami.listeners.append(listener)
        responses: list[dict[str, Any]] = []
        for t, source, msg in blocks + [(float("inf"), "end", {})]:
            if responses and source != "response":  # one Originate's response messages resolve one future
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(responses)
                ami._originate_done(tracked, fut)
                responses = []
            if source == "end":
                break
            clock["now"] = T0 + t
            if source == "response":
                responses.append(msg)
            else:
                ami._on_event(None, msg)
            if tracked.done.done() and clock["ended"] is None:
                clock["ended"] = clock["now"]
        await asyncio.wait_for(tracked.done, 2)
        ami.manager.closing = True
        return call, clock["ended"] or clock["now"]

    call, ended = asyncio.run(run())
    return call, settle(call, now=ended + 0.05, patience=float(meta["patience"])), meta


CASES = {  # case → (outcome, abandoned)
    "busy": (vocab.BUSY, False),
    "no_answer": (vocab.NO_ANSWER, False),
    "unallocated": (vocab.UNALLOCATED, False),
    "human": (vocab.ANSWERED, False),
    "machine": (vocab.MACHINE, False),
    "abandoned": (vocab.ABANDONED, True),
    "late": (vocab.ANSWERED, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recorded_call_settles_to_its_outcome(case):
    call, disp, meta = replay(FIXTURES / f"{case}.txt")
    assert (disp.outcome, disp.abandoned) == CASES[case], (meta, call)
    assert disp.fields["outcome"] == disp.outcome and disp.fields["abandoned"] == disp.abandoned


def test_recorded_floor_facts():
    human, disp, _ = replay(FIXTURES / "human.txt")
    assert human.agent == "agent1" and disp.fields["agent"] == "agent1"
    assert human.answered_t is not None and human.human_t is not None and human.connected_t is not None
    machine, disp, _ = replay(FIXTURES / "machine.txt")
    assert machine.machine and machine.connected_t is None and disp.fields["machine"] is True
    gave_up, _, _ = replay(FIXTURES / "abandoned.txt")
    assert gave_up.queue_status == "TIMEOUT" and gave_up.info_played and gave_up.agent is None
    late, _, _ = replay(FIXTURES / "late.txt")
    assert late.connected_t - late.human_t > 2.0 and late.agent == "agent1"
    for case in ("busy", "no_answer", "unallocated"):
        call, disp, _ = replay(FIXTURES / f"{case}.txt")
        assert call.answered_t is None and "answered_at" not in disp.fields
