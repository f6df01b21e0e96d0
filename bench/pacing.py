"""Pacing benchmark: every pacer on the same seeded call streams; occupancy, abandonment, ratios.

`python -m bench.pacing [--json] [--quick]`. Per floor (team size, answer rate, scenario) and
pacer: occupancy (talk ÷ available collector time), abandon rate (mean and worst seed = worst
day), worst rolling one-hour window, calls placed, live connects per collector-hour; then ours
against each baseline measured in the same run, the floor check (≤ 3 % on every seed, above
tuned VICIdial on every seed), and the predictive pacer's decision latency and estimator rate.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

from dialer.pacing.estimator import Estimator
from dialer.pacing.simulate import compare, scenario

PACER_ORDER = [
    ("progressive", "progressive"),
    ("vicidial", "VICIdial defaults"),
    ("vicidial_tuned", "VICIdial tuned ≤3%"),
    ("fixed_best", "best fixed level"),
    ("ours", "ours"),
]
BASELINES = ["progressive", "vicidial", "vicidial_tuned", "fixed_best"]


@dataclass(frozen=True)
class Floor:
    scenario: str
    agents: int
    p_human: float
    seeds: int


FULL = [
    Floor("standard", 20, 0.25, 5),
    Floor("standard", 5, 0.25, 5),
    Floor("standard", 50, 0.25, 5),
    Floor("standard", 20, 0.15, 5),
    Floor("standard", 20, 0.40, 5),
    Floor("bimodal", 20, 0.25, 3),
    Floor("drift", 20, 0.25, 3),
    Floor("breaks", 20, 0.25, 3),
    Floor("reference", 20, 0.25, 3),  # docs/PACING.md's run: no machines, AMD, connect time or wrap-up
]
QUICK = [Floor("standard", 20, 0.25, 2), Floor("standard", 5, 0.25, 2)]


def estimator_rate(n: int = 50_000) -> float:
    """Observations per second the estimator ingests (one call ≈ 3–5 observations)."""
    est = Estimator()
    t0 = time.perf_counter()
    for i in range(n // 5):
        now = float(i)
        est.observe_dial(now, i % 3 == 0, 5.0 + i % 20)
        est.observe_screen(now, i % 5 != 0, 2.0)
        est.observe_connect(now, 0.5)
        est.observe_talk(now, 60.0 + i % 200)
        est.observe_wrap(now, 5.0)
    return n / (time.perf_counter() - t0)


def run_floor(f: Floor, hours: float) -> dict:
    sc = scenario(f.scenario, agents=f.agents, p_human=f.p_human, hours=hours)
    runs = [compare(sc, seed, timer=time.perf_counter) for seed in range(1, f.seeds + 1)]
    summary: dict = {}
    for key, _ in PACER_ORDER:
        rows = [r[key] for r in runs]
        summary[key] = {
            "occupancy": statistics.mean(x["occupancy"] for x in rows),
            "occupancy_min": min(x["occupancy"] for x in rows),
            "abandon_rate": statistics.mean(x["abandon_rate"] for x in rows),
            "abandon_worst_day": max(x["abandon_rate"] for x in rows),
            "worst_hour_abandon": max(x["worst_hour_abandon"] for x in rows),
            "placed": statistics.mean(x["placed"] for x in rows),
            "connects_per_agent_hour": statistics.mean(x["connects_per_agent_hour"] for x in rows),
            "per_seed_occupancy": [round(x["occupancy"], 4) for x in rows],
            "per_seed_abandon": [round(x["abandon_rate"], 4) for x in rows],
        }
        if "param" in rows[0]:
            summary[key]["params"] = [x["param"] for x in rows]
    ours = [r["ours"] for r in runs]
    tuned = [r["vicidial_tuned"] for r in runs]
    summary["ratios"] = {
        b: {
            "occupancy_ratio": summary["ours"]["occupancy"] / summary[b]["occupancy"],
            "occupancy_points": 100 * (summary["ours"]["occupancy"] - summary[b]["occupancy"]),
            "connects_ratio": summary["ours"]["connects_per_agent_hour"] / summary[b]["connects_per_agent_hour"],
        }
        for b in BASELINES
    }
    summary["floor"] = {
        "ours_le_limit_every_seed": all(x["abandon_rate"] <= sc.limit for x in ours),
        "ours_above_tuned_vicidial_every_seed": all(o["occupancy"] > t["occupancy"] for o, t in zip(ours, tuned)),
        "ours_max_day_so_far_after_100": max(x["max_prefix_abandon"] for x in ours),
    }
    summary["decide_ms_mean"] = statistics.mean(x["decide_ms_mean"] for x in ours)
    summary["decide_ms_p99"] = max(x["decide_ms_p99"] for x in ours)
    return {"floor": f.__dict__ | {"hours": hours}, "pacers": summary}


def print_table(results: list[dict], seconds: float, est_rate: float) -> None:
    hdr = f"{'pacer':<20}{'occupancy':>10}{'(min)':>8}{'abandon':>9}{'worst day':>10}{'worst 1h':>9}" \
          f"{'placed':>8}{'conn/coll-h':>12}"
    for res in results:
        f, s = res["floor"], res["pacers"]
        print(f"\n{f['scenario']}: {f['agents']} collectors, p(person)={f['p_human']}, {f['hours']:g} h, "
              f"{f['seeds']} seeds")
        print(hdr)
        for key, label in PACER_ORDER:
            r = s[key]
            print(f"{label:<20}{r['occupancy']:>10.1%}{r['occupancy_min']:>8.1%}{r['abandon_rate']:>9.2%}"
                  f"{r['abandon_worst_day']:>10.2%}{r['worst_hour_abandon']:>9.2%}{r['placed']:>8.0f}"
                  f"{r['connects_per_agent_hour']:>12.1f}")
        rat = "  ".join(f"{k}: ×{v['occupancy_ratio']:.2f} ({v['occupancy_points']:+.1f} pt)"
                        for k, v in s["ratios"].items())
        print(f"ours vs  {rat}")
        fl = s["floor"]
        print(f"floor: ≤3% every seed {'yes' if fl['ours_le_limit_every_seed'] else 'NO'}; "
              f"above tuned VICIdial every seed {'yes' if fl['ours_above_tuned_vicidial_every_seed'] else 'NO'}; "
              f"worst day-so-far rate after 100 answered {fl['ours_max_day_so_far_after_100']:.2%}; "
              f"decision {s['decide_ms_mean'] * 1000:.0f} µs mean, {s['decide_ms_p99'] * 1000:.0f} µs p99")
    print(f"\nestimator: {est_rate:,.0f} observations/s; benchmark took {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pacing", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="2 floors, 2 seeds, 2-hour shifts")
    args = ap.parse_args(argv)
    floors, hours = (QUICK, 2.0) if args.quick else (FULL, 8.0)
    t0 = time.perf_counter()
    results = [run_floor(f, hours) for f in floors]
    seconds = time.perf_counter() - t0
    rate = estimator_rate()
    if args.json:
        print(json.dumps({"bench": "pacing", "quick": args.quick, "seconds": seconds,
                          "estimator_observations_per_s": rate, "results": results}))
    else:
        print_table(results, seconds, rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
