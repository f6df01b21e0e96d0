"""Store benchmark: `take_attempt` per second on PostgreSQL with 1, 2 and 4 concurrent processes (each a
"server" deciding for its own debtors, as a leased hopper would hand them out), against SQLite with one
process, in the same run, on the same seeded debtors.

    python -m bench.store [--takes 400] [--procs 1,2,4] [--history 3] [--json]

The PostgreSQL server is a throwaway cluster this run starts (dialer/store/pgcluster.py; fsync off, as
in the tests), on this machine: the figures show the cost of the per-debtor lock, the shared audit
chain and the round trips, not of a networked disk. Every take is decided from the debtor's history
(`--history` ended attempts earlier in the week) and is allowed, so each writes an attempt row and its
audit entry.

Added latency per call placed: one process places calls one after another doing the store work the daemon
does for each (`take_attempt` before Originate — the part on the call's critical path — then the attempt's
ringing, answered and ended updates and the debtor's next allowed time); p50/p95 per call on each engine, and
PostgreSQL minus SQLite.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dialer.gate.account import take_attempt
from dialer.gate.rules import load_rules
from dialer.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 2, 30, tzinfo=timezone.utc)  # 10:30 in Beijing
DAY = 86400.0


def seed(store: Store, debtors: int, history: int) -> None:
    t = NOW.timestamp()
    with store.transaction():
        store.db["campaigns"].insert({"name": "bench", "file": "bench", "profile": "cn", "locale": "zh-CN",
                                      "dial_mode": "progressive", "line_limit": 10, "config_json": "{}",
                                      "loaded_at": 0.0})
        store.db["debtors"].insert_all({"debtor_id": f"d{i}", "campaign": "bench", "name": "bench",
                                        "timezone": "Asia/Shanghai", "customer_type": "first", "lang": "zh",
                                        "imported_at": 0.0} for i in range(debtors))
        store.db["phones"].insert_all({"debtor_id": f"d{i}", "phone": f"+86138{i:08d}", "rank": 0}
                                      for i in range(debtors))
        store.db["attempts"].insert_all(
            {"id": f"h{i}-{k}", "debtor_id": f"d{i}", "campaign": "bench", "phone": f"+86138{i:08d}",
             "placed_at": t - (k + 2) * DAY, "state": "ended", "outcome": "no_answer", "ended_at": t - (k + 2) * DAY + 30}
            for i in range(debtors) for k in range(history))


def _worker(target: str, first: int, n: int, rules_file: str, barrier: Any, out: Any) -> None:
    rules = load_rules(Path(rules_file))
    store = Store(target, migrate=False)
    allowed = 0
    barrier.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(first, first + n):
        d = take_attempt(store, call_id=f"b{i}", debtor_id=f"d{i}", account_id=None, campaign="bench",
                         phone=f"+86138{i:08d}", rules=rules, now=NOW)
        allowed += d.allowed
    out.put((time.perf_counter() - t0, time.process_time() - c0, allowed))
    store.close()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _latency_worker(target: str, first: int, n: int, rules_file: str, out: Any) -> None:
    from dialer.store import core

    rules = load_rules(Path(rules_file))
    store = Store(target, migrate=False)
    t = NOW.timestamp()
    take, call = [], []
    for i in range(first, first + n):
        cid = f"l{i}"
        t0 = time.perf_counter()
        d = take_attempt(store, call_id=cid, debtor_id=f"d{i}", account_id=None, campaign="bench",
                         phone=f"+86138{i:08d}", rules=rules, now=NOW)
        t1 = time.perf_counter()
        assert d.allowed, d
        core.update_attempt(store, cid, state="ringing", at=t)
        core.update_attempt(store, cid, state="answered", answered_at=t + 3, at=t + 3)
        core.update_attempt(store, cid, state="ended", outcome="answered", ended_at=t + 40, at=t + 40)
        core.set_next_allowed(store, f"d{i}", t + DAY)
        call.append(time.perf_counter() - t0)
        take.append(t1 - t0)
    out.put({"take_p50_ms": round(1000 * _pct(take, 0.5), 2), "take_p95_ms": round(1000 * _pct(take, 0.95), 2),
             "call_p50_ms": round(1000 * _pct(call, 0.5), 2), "call_p95_ms": round(1000 * _pct(call, 0.95), 2)})
    store.close()


def latency(target: str, first: int, n: int, rules_file: Path) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_latency_worker, args=(target, first, n, str(rules_file), out))
    p.start()
    res = out.get(timeout=600)
    p.join(timeout=60)
    return res


def run_together(target, args_list: list[tuple]) -> tuple[list[Any], float]:
    """Fork one process per argument tuple; each calls `target(*args, barrier, out)`, waits at the barrier
    and puts its result on `out`. Returns the results and the wall seconds from the common start."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(len(args_list) + 1), ctx.Queue()
    ps = [ctx.Process(target=target, args=(*args, barrier, out)) for args in args_list]
    for p in ps:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=600) for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join(timeout=60)
    return results, wall


