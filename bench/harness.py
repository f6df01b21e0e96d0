"""Harness figures: `dialer asterisk up` to both instances fully booted, and Originate → DialEnd latency.

    python -m bench.harness [--calls 50] [--repeats 5] [--json]

Baselines measured in the same run: booting the PBX alone, and an AMI Ping round trip."""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from dialer.telephony.ami import AMIController
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

BASE = 29000


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def boot_times(repeats: int) -> tuple[list[float], list[float]]:
    both, pbx_only = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            h = Harness(Path(d), base_port=BASE, agi_port=BASE + 573, agents=2)
            t0 = time.monotonic()
            h.up()
            both.append(time.monotonic() - t0)
            h.down()
            h2 = Harness(Path(d) / "alone", base_port=BASE, agi_port=BASE + 573, agents=0)
            h2.render()
            assert h2.pbx is not None
            t0 = time.monotonic()
            h2.pbx.start()
            h2.pbx.wait_booted()
            pbx_only.append(time.monotonic() - t0)
            h2.pbx.stop()
    return both, pbx_only


async def latencies(h: Harness, calls: int, concurrency: int) -> dict[str, list[float]]:
    st = h.state
    assert st is not None
    ami = AMIController("127.0.0.1", st.pbx.ami_port, st.pbx.ami_user, st.pbx.ami_secret)
    dial_end: dict[str, float] = {}
    ami.listeners.append(lambda e: dial_end.setdefault(e.get("DestUniqueid", ""), time.monotonic())
                         if e.get("Event") == "DialEnd" else None)
    await ami.connect()
    ping = []
    for _ in range(calls):
        t0 = time.monotonic()
        await ami.send({"Action": "Ping"})
        ping.append(time.monotonic() - t0)
    out: dict[str, list[float]] = {"ping": ping, "answered": [], "busy": []}
    for kind, number in (("answered", "+15550000001"), ("busy", "+15550000002")):
        sent: dict[str, float] = {}
        for batch in range(0, calls, concurrency):
            tracked = []
            for i in range(batch, min(calls, batch + concurrency)):
                cid = f"bench-{kind}-{i}-{time.time_ns()}"
                sent[cid] = time.monotonic()
                tracked.append(await ami.originate(cid, number, context="bench", exten="hangup", ring_timeout=10))
            await asyncio.wait_for(asyncio.gather(*(t.done for t in tracked)), 60)
        out[kind] = [dial_end[c] - sent[c] for c in sent if c in dial_end]
    await ami.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    both, alone = boot_times(args.repeats)
    beh = behaviours_from_dict({"+15550000001": {"answer_after": 0, "then": "silent", "hangup_after": 1},
                                "+15550000002": {"busy": True}})
    with tempfile.TemporaryDirectory() as d:
        h = Harness(Path(d), base_port=BASE, agi_port=BASE + 573, agents=0, behaviours=beh)
        h.up()
        try:
            # a context that just hangs up once answered, so the bench measures signalling only
            assert h.pbx is not None
            (h.pbx.dir / "bench.conf").write_text("[bench]\nexten => hangup,1,Hangup()\n")
            with open(h.pbx.dir / "extensions.conf", "a") as fh:
                fh.write('\n#include "bench.conf"\n')
            h.pbx.rx("dialplan reload")
            lat = asyncio.run(latencies(h, args.calls, args.concurrency))
        finally:
            h.down()

    res = {
        "boot_both_median_s": statistics.median(both), "boot_both_max_s": max(both),
        "boot_pbx_alone_median_s": statistics.median(alone),
        "ami_ping_median_ms": statistics.median(lat["ping"]) * 1000,
        "originate_dialend_answered_median_ms": statistics.median(lat["answered"]) * 1000,
        "originate_dialend_answered_p95_ms": pct(lat["answered"], 0.95) * 1000,
        "originate_dialend_busy_median_ms": statistics.median(lat["busy"]) * 1000,
        "originate_dialend_busy_p95_ms": pct(lat["busy"], 0.95) * 1000,
        "calls": len(lat["answered"]) + len(lat["busy"]), "concurrency": args.concurrency,
    }
    res["boot_ratio_vs_pbx_alone"] = res["boot_both_median_s"] / res["boot_pbx_alone_median_s"]
    res["answered_ratio_vs_ping"] = res["originate_dialend_answered_median_ms"] / res["ami_ping_median_ms"]
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'figure':44} {'value':>10}")
    print(f"{'dialer asterisk up → both booted (median)':44} {res['boot_both_median_s']:9.3f}s")
    print(f"{'  baseline: PBX alone booted (median)':44} {res['boot_pbx_alone_median_s']:9.3f}s")
    print(f"{'  ratio':44} {res['boot_ratio_vs_pbx_alone']:9.2f}x")
    print(f"{'Originate → DialEnd, answered (median)':44} {res['originate_dialend_answered_median_ms']:8.1f}ms")
    print(f"{'Originate → DialEnd, answered (p95)':44} {res['originate_dialend_answered_p95_ms']:8.1f}ms")
    print(f"{'Originate → DialEnd, busy (median)':44} {res['originate_dialend_busy_median_ms']:8.1f}ms")
    print(f"{'Originate → DialEnd, busy (p95)':44} {res['originate_dialend_busy_p95_ms']:8.1f}ms")
    print(f"{'  baseline: AMI Ping round trip (median)':44} {res['ami_ping_median_ms']:8.2f}ms")
    print(f"{'  ratio answered vs ping':44} {res['answered_ratio_vs_ping']:9.1f}x")
    print(f"({res['calls']} calls, {args.concurrency} at a time)")


if __name__ == "__main__":
    main()
