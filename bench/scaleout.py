"""Scale-out benchmark (issue 24): hopper claims per second, and calls placed by two dialer servers against
one on a floor limited by lines, in the same run.

    python -m bench.scaleout [--claims 300] [--procs 1,2,4] [--floor-seconds 30] [--lines 4] [--no-floor] [--json]

1. **Hopper claims per second**: `servers.claim` (lease up to 4 due debtors, `FOR UPDATE SKIP LOCKED` on
   PostgreSQL) plus `release`, by 1, 2 and 4 concurrent processes (each a server) on PostgreSQL, against
   SQLite with one, on the same seeded debtors. Every claim contends for the same best debtors, so the
   figure includes the skipping. Also checked: no debtor is ever leased to two servers at once.
2. **Two servers against one** (`--floor-seconds`, through real Asterisk): one carrier simulator, one PBX +
   `dialer run` per server, one PostgreSQL database; every number rings out after a fixed time (calls of
   fixed length), each server has `--lines` lines. Calls placed in the same window by one server alone,
   then by two, on fresh copies of the same debtors; cap violations counted over each run (a debtor with
   more than its daily cap of 3, or two of its calls overlapping). Goal: ≥ 1.8× with zero violations.

The PostgreSQL server is a throwaway cluster this run starts (fsync off), on this machine.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
T = 1795449600.0  # 2026-11-23 11:00 in New York: inside the US window
CLAIM_CAMPAIGN = """\
name: bench
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: {lines}
ring_seconds: {ring}
retry: {{busy: 1s, no_answer: 1s, failed: 1s, max_attempts: 10}}
segments:
  - {{name: all, dpd: 0+, script: dtmf_verify}}