def run(target: str, procs: int, per_proc: int, rules_file: Path) -> dict[str, Any]:
    results, wall = run_together(_worker, [(target, k * per_proc, per_proc, str(rules_file)) for k in range(procs)])
    n = procs * per_proc
    return {"processes": procs, "takes": n, "allowed": sum(r[2] for r in results), "seconds": round(wall, 3),
            "cpu_seconds": round(sum(r[1] for r in results), 3), "per_second": round(n / wall, 1),
            "ms_per_take": round(1000 * max(r[0] for r in results) / per_proc, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.splitlines()[0])
    ap.add_argument("--takes", type=int, default=400, help="take_attempt calls per process")
    ap.add_argument("--procs", default="1,2,4", help="PostgreSQL process counts")
    ap.add_argument("--history", type=int, default=3, help="ended attempts per debtor earlier in the week")
    ap.add_argument("--rules", type=Path, default=ROOT / "compliance_rules.yaml")
    ap.add_argument("--calls", type=int, default=300, help="calls placed one by one for the latency figures")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    procs = [int(p) for p in args.procs.split(",")]
    debtors = max(procs) * args.takes + args.calls  # the latency run's debtors come after the takes'
    lat_first = max(procs) * args.takes

    from dialer.store.pgcluster import Cluster
    from dialer.telephony.harness import claim_ports

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        db = str(Path(tmp) / "bench.db")
        s = Store(db)
        seed(s, debtors, args.history)
        s.close()
        rows.append({"engine": "sqlite", **run(db, 1, args.takes, args.rules)})
        lat = {"sqlite": latency(db, lat_first, args.calls, args.rules)}
        block = claim_ports(1)
        cluster = Cluster()
        try:
            cluster.start(block.base)
            template = cluster.create_database("bench_template")
            s = Store(template)
            seed(s, debtors, args.history)
            s.close()
            for n, k in enumerate(procs):
                url = cluster.create_database(f"bench_{n}", template="bench_template")
                rows.append({"engine": "postgres", **run(url, k, args.takes, args.rules)})
            lat["postgres"] = latency(cluster.create_database("bench_latency", template="bench_template"),
                                      lat_first, args.calls, args.rules)
        finally:
            cluster.stop()
            block.release()
    base = rows[0]["per_second"]
    for r in rows:
        r["vs_sqlite_one"] = round(r["per_second"] / base, 2)
    added = {k: round(lat["postgres"][k] - lat["sqlite"][k], 2) for k in lat["sqlite"]}
    out = {"takes_per_process": args.takes, "history_per_debtor": args.history, "cpus": os.cpu_count(),
           "rows": rows, "latency": lat | {"added_by_postgres": added}, "latency_calls": args.calls}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"take_attempt: {args.takes} per process, {args.history} past attempts per debtor, "
          f"{os.cpu_count()} CPUs, PostgreSQL on this machine (fsync off)")
    print(f"{'engine':<10}{'procs':>6}{'takes':>7}{'wall s':>8}{'CPU s':>8}{'per s':>9}{'ms/take':>9}{'vs SQLite x1':>14}")
    for r in rows:
        print(f"{r['engine']:<10}{r['processes']:>6}{r['takes']:>7}{r['seconds']:>8.2f}{r['cpu_seconds']:>8.2f}"
              f"{r['per_second']:>9.0f}{r['ms_per_take']:>9.2f}{r['vs_sqlite_one']:>14.2f}")
    print(f"\nstore work per call placed ({args.calls} calls, one process): take_attempt before Originate,"
          " and the whole call (take + ringing/answered/ended updates + next allowed time)")
    print(f"{'engine':<22}{'take p50':>10}{'take p95':>10}{'call p50':>10}{'call p95':>10}   (ms)")
    for name, r in (("sqlite", lat["sqlite"]), ("postgres", lat["postgres"]), ("added by postgres", added)):
        print(f"{name:<22}{r['take_p50_ms']:>10.2f}{r['take_p95_ms']:>10.2f}{r['call_p50_ms']:>10.2f}"
              f"{r['call_p95_ms']:>10.2f}")
    if any(r["allowed"] != r["takes"] for r in rows):
        print("WARNING: some takes were blocked (the figures then mix allowed and blocked decisions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

