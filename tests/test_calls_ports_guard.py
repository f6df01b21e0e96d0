"""The store side of a call refuses what it must: results for a call that has ended, and right-party
verification once the debtor's day has seen 3 wrong answers (counted across calls, as they happen)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from common.clock import FixedClock
from dialer.calls.bot import script_debtor
from dialer.calls.ports import StorePorts
from dialer.store import core
from tests.engines import both_engines
from tests.test_durability_recovery import AT, _place, _store

pytestmark = both_engines


def test_results_for_an_ended_call_are_refused(tmp_path):
    store = _store(tmp_path, ["E1"])
    call_id = _place(store, "E1", answered=True)
    core.update_attempt(store, call_id, state="ended", outcome="answered", ended_at=AT.timestamp() + 60)
    n = len(core.call_events(store, call_id))
    ports = StorePorts(store, FixedClock(AT + timedelta(minutes=5)))

    async def forge() -> None:
        assert await ports.lookup(call_id) is None  # nothing about the debtor for a session on an ended call
        await ports.record_outcome(call_id, "promise", {"verified": True, "amount": "100.00", "due": "today"})
        await ports.record_transcript_turn(call_id, "callee", "I promise", 1.0, 2.0)
        await ports.transfer_context(call_id, {"verified": True})

    asyncio.run(forge())
    assert len(core.call_events(store, call_id)) == n
    assert not core.promises_for(store, call_id=call_id)
    assert core.get_attempt(store, call_id)["conversation"] in (0, None)


def test_wrong_answers_count_across_calls_and_lock_verification_for_the_day(tmp_path):
    store = _store(tmp_path, ["L1"])
    clock = FixedClock(AT)
    ports = StorePorts(store, clock)
    first = _place(store, "L1", answered=True)

    async def wrong(call_id: str, times: int) -> None:
        for _ in range(times):
            await ports.record_outcome(call_id, "verify_failure", {"node": "verify"})

    asyncio.run(wrong(first, 2))
    # a wrong answer is a fact, not the call's disposition
    assert "verify_failure" not in ports.calls[first].kinds
    core.update_attempt(store, first, state="ended", outcome="answered")
    with store.transaction() as conn:
        core.insert_attempt(conn, call_id="call-L1-b", debtor_id="L1", account_id="A-L1", campaign="en_demo",
                            phone=core.get_debtor(store, "L1")["phones"][0]["phone"], placed_at=AT.timestamp() + 600)
    ctx = asyncio.run(ports.lookup("call-L1-b"))
    assert ctx.extra["verify_failures_today"] == 2
    assert script_debtor(ctx).verify_failures_today == 2
    # the debtor's next local day starts afresh
    next_day = StorePorts(store, FixedClock(AT + timedelta(days=1)))
    assert next_day.verify_failures_today("L1", ctx.phone) == 0