"""
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")


def _campaign(tmp: Path, lines: int, ring: int) -> Path:
    path = tmp / "bench.yaml"
    path.write_text(CLAIM_CAMPAIGN.format(lines=lines, ring=ring))
    return path


def _debtors_csv(tmp: Path, n: int) -> Path:
    path = tmp / "debtors.csv"
    path.write_text(HEADER + "".join(
        f"B{i:04d},Dana {i},+1212556{i:04d},1234,1984,ACC-{i:04d},300.00,USD,10,2026-11-13,America/New_York,"
        "first,en,\n" for i in range(n)))
    return path


def _seed(target: str, tmp: Path, debtors: int, lines: int = 4, ring: int = 6) -> None:
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.store import Store, core

    store = Store(target)
    core.upsert_campaign(store, load_campaign(_campaign(tmp, lines, ring)))
    core.import_debtors(store, read_debtors_csv(_debtors_csv(tmp, debtors)), "bench")
    if store.engine == "postgres":  # planner statistics, as autovacuum gathers them shortly after an import
        store.conn.execute_raw("ANALYZE")  # type: ignore[attr-defined]
    store.close()


def _fresh_sqlite(tmp: Path, debtors: int) -> str:
    path = str(tmp / f"pc{next(_N)}.db")
    _seed(path, tmp, debtors)
    return path


_N = itertools.count()


# -- 1. hopper claims per second --------------------------------------------------------------------------
def _claimer(target: str, server: str, n: int, barrier: Any, out: Any) -> None:
    from dialer.store import Store
    from dialer.store import servers as servers_store

    store = Store(target, migrate=False)
    got = 0
    barrier.wait()
    t0 = time.perf_counter()
    for k in range(n):
        held = servers_store.claim(store, server, "bench", T + k * 1e-4, 4, 60.0)
        got += len(held)
        servers_store.release(store, server, [c.debtor_id for c in held])
    out.put((time.perf_counter() - t0, got))
    store.close()


def claims(target: str, procs: int, per_proc: int) -> dict[str, Any]:
    from bench.store import run_together

    results, wall = run_together(_claimer, [(target, f"s{k}", per_proc) for k in range(procs)])
    n = procs * per_proc
    return {"processes": procs, "claims": n, "debtors_leased": sum(r[1] for r in results),
            "seconds": round(wall, 3), "per_second": round(n / wall, 1),
            "ms_per_claim": round(1000 * max(r[0] for r in results) / per_proc, 2)}


# -- 1b. the store's work per call placed ------------------------------------------------------------------
def per_call(target: str, calls: int, leased: bool) -> dict[str, Any]:
    """The store's part of placing one call, as the hopper does it: the due debtors (one server: read
    directly; several: claimed with a lease), `take_attempt` (the gate's decision, written), the lease given
    back. Milliseconds per call placed."""
    from datetime import datetime, timezone

    from dialer.gate.account import take_attempt
    from dialer.gate.rules import load_rules
    from dialer.store import Store, core
    from dialer.store import servers as servers_store

    rules = load_rules(ROOT / "compliance_rules.yaml")
    store = Store(target, migrate=False)
    now = datetime.fromtimestamp(T, timezone.utc)
    t0 = time.perf_counter()
    for k in range(calls):
        due = (servers_store.claim(store, "s0", "bench", T, 1, 60.0) if leased
               else core.due_debtors(store, "bench", T, limit=1))
        d = take_attempt(store, call_id=f"pc{k}", debtor_id=due[0].debtor_id, account_id=due[0].account_id,
                         campaign="bench", phone=None, rules=rules, now=now, server_id="s0" if leased else None)
        assert d.allowed, d.reason
        if leased:
            servers_store.release(store, "s0", [due[0].debtor_id])
    ms = 1000 * (time.perf_counter() - t0) / calls
    store.close()
    return {"calls": calls, "leased": leased, "ms_per_call": round(ms, 2)}


# -- 2. two servers against one, through Asterisk ---------------------------------------------------------
def _rules(tmp: Path) -> Path:
    import yaml

    data = yaml.safe_load((ROOT / "compliance_rules.yaml").read_text())
    data["profiles"]["us"]["gate"]["min_gap_minutes"] = 0
    data["profiles"]["us"]["abandon"]["min_ring_seconds"] = 5
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def floor_run(url: str, tmp: Path, run_dirs: list[Path], seconds: float, rules: Path) -> dict[str, Any]:
    """`len(run_dirs)` servers dial the campaign for `seconds` (+ start-up); calls placed in the window all
    of them were dialing, and cap violations over the whole run."""
    from datetime import datetime, timezone

    from dialer.store import Store

    at = datetime.fromtimestamp(T, timezone.utc)
    t0 = time.monotonic()
    procs = []
    for k, run_dir in enumerate(run_dirs):
        clock = (at + timedelta(seconds=time.monotonic() - t0)).isoformat()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dialer.cli", "run", "--db", url, "--run-dir", str(run_dir), "--server-id",
             f"s{k}", "--rules", str(rules), "--at", clock, "--max-seconds", str(seconds + 15), "--grace", "20",
             "--campaign", "bench", "--no-web", "--no-observers"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=seconds + 120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    for p, (_o, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"a daemon failed ({p.returncode}): {err[-2000:]}")
    store = Store(url, migrate=False)
    rows = [dict(r) for r in store.query("SELECT debtor_id, server_id, placed_at, ended_at, state FROM attempts"
                                         " ORDER BY placed_at")]
    blocks = {r["rule_id"]: r["n"] for r in store.query("SELECT rule_id, count(*) AS n FROM gate_blocks"
                                                        " GROUP BY rule_id ORDER BY rule_id")}
    store.close()
    start = max(min(r["placed_at"] for r in rows if r["server_id"] == f"s{k}") for k in range(len(run_dirs)))
    window = [r for r in rows if start <= r["placed_at"] < start + seconds]
    by_debtor: dict[str, list[dict]] = {}
    for r in rows:
        by_debtor.setdefault(r["debtor_id"], []).append(r)
    over_cap = sum(1 for v in by_debtor.values() if len(v) > 3)
    overlaps = sum(1 for v in by_debtor.values() for a, b in zip(v, v[1:])
                   if a["ended_at"] is None or b["placed_at"] < a["ended_at"])
    return {"servers": len(run_dirs), "window_s": seconds, "calls_in_window": len(window),
            "calls_per_server": {f"s{k}": sum(1 for r in window if r["server_id"] == f"s{k}")
                                 for k in range(len(run_dirs))},
            "attempts": len(rows), "open_at_end": sum(1 for r in rows if r["state"] not in ("ended", "unknown")),
            "debtors_over_cap": over_cap, "overlapping_calls": overlaps, "gate_blocks": blocks}


def floor(cluster: Any, tmp: Path, seconds: float, lines: int, debtors: int) -> dict[str, Any]:
    from dialer.telephony.carrier import behaviours_from_dict
    from dialer.telephony.harness import Harness

    rules = _rules(tmp)
    behaviours = behaviours_from_dict({f"+1212556{i:04d}": {"no_answer": True} for i in range(debtors)})
    a = Harness(tmp / "a", agents=0, behaviours=behaviours)
    b = None
    out: dict[str, Any] = {}
    try:
        a.up()
        assert a.ports is not None
        b = Harness(tmp / "b", agents=0, trunk=("127.0.0.1", a.ports.carrier_sip))
        b.up()
        assert b.ports is not None
        a.add_carrier_peer("pbx2", b.ports.pbx_sip)
        for n, dirs in ((1, [tmp / "a"]), (2, [tmp / "a", tmp / "b"])):
            url = cluster.create_database(f"bench_floor_{n}")
            _seed(url, tmp, debtors, lines=lines)
            out[f"servers_{n}"] = floor_run(url, tmp, dirs, seconds, rules)
    finally:
        if b is not None:
            b.down()
        a.down()
    one, two = out["servers_1"]["calls_in_window"], out["servers_2"]["calls_in_window"]
    out["ratio"] = round(two / one, 2) if one else None
    out["violations"] = sum(out[k]["debtors_over_cap"] + out[k]["overlapping_calls"] for k in ("servers_1", "servers_2"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=300, help="claims per process")
    ap.add_argument("--procs", default="1,2,4", help="PostgreSQL process counts")
    ap.add_argument("--debtors", type=int, default=400, help="debtors seeded for the claims figure")
    ap.add_argument("--floor-seconds", type=float, default=30.0, help="window of the two-against-one run")
    ap.add_argument("--lines", type=int, default=4, help="lines per server in the floor run")
    ap.add_argument("--floor-debtors", type=int, default=40, help="debtors in the floor run (cap 3 a day each)")
    ap.add_argument("--no-floor", action="store_true", help="skip the run through Asterisk")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    procs = [int(p) for p in args.procs.split(",")]

    from dialer.store.pgcluster import Cluster
    from dialer.telephony.harness import claim_ports

    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmpdir:
        tmp = Path(tmpdir)
        db = str(tmp / "claims.db")
        _seed(db, tmp, args.debtors)
        rows.append({"engine": "sqlite", **claims(db, 1, args.claims)})
        block = claim_ports(1)
        cluster = Cluster()
        try:
            cluster.start(block.base)
            template = cluster.create_database("bench_template")
            _seed(template, tmp, args.debtors)
            for n, k in enumerate(procs):
                url = cluster.create_database(f"bench_{n}", template="bench_template")
                rows.append({"engine": "postgres", **claims(url, k, args.claims)})
            calls = min(args.debtors, 200)
            result["per_call"] = [
                {"engine": "sqlite", **per_call(_fresh_sqlite(tmp, args.debtors), calls, leased=False)},
                {"engine": "sqlite", **per_call(_fresh_sqlite(tmp, args.debtors), calls, leased=True)},
                {"engine": "postgres", **per_call(cluster.create_database("bench_pc1", template="bench_template"),
                                                  calls, leased=False)},
                {"engine": "postgres", **per_call(cluster.create_database("bench_pc2", template="bench_template"),
                                                  calls, leased=True)}]
            if not args.no_floor:
                result["floor"] = floor(cluster, tmp, args.floor_seconds, args.lines, args.floor_debtors)
        finally:
            cluster.stop()
            block.release()
    base = rows[0]["per_second"]
    for r in rows:
        r["vs_sqlite_one"] = round(r["per_second"] / base, 2)
    result["claims"] = rows
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"hopper claims (lease up to 4 + give back): {args.claims} per process, {args.debtors} debtors, "
          f"{os.cpu_count()} CPUs, PostgreSQL on this machine (fsync off)")
    print(f"{'engine':<10}{'procs':>6}{'claims':>8}{'wall s':>8}{'per s':>9}{'ms/claim':>10}{'vs SQLite x1':>14}")
    for r in rows:
        print(f"{r['engine']:<10}{r['processes']:>6}{r['claims']:>8}{r['seconds']:>8.2f}{r['per_second']:>9.0f}"
              f"{r['ms_per_claim']:>10.2f}{r['vs_sqlite_one']:>14.2f}")
    print("\nthe store's work per call placed (due debtors, take_attempt, lease given back), one process:")
    for r in result["per_call"]:
        print(f"  {r['engine']:<9} {'leased hopper' if r['leased'] else 'one server, no lease':<22} "
              f"{r['ms_per_call']:>7.2f} ms per call")
    fl = result.get("floor")
    if fl:
        print(f"\nline-limited floor through Asterisk: {args.lines} lines per server, every call rings out "
              f"(fixed length), {args.floor_debtors} debtors (cap 3 a day), window {args.floor_seconds:.0f} s")
        for k in ("servers_1", "servers_2"):
            r = fl[k]
            print(f"  {r['servers']} server(s): {r['calls_in_window']} calls placed in the window "
                  f"{r['calls_per_server']}, {r['attempts']} attempts in the run, {r['debtors_over_cap']} debtors "
                  f"over the cap, {r['overlapping_calls']} overlapping calls, gate blocks {r['gate_blocks']}")
        print(f"  two servers / one: {fl['ratio']}x (goal >= 1.8x), cap violations: {fl['violations']} (goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
