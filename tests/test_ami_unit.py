"""AMI controller logic on recorded event orders (no Asterisk): a failed Originate's response may
arrive before its channel's events; the outcome still comes from the Hangup cause."""
from __future__ import annotations

import asyncio

from dialer.telephony.ami import AMIController


def _originate_reply(reason: str) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result([{"Response": "Success", "Message": "Originate successfully queued"},
                    {"Event": "OriginateResponse", "Response": "Failure", "Reason": reason}])
    return fut


def test_failed_originate_waits_for_the_hangup_cause():
    async def run():
        ami = AMIController("127.0.0.1", 9, "u", "s")
        ami.late_grace = 0.2
        from dialer.telephony.ami import TrackedCall
        out = {}
        for name, reason, events in (
            ("unalloc", "0", [{"Event": "Hangup", "Uniqueid": "unalloc", "Cause": "1"}]),
            ("busy", "5", [{"Event": "DialEnd", "DestUniqueid": "busy", "DialStatus": "BUSY"},
                           {"Event": "Hangup", "Uniqueid": "busy", "Cause": "17"}]),
            ("silent", "0", []),          # no channel events at all: the channel never came up
            ("ringout", "3", []),
        ):
            call = TrackedCall(call_id=name, number="+15550000000", placed_at=0.0)
            ami.calls[name] = call
            ami._originate_done(call, _originate_reply(reason))  # the response first...
            for e in events:                                      # ...then the channel's events
                ami._on_event(None, e)
            await asyncio.wait_for(call.done, 2)
            out[name] = call.outcome
        ami.manager.closing = True
        return out

    assert asyncio.run(run()) == {"unalloc": "unallocated", "busy": "busy", "silent": "failed",
                                  "ringout": "no_answer"}
