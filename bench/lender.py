"""Lender systems benchmark: webhook delivery from the durable outbox (events/s, delay p95 under a steady stream,
drain rate of a backlog) and exports (rows/s, peak memory on 1,000,000 attempts), each against a baseline measured
in the same run.

    python -m bench.lender [--attempts 1000000] [--rate 100] [--seconds 10] [--backlog 5000] [--json]

Webhooks: a receiver process (aiohttp on 127.0.0.1, checks every HMAC signature) and a producer process writing
promises through the store (each its own transaction, outbox row included) at `--rate` events/s for `--seconds`;
the Deliverer runs in this process. Delay = receiver's arrival time − the event's created_at. Baseline: the same
signed bodies POSTed straight to the receiver with the same concurrency (no outbox, no database).

Exports: `--attempts` rows bulk-inserted, then each export in its own child process whose peak RSS (ru_maxrss)
is reported: streaming CSV and JSON lines (dialer export's code path) on 10 % and on all the rows (constant memory
means the two peaks match), against two baselines — iterating the raw cursor without formatting (the speed
ceiling) and the naive fetch-everything-then-write (the memory a non-streaming export needs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_796_000_000.0  # 2026-11-30: placed_at of the first benchmark attempt


# -- shared set-up --------------------------------------------------------------------------------------------------

def make_store(path: Path, debtors: int = 1000):
    from dialer.campaign.config import load_campaign
    from dialer.store import Store, core

    store = Store(path)
    camp = load_campaign(ROOT / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, [
        {"debtor_id": f"B{i:05d}", "name": f"Debtor {i}", "phones": f"+1212555{i % 10000:04d}",
         "account_id": f"A{i:05d}", "amount_owed": "100.00", "currency": "USD", "days_past_due": "10",
         "customer_type": "first", "lang": "en"} for i in range(debtors)], camp.name)
    return store


# -- webhooks -------------------------------------------------------------------------------------------------------

def _receiver(port: int, secret: str, out: Any, ready: Any, stop: Any) -> None:
    """A lender endpoint: verifies each signature, notes (event id, created_at, arrival) until told to stop."""
    from aiohttp import web

    from dialer.api.webhooks import SIGNATURE_HEADER, verify

    seen: list[tuple[str, float, float]] = []
    bad = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal bad
        body = await request.read()
        now = time.time()
        if not verify(secret, request.headers.get(SIGNATURE_HEADER, ""), body):
            bad += 1
            return web.Response(status=401)
        data = json.loads(body)
        created = data["data"].get("bench_created_at") or datetime.fromisoformat(data["created_at"]).timestamp()
        seen.append((request.headers["Idempotency-Key"], float(created), now))
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    asyncio.run(main())
    out.put({"seen": seen, "bad": bad})


def _producer(db: str, rate: float, seconds: float, n: int | None) -> None:
    """Promises through the store at `rate`/s for `seconds` (or `n` at once when rate is 0)."""
    from dialer.store import Store, core

    store = Store(db, migrate=False)
    total = n if n is not None else int(rate * seconds)
    start = time.time()
    for i in range(total):
        if rate:
            wait = start + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
        # the promise and its outbox row, one transaction (created_at = now: the delay is measured from it)
        core.record_promise(store, None, f"B{i % 1000:05d}", None, "10.00", "2026-12-31", time.time())
    store.close()


def _free_port() -> int:
    from dialer.telephony.harness import claim_ports

    block = claim_ports(1)
    port = block.base
    block.release()
    return port


def bench_webhooks(rate: float, seconds: float, backlog: int, concurrency: int = 8) -> dict[str, Any]:
    from dialer.api.webhooks import Deliverer
    from dialer.store import Store
    from dialer.store.outbox import add_endpoint, endpoints, status

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.db"
        make_store(db).close()
        store = Store(db)
        port = _free_port()
        ep = add_endpoint(store, "bench", f"http://127.0.0.1:{port}/hook", ["promise"])
        ctx = mp.get_context("spawn")
        q, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
        rx = ctx.Process(target=_receiver, args=(port, ep["secret"], q, ready, stop))
        rx.start()
        ready.wait(30)

        async def deliver(until_idle: bool, max_s: float) -> Any:
            d = Deliverer(store, concurrency=concurrency, poll=0.05)
            halt = asyncio.Event()
            asyncio.get_running_loop().call_later(max_s, halt.set)
            return await d.run(halt, until_idle=until_idle)

        # 1. steady stream: producer at `rate`/s, deliverer running alongside
        prod = ctx.Process(target=_producer, args=(str(db), rate, seconds, None))
        prod.start()

        async def steady() -> None:
            task = asyncio.create_task(deliver(False, seconds + 30))
            while prod.is_alive() or status(store)["endpoints"][0]["pending"]:
                await asyncio.sleep(0.1)
            task.cancel()

        asyncio.run(steady())
        prod.join()
        steady_n = int(rate * seconds)

        # 2. backlog: `backlog` events already waiting (the receiver was down), drained from cold
        _producer(str(db), 0, 0, backlog)
        t1 = time.perf_counter()
        asyncio.run(deliver(True, 300))
        drain_s = time.perf_counter() - t1

        stop.set()
        got = q.get(timeout=60)
        rx.join(30)
        seen = got["seen"]
        steady = seen[:steady_n]
        steady_delays = sorted(arr - created for _, created, arr in steady)
        steady_s = max(arr for _, _, arr in steady) - min(created for _, created, _ in steady)
        keys = {k for k, _, _ in seen}
        results["steady"] = {"rate": rate, "seconds": seconds, "events": steady_n,
                             "delivered_per_s": round(steady_n / steady_s, 1),
                             "delay_p50_ms": round(1000 * statistics.median(steady_delays), 1),
                             "delay_p95_ms": round(1000 * steady_delays[int(0.95 * (len(steady_delays) - 1))], 1),
                             "delay_max_ms": round(1000 * steady_delays[-1], 1)}
        results["backlog"] = {"events": backlog, "seconds": round(drain_s, 2),
                              "delivered_per_s": round(backlog / drain_s, 1)}
        results["all_delivered_once"] = len(keys) == steady_n + backlog and got["bad"] == 0
        results["duplicates"] = len(seen) - len(keys)
        secret = endpoints(store)[0]["secret"]
        store.close()

        # baseline: the same kind of signed bodies POSTed straight to a fresh receiver, same concurrency
        results["baseline_direct_post_per_s"] = round(_direct_posts(ctx, secret, backlog, concurrency), 1)
    return results


def _direct_posts(ctx: Any, secret: str, n: int, concurrency: int) -> float:
    import aiohttp

    from dialer.api.webhooks import SIGNATURE_HEADER, sign

    port = _free_port()
    q, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    rx = ctx.Process(target=_receiver, args=(port, secret, q, ready, stop))
    rx.start()
    ready.wait(30)

    async def run() -> float:
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession() as s:
            async def one(i: int) -> None:
                body = json.dumps({"id": f"e{i}", "kind": "promise", "data": {"bench_created_at": time.time()}}).encode()
                async with sem:
                    async with s.post(f"http://127.0.0.1:{port}/hook", data=body,
                                      headers={"Idempotency-Key": f"e{i}", SIGNATURE_HEADER: sign(secret, body),
                                               "Content-Type": "application/json"}) as r:
                        await r.read()
            t = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return n / (time.perf_counter() - t)

    rate = asyncio.run(run())
    stop.set()
    q.get(timeout=60)
    rx.join(30)
    return rate


# -- exports --------------------------------------------------------------------------------------------------------

def _export_child(db: str, mode: str, until: float, out_path: str, q: Any) -> None:
    import csv

    from dialer.cli.export import write_export
    from dialer.store import Store
    from dialer.store.exports import export_columns, export_rows

    store = Store(db, migrate=False)
    t = time.perf_counter()
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        if mode in ("csv", "jsonl"):
            n = write_export(export_rows(store, "attempts", 0, until), export_columns("attempts"), mode, out)
        elif mode == "cursor":   # baseline: the rows read, nothing formatted or written
            n = sum(1 for _ in store.conn.execute(*_raw_sql(until)))
        else:                    # baseline: fetch everything, then write
            rows = list(store.conn.execute(*_raw_sql(until)).fetchall())
            w = csv.writer(out, lineterminator="\n")
            for r in rows:
                w.writerow(tuple(r))
            n = len(rows)
    dt = time.perf_counter() - t
    store.close()
    q.put({"rows": n, "seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _raw_sql(until: float) -> tuple[str, tuple[float, float]]:
    from dialer.store.exports import EXPORTS

    return EXPORTS["attempts"][1], (0.0, until)


def bench_exports(n: int) -> dict[str, Any]:
    from dialer.store.exports import bulk_insert_attempts

    out: dict[str, Any] = {"attempts": n}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "e.db"
        store = make_store(db)
        t = time.perf_counter()
        outcomes = ("no_answer", "busy", "answered", "machine")
        bulk_insert_attempts(store, ((f"c{i:08d}", f"B{i % 1000:05d}", f"A{i % 1000:05d}", "en_demo",
                                      f"+1212555{i % 10000:04d}", T0 + i, "ended", outcomes[i % 4], T0 + i + 30,
                                      "promise" if i % 50 == 0 else None) for i in range(n)))
        out["insert_rows_per_s"] = round(n / (time.perf_counter() - t))
        store.close()
        ctx = mp.get_context("spawn")
        tenth = T0 + n // 10
        for label, mode, until in (("stream_csv_10pct", "csv", tenth), ("stream_csv", "csv", T0 + n),
                                   ("stream_jsonl", "jsonl", T0 + n), ("baseline_cursor_only", "cursor", T0 + n),
                                   ("baseline_fetchall_csv", "fetchall", T0 + n)):
            q = ctx.Queue()
            p = ctx.Process(target=_export_child, args=(str(db), mode, until, str(Path(tmp) / f"{label}.out"), q))
            p.start()
            r = q.get(timeout=1800)
            p.join()
            out[label] = {"rows": r["rows"], "rows_per_s": round(r["rows"] / r["seconds"]),
                          "peak_rss_mb": round(r["peak_rss_mb"], 1)}
            if os.path.exists(Path(tmp) / f"{label}.out"):
                out[label]["file_mb"] = round(os.path.getsize(Path(tmp) / f"{label}.out") / 2**20, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.lender", description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=100.0, help="steady stream, events per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--backlog", type=int, default=5000)
    ap.add_argument("--skip-exports", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res: dict[str, Any] = {"webhooks": bench_webhooks(a.rate, a.seconds, a.backlog)}
    if not a.skip_exports:
        res["exports"] = bench_exports(a.attempts)
    if a.json:
        print(json.dumps(res))
        return 0
    w = res["webhooks"]
    print("webhooks (HMAC-signed, outbox → deliverer → receiver on 127.0.0.1)")
    s = w["steady"]
    print(f"  steady {s['rate']:g}/s for {s['seconds']:g}s: delivered {s['delivered_per_s']}/s, delay p50 "
          f"{s['delay_p50_ms']} ms, p95 {s['delay_p95_ms']} ms, max {s['delay_max_ms']} ms")
    b = w["backlog"]
    print(f"  backlog of {b['events']}: drained at {b['delivered_per_s']} events/s ({b['seconds']} s)")
    print(f"  baseline: direct signed POSTs, no outbox: {w['baseline_direct_post_per_s']}/s")
    print(f"  every event delivered once: {w['all_delivered_once']} (duplicates {w['duplicates']})")
    if "exports" in res:
        e = res["exports"]
        print(f"exports of {e['attempts']:,} attempts (inserted at {e['insert_rows_per_s']:,}/s)")
        for k in ("stream_csv_10pct", "stream_csv", "stream_jsonl", "baseline_cursor_only", "baseline_fetchall_csv"):
            r = e[k]
            print(f"  {k:<24} {r['rows']:>9,} rows  {r['rows_per_s']:>9,} rows/s  peak RSS {r['peak_rss_mb']:>7} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
