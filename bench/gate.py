"""Compliance gate benchmark: decisions per second of `decide` over 100,000 debtors with history, and of
the atomic `take_attempt` on a SQLite file, each against a baseline measured in the same run.

    python -m bench.gate [--debtors 100000] [--takes 3000] [--seed 7] [--json]

Baselines: for `decide`, a window-only check (local time in the record's zone, one comparison): the
least any gate must do; for `take_attempt`, a bare attempt insert in its own BEGIN IMMEDIATE
transaction, with no history read and no decision. Target (issue 5): >= 20,000 decisions/s on one core.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dialer.gate.account import take_attempt
from dialer.gate.decide import Attempt, History, PastAttempt, decide
from dialer.gate.rules import Profile, load_rules
from dialer.gate.zones import number_zones
from dialer.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 2, 30, tzinfo=timezone.utc)  # 10:30 Beijing, 21:30/18:30 the evening before in the US
US_AREAS = ["212", "305", "312", "415", "208", "605", "808", "907", "602", "720"]
ZONES = {"cn": ["Asia/Shanghai"], "us": ["America/New_York", "America/Chicago", "America/Los_Angeles"],
         "uk": ["Europe/London"]}
OUTCOMES = ["no_answer", "no_answer", "busy", "answered", "machine", "abandoned", None]


def make_phone(rng: random.Random, profile: str) -> str:
    if profile == "cn":
        return f"+86{rng.choice(['138', '139', '150', '186'])}{rng.randrange(10**8):08d}"
    if profile == "us":
        return f"+1{rng.choice(US_AREAS)}{rng.randrange(200, 999)}{rng.randrange(10**4):04d}"
    return f"+44{rng.choice(['20', '161', '7700'])}{rng.randrange(10**6, 10**7)}"


def make_debtors(n: int, seed: int) -> list[tuple[str, list[str], str | None, list[dict[str, Any]]]]:
    """(profile, phones, record zone, attempts) per debtor; 0–10 attempts over the last 8 days."""
    rng = random.Random(seed)
    now = NOW.timestamp()
    out = []
    for _ in range(n):
        prof = rng.choices(["cn", "us", "uk"], weights=[60, 25, 15])[0]
        phones = [make_phone(rng, prof) for _ in range(rng.choice([1, 1, 2]))]
        zone = rng.choice(ZONES[prof]) if rng.random() < 0.5 else None
        attempts = []
        for _ in range(rng.randrange(11)):
            outcome = rng.choice(OUTCOMES)
            placed = now - rng.uniform(600, 8 * 86400)
            answered = placed + 9 if outcome in ("answered", "machine", "abandoned") else None
            attempts.append({"placed_at": placed, "phone": rng.choice(phones), "outcome": outcome,
                             "answered_at": answered, "ended_at": answered + 60 if answered else None,
                             "conversation": int(outcome == "answered" and rng.random() < 0.5),
                             "abandoned": int(outcome == "abandoned"), "machine": int(outcome == "machine")})
        attempts.sort(key=lambda a: a["placed_at"])
        out.append((prof, phones, zone, attempts))
    return out


def as_history(i: int, d: tuple[str, list[str], str | None, list[dict[str, Any]]]) -> History:
    _, phones, zone, attempts = d
    return History(f"d{i}", zone, tuple(PastAttempt(
        a["placed_at"], a["phone"], None, False, False, a["outcome"], bool(a["conversation"]), bool(a["abandoned"]),
        bool(a["machine"]), a["answered_at"], a["ended_at"]) for a in attempts), phones=tuple(phones))


def _rate(n: int, t0: float, c0: float) -> dict[str, float]:
    """Rates per CPU second of this process (one core, whatever else the machine runs) and per wall second."""
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": n, "seconds": wall, "cpu_seconds": cpu, "per_second": n / max(cpu, 1e-9), "per_wall_second": n / max(wall, 1e-9)}


def bench_decide(debtors: list, profiles: dict[str, Profile]) -> dict[str, Any]:
    cases = [(Attempt(f"d{i}", d[1][0]), as_history(i, d), profiles[d[0]]) for i, d in enumerate(debtors)]
    res: dict[str, Any] = {}
    number_zones.cache_clear()
    for label in ("cold", "warm"):  # cold: first look-up of every number's zones
        allowed = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for a, h, p in cases:
            allowed += decide(a, h, p, NOW).allowed
        res[label] = _rate(len(cases), t0, c0) | {"allowed": allowed}
    windows = {name: p.gate.windows[0] for name, p in profiles.items()}
    t0, c0 = time.perf_counter(), time.process_time()
    inside = 0
    for (a, h, p), d in zip(cases, debtors):
        w = windows[d[0]]
        loc = datetime.fromtimestamp(NOW.timestamp(), ZoneInfo(h.timezone or p.gate.fallback_zones[0]))
        inside += w.start <= loc.hour * 60 + loc.minute < w.end
    res["baseline"] = _rate(len(cases), t0, c0) | {"allowed": inside}
    return res


def seed_db(store: Store, debtors: list) -> None:
    db = store.db
    for prof in ("cn", "us", "uk"):
        db["campaigns"].insert({"name": f"bench_{prof}", "file": "bench", "profile": prof, "locale": "zh-CN",
                                "dial_mode": "progressive", "line_limit": 10, "config_json": "{}", "loaded_at": 0.0})
    with store.transaction():
        db["debtors"].insert_all(({"debtor_id": f"d{i}", "campaign": f"bench_{d[0]}", "name": "bench", "timezone": d[2],
                                   "customer_type": "first", "lang": "zh", "imported_at": 0.0}
                                  for i, d in enumerate(debtors)), batch_size=5000)
        db["phones"].insert_all(({"debtor_id": f"d{i}", "phone": p, "rank": r}
                                 for i, d in enumerate(debtors) for r, p in enumerate(d[1])), batch_size=5000)
        db["attempts"].insert_all(({"id": f"h{i}-{k}", "debtor_id": f"d{i}", "campaign": f"bench_{d[0]}",
                                    "phone": a["phone"], "placed_at": a["placed_at"], "state": "ended",
                                    "outcome": a["outcome"] or "no_answer", "answered_at": a["answered_at"],
                                    "ended_at": a["ended_at"], "conversation": a["conversation"],
                                    "abandoned": a["abandoned"], "machine": a["machine"]}
                                   for i, d in enumerate(debtors) for k, a in enumerate(d[3])), batch_size=5000)


def bench_take(debtors: list, takes: int, seed: int, rules: Any) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    picks = rng.sample(range(len(debtors)), min(takes, len(debtors)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        seed_db(store, debtors)
        seed_s = time.perf_counter() - t0
        allowed = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for n, i in enumerate(picks):
            d = take_attempt(store, call_id=f"b{n}", debtor_id=f"d{i}", account_id=None, campaign=f"bench_{debtors[i][0]}",
                             phone=debtors[i][1][0], rules=rules, now=NOW)
            allowed += d.allowed
        took = _rate(len(picks), t0, c0) | {"allowed": allowed}
        t0, c0 = time.perf_counter(), time.process_time()
        for n, i in enumerate(picks):
            with store.transaction():
                store.db["attempts"].insert({"id": f"base{n}", "debtor_id": f"d{i}", "campaign": f"bench_{debtors[i][0]}",
                                             "phone": debtors[i][1][0], "placed_at": NOW.timestamp()})
        base = _rate(len(picks), t0, c0)
        store.close()
    return {"seed_seconds": seed_s,
            "take_attempt": took, "baseline": base}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.splitlines()[0])
    ap.add_argument("--debtors", type=int, default=100_000)
    ap.add_argument("--takes", type=int, default=3000, help="take_attempt calls on the file database")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rules", type=Path, default=ROOT / "compliance_rules.yaml")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rules = load_rules(args.rules)
    profiles = {p: rules.profile_for(p) for p in ("cn", "us", "uk")}
    debtors = make_debtors(args.debtors, args.seed)
    dec = bench_decide(debtors, profiles)
    take = bench_take(debtors, args.takes, args.seed, rules) if args.takes > 0 else None
    out: dict[str, Any] = {
        "debtors": args.debtors, "attempts_in_history": sum(len(d[3]) for d in debtors), "at": NOW.isoformat(),
        "decide": dec, "take_attempt": take,
        "ratios": {"decide_warm_vs_window_only": dec["warm"]["per_second"] / dec["baseline"]["per_second"],
                   "take_vs_bare_insert": (take["take_attempt"]["per_second"] / take["baseline"]["per_second"]) if take else None},
        "target_decisions_per_second": 20_000,
        "meets_target": dec["warm"]["per_second"] >= 20_000,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"gate benchmark: {args.debtors:,} debtors, {out['attempts_in_history']:,} attempts of history, at {NOW.isoformat()}")
    print(f"{'what':<40}{'n':>9}{'wall s':>8}{'CPU s':>8}{'per CPU s':>12}{'per wall s':>12}{'allowed':>9}")
    rows = [("decide (cold: first zone look-ups)", dec["cold"]), ("decide (warm)", dec["warm"]),
            ("baseline: window-only check", dec["baseline"])]
    if take:
        rows += [("take_attempt (file DB, BEGIN IMMEDIATE)", take["take_attempt"]),
                 ("baseline: bare insert per transaction", take["baseline"])]
    for name, r in rows:
        print(f"{name:<40}{r['n']:>9,}{r['seconds']:>8.2f}{r['cpu_seconds']:>8.2f}{r['per_second']:>12,.0f}"
              f"{r['per_wall_second']:>12,.0f}{r.get('allowed', ''):>9}")
    print(f"decide warm / window-only baseline: {out['ratios']['decide_warm_vs_window_only']:.2f}x")
    if take:
        print(f"take_attempt / bare insert: {out['ratios']['take_vs_bare_insert']:.2f}x   (seeding the DB took {take['seed_seconds']:.1f} s)")
    print(f"target >= 20,000 decisions per CPU second (warm): {'met' if out['meets_target'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
