"""AMI controller against a real PBX: it survives the PBX restarting and follows calls afterwards."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from dialer.telephony.ami import AMIController, classify

pytestmark = pytest.mark.asterisk


def test_classify_from_dialend_and_cause():
    assert classify(False, "BUSY", 17) == "busy"
    assert classify(False, "NOANSWER", 1) == "unallocated"
    assert classify(False, None, 0, reason=3) == "no_answer"
    assert classify(False, "CONGESTION", 34) == "failed"
    assert classify(True, "ANSWER", 16) == "answered"


def test_controller_survives_pbx_restart_and_follows_calls_again(harness):
    async def run():
        pbx = harness.connection
        ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret,
                            backoff_min=0.1, backoff_max=1.0)
        await ami.connect()
        before = await ami.originate(f"r-{uuid.uuid4().hex[:6]}", "+12125550116", ring_timeout=5)
        await asyncio.wait_for(before.done, 15)
        # a call in flight when the PBX goes away ends as 'unknown' (to be reconciled), never hangs
        inflight = await ami.originate(f"r-{uuid.uuid4().hex[:6]}", "+12125550117", ring_timeout=20)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(harness.pbx.restart, True)  # crash + restart
        await asyncio.wait_for(inflight.done, 15)
        t0 = time.monotonic()
        while ami.reconnects < 1 and time.monotonic() - t0 < 15:
            await asyncio.sleep(0.1)
        after = await ami.originate(f"r-{uuid.uuid4().hex[:6]}", "+12125550116", ring_timeout=5)
        await asyncio.wait_for(after.done, 15)
        unalloc = await ami.originate(f"r-{uuid.uuid4().hex[:6]}", "+12125550998", ring_timeout=5)
        await asyncio.wait_for(unalloc.done, 15)
        await ami.close()
        return before, inflight, after, unalloc, ami.reconnects

    before, inflight, after, unalloc, reconnects = asyncio.run(run())
    assert before.outcome == "busy"
    assert inflight.outcome == "unknown"
    assert reconnects >= 1
    assert after.outcome == "busy" and after.hangup_cause == 17
    assert unalloc.outcome == "unallocated"
