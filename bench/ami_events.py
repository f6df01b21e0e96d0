"""AMI events processed per second by the controller (dialer/telephony/ami.py), and the pacer's decision latency.

    python -m bench.ami_events [--calls 2000] [--json]

A loopback AMI feeder (127.0.0.1) logs the controller in, acknowledges its Originates, then streams the
events of every call as fast as the socket takes them: Newchannel, DialBegin, Newstate, DialEnd,
Newexten ×3, VarSet, Hangup (9 per call). The controller follows each call by its ChannelId and
classifies it. Baseline in the same run: the same byte stream read and split into messages with no
parsing — the floor any AMI client pays."""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from dialer.telephony.ami import AMIController

EVENTS_PER_CALL = 9


def call_events(call_id: str, i: int) -> bytes:
    chan = f"PJSIP/carrier-{i:08x}"
    common = f"Channel: {chan}\r\nUniqueid: {call_id}\r\nLinkedid: {call_id}\r\n"
    ev = [
        f"Event: Newchannel\r\nPrivilege: call,all\r\n{common}ChannelState: 0\r\nExten: bot\r\n",
        f"Event: DialBegin\r\nPrivilege: call,all\r\nDestChannel: {chan}\r\nDestUniqueid: {call_id}\r\nDialString: +1555{i:07d}@carrier\r\n",
        f"Event: Newstate\r\nPrivilege: call,all\r\n{common}ChannelState: 6\r\nChannelStateDesc: Up\r\n",
        f"Event: DialEnd\r\nPrivilege: call,all\r\nDestChannel: {chan}\r\nDestUniqueid: {call_id}\r\nDialStatus: ANSWER\r\n",
    ] + [f"Event: Newexten\r\nPrivilege: dialplan,all\r\n{common}Context: dialer-outbound\r\nExtension: bot\r\nPriority: {p}\r\n"
         for p in (1, 2, 3)] + [
        f"Event: VarSet\r\nPrivilege: dialplan,all\r\n{common}Variable: DIALER_NEXT\r\nValue: \r\n",
        f"Event: Hangup\r\nPrivilege: call,all\r\n{common}Cause: 16\r\nCause-txt: Normal Clearing\r\n",
    ]
    return "".join(e + "\r\n" for e in ev).encode()


async def feeder(calls: int, ids: list[str], ready: asyncio.Event, port_box: list[int], baseline: bool) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/5.0.4\r\n")
        originates = 0
        if not baseline:
            while originates < calls:
                block = await reader.readuntil(b"\r\n\r\n")
                text = block.decode()
                aid = next((line.split(": ", 1)[1] for line in text.split("\r\n") if line.startswith("ActionID")), "")
                if "Action: Login" in text:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n"
                                 "Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n".encode())
                elif "Action: Originate" in text:
                    originates += 1
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Originate successfully queued\r\n\r\n".encode())
                elif "Action: Ping" in text:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode())
            await ready.wait()
        for i, cid in enumerate(ids):
            writer.write(call_events(cid, i))
            if i % 200 == 0:
                await writer.drain()
        await writer.drain()
        try:
            await reader.read()  # until the client goes away
        except (asyncio.CancelledError, ConnectionError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_box.append(server.sockets[0].getsockname()[1])
    return server


async def run_controller(calls: int) -> float:
    ids = [f"bench-{i}" for i in range(calls)]
    ready, port = asyncio.Event(), []
    server = await feeder(calls, ids, ready, port, baseline=False)
    ami = AMIController("127.0.0.1", port[0], "bench", "x", ping_interval=3600)
    await ami.connect()
    tracked = [await ami.originate(cid, "+15550000000") for cid in ids]
    t0 = time.perf_counter()
    ready.set()
    await asyncio.wait_for(asyncio.gather(*(t.done for t in tracked)), 120)
    elapsed = time.perf_counter() - t0
    assert all(t.outcome == "answered" for t in tracked)
    await ami.close()
    server.close()
    await asyncio.sleep(0.05)
    return calls * EVENTS_PER_CALL / elapsed


async def run_baseline(calls: int) -> float:
    ids = [f"bench-{i}" for i in range(calls)]
    ready, port = asyncio.Event(), []
    server = await feeder(calls, ids, ready, port, baseline=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", port[0])
    await reader.readline()
    t0 = time.perf_counter()
    n, buf = 0, b""
    while n < calls * EVENTS_PER_CALL:
        buf += await reader.read(65536)
        parts = buf.split(b"\r\n\r\n")
        buf = parts.pop()
        n += len(parts)
    elapsed = time.perf_counter() - t0
    writer.close()
    server.close()
    await asyncio.sleep(0.05)
    return n / elapsed


def pacing_latency(samples: int = 2000) -> dict[str, float]:
    """Time for one pacing decision of our predictive pacer on a live-sized snapshot, if available."""
    try:
        from bench.pacing import decision_latency  # the pacing benchmark owns its snapshot shapes
    except (ImportError, AttributeError):
        return {}
    return decision_latency(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ours = [asyncio.run(run_controller(args.calls)) for _ in range(args.repeats)]
    base = [asyncio.run(run_baseline(args.calls)) for _ in range(args.repeats)]
    res = {"events": args.calls * EVENTS_PER_CALL, "controller_events_per_s": statistics.median(ours),
           "baseline_split_only_events_per_s": statistics.median(base)}
    res["ratio_vs_baseline"] = res["controller_events_per_s"] / res["baseline_split_only_events_per_s"]
    res.update(pacing_latency())
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'figure':48} {'value':>14}")
    print(f"{'AMI events processed/s by the controller':48} {res['controller_events_per_s']:14,.0f}")
    print(f"{'  baseline: read + split only':48} {res['baseline_split_only_events_per_s']:14,.0f}")
    print(f"{'  ratio':48} {res['ratio_vs_baseline']:14.3f}")
    for key, value in res.items():
        if key.startswith("pacing_"):
            print(f"{key:48} {value:14.1f}")
    print(f"({args.calls} calls, {res['events']} events per run, median of {args.repeats})")


if __name__ == "__main__":
    main()
