"""The observers' own CPU cost, measured precisely without Asterisk (bench/observe.py's end-to-end CPU figure
is within run-to-run noise on a shared machine):

    python -m bench.observe_bus [--calls 2000] [--json]

Replays the bus traffic of `--calls` calls (placed, answered, AMD, AGI session, hang-up, settled, plus the
daemon's 4 loop ticks a second for a 15-s call) through (a) the baseline the daemon always has — the bus and
the run's tally — and (b) the tally plus narration, floor view, Prometheus metrics and the wallboard's wake-up,
then prices one wallboard push (floor snapshot + JSON) and one /metrics render. CPU time, same process, same
run."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import dialer.calls.events as ev
from common.clock import FixedClock
from common.paths import REPO
from dialer.gate.rules import load_rules
from dialer.observe import events as oe
from dialer.observe.bus import Bus
from dialer.observe.floor import FloorView
from dialer.observe.metrics import Metrics
from dialer.observe.narrate import Narrator
from dialer.observe.tally import Tally
from dialer.observe.wallboard import Wallboard
from dialer.store import Store


def traffic(calls: int) -> list:
    out: list = []
    for i in range(calls):
        cid = f"camp-{i:06d}"
        out += [oe.CallPlaced(cid, "camp", "bot", 0.0), ev.DialAnswered(cid), ev.DialerAMD(cid, "HUMAN", "x"),
                oe.AgiSession("session"), ev.ChannelHangup(cid, 16),
                oe.CallSettled(cid, "camp", "answered", False, None, i % 3 == 0, "bot", False, None, 0.0)]
        out += [oe.Tick(0.0, 3)] * 60  # 15 s of loop turns at 4 a second
    return out


def cpu_of(fn, *args) -> float:
    t0 = time.process_time()
    fn(*args)
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    events = traffic(a.calls)
    with tempfile.TemporaryDirectory() as tmp:
        src = SimpleNamespace(calls={}, collectors=None, ami=None, store=Store(Path(tmp) / "d.db"),
                              rules=load_rules(REPO / "compliance_rules.yaml"),
                              clock=FixedClock(datetime(2026, 3, 2, 15, tzinfo=timezone.utc)),
                              campaigns={"camp": SimpleNamespace(name="camp", profile="us", dial_mode="bot_only",
                                                                 line_limit=4)})

        def run(bus: Bus) -> None:
            for e in events:
                bus.publish(e)

        base = Bus()
        base.subscribe(Tally())
        full = Bus()
        full.subscribe(Tally())
        full.subscribe(Narrator(lambda line: None, every=60.0))
        floor = FloorView(src)
        full.subscribe(floor)
        metrics = Metrics(floor, src)
        full.subscribe(metrics)
        full.subscribe(Wallboard(floor, metrics))
        cpu_base = min(cpu_of(run, base) for _ in range(3))
        cpu_full = min(cpu_of(run, full) for _ in range(3))
        n = 500

        def pushes() -> None:
            for _ in range(n):
                json.dumps(floor.snapshot(), separators=(",", ":"))

        def scrapes() -> None:
            for _ in range(n // 10):
                metrics.render()

        push = min(cpu_of(pushes) for _ in range(3)) / n
        scrape = min(cpu_of(scrapes) for _ in range(3)) / (n // 10)
    per_call_base = cpu_base / a.calls
    per_call_full = cpu_full / a.calls
    # a 15-s call as the wallboard sees it: ~5 pushes (one per floor event) + 15 heartbeats; a scrape every 15 s
    per_call_all = per_call_full + 20 * push + scrape
    res = {"calls": a.calls, "events": len(events), "bus_tally_us_per_call": round(per_call_base * 1e6, 1),
           "bus_observers_us_per_call": round(per_call_full * 1e6, 1), "push_us": round(push * 1e6, 1),
           "scrape_us": round(scrape * 1e6, 1), "observers_ms_per_call": round((per_call_all - per_call_base) * 1e3, 2)}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{a.calls} calls, {len(events)} bus events (ticks included)")
        print(f"bus + tally only (baseline)        {res['bus_tally_us_per_call']:>10} µs CPU per call")
        print(f"bus + tally + narration, floor, metrics, wallboard wake-up {res['bus_observers_us_per_call']:>10} µs per call")
        print(f"one wallboard push (snapshot + JSON) {res['push_us']:>8} µs; one /metrics render {res['scrape_us']} µs")
        print(f"observers per 15-s call, one open wallboard and a scrape every 15 s: {res['observers_ms_per_call']} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
