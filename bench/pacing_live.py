"""Live predictive pacing on the harness against the simulator's prediction, in the same run.

`python -m bench.pacing_live [--collectors 3] [--minutes 3] [--seed 1] [--json]`. The debtors' behaviour is
drawn from the simulator's own seeded `CallStream` for the same `Scenario` (answer as a person or a machine,
ring time, busy or no answer, talk time), written as the carrier's behaviour file; SIPp collectors answer at
once and talk until the debtor hangs up; wrap-up is the scenario's. The daemon paces with the same
`PredictivePacer`, snapshot and `Estimator` the simulator uses (warmed from the campaign's 100 earlier
answered calls, which also give the 3 % budget room). Then the simulator runs the same scenario and seed for
the same length and floor, its estimator warmed from the same history. The scenario's greeting, connect and busy
times are the harness's, measured (printed after the table, so a drift shows). Printed: occupancy (talk ÷ logged-in collector time) and abandon rate (abandoned ÷
answered by a person), live beside simulated, with every parameter. Runs under the e2e lock (one Asterisk
run at a time on a shared machine)."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CAMPAIGN = """name: live
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: predictive
amd_policy: hangup
line_limit: {lines}
ring_seconds: {ring}
retry: {{busy: 1d, no_answer: 1d, machine: 1d, failed: 1d, callee_hangup: 1d, max_attempts: 6}}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


# the harness's timings, measured (the scenario's greeting and connect draws are set to them): AMD says HUMAN on
# "hello.wav" 1.99 s after the answer on average; the SIPp collectors are bridged 0.01 s after the end of greeting
GREETING = (1.5, 2.5)
CONNECT = (0.0, 0.05)
BUSY = (0.0, 0.2)  # the carrier's Busy() answers the INVITE at once
HANGUP_LAG = 0.5  # the carrier's call lasts this much past its scheduled hang-up (answer signalling, playback start)
HISTORY = 100  # earlier answered calls in the window: the 3 % budget's room, and the estimator's warm start


def live_scenario(collectors: int, minutes: float, handle_mean: float, wrapup: float):
    """The scenario both runs share (short talk times so a few minutes hold many calls)."""
    from dialer.pacing.simulate import scenario

    return scenario("standard", agents=collectors, hours=minutes / 60.0, p_human=0.35, p_machine=0.08,
                    ring=(1.0, 8.0), no_answer_timeout=20.0, busy_share=0.5, fail_fast=BUSY, greeting=GREETING,
                    machine_amd=(2.5, 4.0), connect=CONNECT, handle_mean=handle_mean,
                    handle_sd=handle_mean / 3, wrapup=wrapup, lines_per_agent=3.0, prior_answered=HISTORY)


def behaviours(sc, seed: int, n: int) -> tuple[dict, dict[str, str], dict[str, float]]:
    """Carrier behaviours for n debtors, call i drawn from the simulator's stream at index i."""
    from dialer.pacing.simulate import CallStream

    st = CallStream(sc, seed)
    out, kinds, talks = {}, {}, {}
    # the debtor hangs up the drawn talk time after the collector is on: answer → end of greeting → connect, as
    # the simulator's means (the harness's AMD time does not vary with the draw)
    to_collector = sum(sc.greeting) / 2 + sum(sc.connect) / 2
    for i in range(n):
        phone = f"+1212556{i:04d}"
        u = st.u_answer[i]
        if u < sc.p_human:
            talk = max(3.0, st.handle[i])
            out[phone] = {"answer_after": round(st.ring[i], 1), "then": "speak", "audio": "hello.wav",
                          "hangup_after": round(to_collector + talk - HANGUP_LAG, 2)}
            kinds[phone] = "human"
            talks[phone] = talk
        elif u < sc.p_human + sc.p_machine:
            out[phone] = {"answer_after": round(st.ring[i], 1), "then": "machine",
                          "audio": "voicemail_greeting.wav", "hangup_after": 20}
            kinds[phone] = "machine"
        elif st.fail[i] < sc.no_answer_timeout:
            out[phone] = {"busy": True}
            kinds[phone] = "busy"
        else:
            out[phone] = {"no_answer": True}
            kinds[phone] = "no_answer"
    return out, kinds, talks


def history(sc, seed: int, start: int) -> list[dict]:
    """The campaign's earlier calls (estimator.warm's rows, seconds from the first placed): the stream after the
    live run's calls, HISTORY answered by a person (talk = the drawn handle time) with the machines and unanswered
    calls between them. The live run writes them to the store, whose history warms the daemon's estimator; the
    simulator's estimator is warmed from the same rows."""
    from dialer.pacing.simulate import CallStream

    st = CallStream(sc, seed)
    out, humans, i = [], 0, start
    while humans < HISTORY and i < len(st):
        placed = 30.0 * len(out)
        u = st.u_answer[i]
        if u < sc.p_human:
            answered = placed + st.ring[i]
            connected = answered + st.greeting[i] + st.connect[i]
            out.append({"placed_at": placed, "answered_at": answered, "connected_at": connected,
                        "ended_at": connected + st.handle[i], "outcome": "answered", "machine": False})
            humans += 1
        elif u < sc.p_human + sc.p_machine:
            answered = placed + st.ring[i]
            out.append({"placed_at": placed, "answered_at": answered, "ended_at": answered + st.machine_amd[i],
                        "outcome": "machine", "machine": True})
        else:
            out.append({"placed_at": placed, "answered_at": None, "ended_at": placed + st.fail[i],
                        "outcome": "busy" if st.fail[i] < sc.no_answer_timeout else "no_answer", "machine": False})
        i += 1
    return out


def run_live(sc, seed: int, debtors: int, work: Path) -> dict:
    from agi.media.tts import TTS
    from common.clock import Clock
    from dialer.calls.daemon import Dialer
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.cli.demo import default_demo_time
    from dialer.gate.rules import load_rules
    from dialer.store import Store, core
    from dialer.telephony.carrier import behaviours_from_dict
    from dialer.telephony.harness import Harness

    at = default_demo_time()
    text = (REPO / "compliance_rules.yaml").read_text()
    (work / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", f"campaign_overrides: {{live: {{profile: us, abandon: {{wrap_up_seconds: {sc.wrapup},"
                                  f" min_ring_seconds: {sc.no_answer_timeout}}}}}}}"))
    rules = load_rules(work / "rules.yaml")
    store = Store(work / "dialer.db")
    (work / "live.yaml").write_text(CAMPAIGN.format(lines=int(sc.agents * sc.lines_per_agent),
                                                    ring=sc.no_answer_timeout))
    camp = load_campaign(work / "live.yaml")
    core.upsert_campaign(store, camp)
    beh, kinds, talks = behaviours(sc, seed, debtors)
    (work / "d.csv").write_text(HEADER + "".join(
        f"L{i:04d},L{i},{p},1234,1980,ACC-L{i:04d},100.00,USD,12,,America/New_York,first,en,\n"
        for i, p in enumerate(beh)))
    core.import_debtors(store, read_debtors_csv(work / "d.csv"), "live")
    (work / "h.csv").write_text(HEADER + "H0,H,+12125550999,1234,1980,ACC-H0,5.00,USD,12,,America/New_York,first,en,\n")
    core.import_debtors(store, read_debtors_csv(work / "h.csv"), "live")
    t0 = at.timestamp() - 3 * 3600
    for i, h in enumerate(history(sc, seed, debtors)):
        # the campaign's history, drawn from the same stream (the estimator's warm start and the budget's room)
        def ts(key: str) -> float | None:
            return None if h.get(key) is None else t0 + h[key]

        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=f"hist-{i}", debtor_id="H0", account_id="ACC-H0", campaign="live",
                                phone="+12125550999", placed_at=ts("placed_at"))
        core.update_attempt(store, f"hist-{i}", state="ended", outcome=h["outcome"], answered_at=ts("answered_at"),
                            machine=h["machine"], ended_at=ts("ended_at"), at=ts("ended_at"))
        if h.get("connected_at") is not None:
            core.record_call_event(store, f"hist-{i}", "agent_connect", ts("connected_at"), {"agent": "history"})
    core.set_debtor_status(store, "H0", "done", at=t0)
    harness = Harness(work / "run", agents=sc.agents, behaviours=behaviours_from_dict(beh))
    state = harness.up()
    seconds = sc.hours * 3600.0
    out: dict = {}

    async def go() -> None:
        dialer = Dialer(store, state, rules, [camp], clock=Clock(at), tts=TTS(), collector_modes=True)
        from dialer.observe.events import PaceDecision

        decisions: list = []
        dialer.bus.subscribe(decisions.append, PaceDecision)
        await dialer.start()
        try:
            out["start"] = dialer.clock.timestamp()
            await dialer.run(max_seconds=seconds, grace=60)
            out["end"] = dialer.clock.timestamp()
            out["decisions"] = len(decisions)
        finally:
            await dialer.stop()

    t = time.monotonic()
    try:
        asyncio.run(go())
    finally:
        harness.down()
    wall = time.monotonic() - t
    rows = store.query("SELECT * FROM attempts WHERE campaign='live' AND id NOT LIKE 'hist-%'")
    start, stop = out["start"], out["start"] + seconds
    talk = 0.0
    greet, wait, extra = [], [], []  # answer → end of greeting; → collector; live talk − the drawn talk time
    busy = [r["ended_at"] - r["placed_at"] for r in rows if r["outcome"] == "busy" and r["ended_at"] is not None]
    for r in rows:
        e = store.query_one("SELECT min(at) AS at FROM call_events WHERE call_id=? AND kind='agent_connect'",
                            (r["id"],))
        c = store.query_one("SELECT max(at) AS at FROM call_events WHERE call_id=? AND kind='agent_complete'",
                            (r["id"],))
        # talk: collector bridged (AgentConnect) → their call ended (AgentComplete), as the simulator counts it
        end = c["at"] if c and c["at"] is not None else r["ended_at"]
        g = store.query_one("SELECT min(at) AS at FROM call_events WHERE call_id=? AND kind='greeting_end'",
                            (r["id"],))
        if g and g["at"] is not None and r["answered_at"] is not None:
            greet.append(g["at"] - r["answered_at"])
        if e and e["at"] is not None and end is not None:
            talk += max(0.0, min(end, stop) - max(e["at"], start))
            if g and g["at"] is not None:
                wait.append(e["at"] - g["at"])
            extra.append(end - e["at"] - talks[r["phone"]])
    humans = [r for r in rows if r["answered_at"] is not None and not r["machine"] and r["outcome"] != "machine"]
    abandoned = sum(1 for r in humans if r["abandoned"])
    return {"occupancy": talk / (sc.agents * seconds), "abandon_rate": abandoned / len(humans) if humans else 0.0,
            "placed": len(rows), "answered": len(humans), "abandoned": abandoned,
            "connects": sum(1 for r in rows if r["agent"]), "debtors_left": debtors - len(rows),
            "decisions": out.get("decisions"), "wall_seconds": round(wall, 1),
            "mean_greeting": _mean(greet), "mean_wait": _mean(wait), "mean_talk_excess": _mean(extra),
            "mean_busy": _mean(busy)}


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 2) if xs else None


def run_sim(sc, seed: int, debtors: int, seeds: int = 1) -> dict:
    """The simulator on the same scenario, its estimator warmed from the same history as the daemon's: seed `seed`
    (the live run's stream), or the mean of `seeds` seeds."""
    from dialer.pacing.pacers import PredictivePacer
    from dialer.pacing.simulate import simulate

    rs = [simulate(PredictivePacer(), sc, s, history=history(sc, s, debtors)) for s in range(seed, seed + seeds)]
    answered = sum(r.answered for r in rs)
    return {"occupancy": sum(r.occupancy for r in rs) / len(rs),
            "abandon_rate": sum(r.abandoned for r in rs) / answered if answered else 0.0,
            "placed": round(sum(r.placed for r in rs) / len(rs)), "answered": round(answered / len(rs)),
            "abandoned": round(sum(r.abandoned for r in rs) / len(rs), 1),
            "connects": round(sum(r.connects for r in rs) / len(rs))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collectors", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--handle", type=float, default=25.0, help="mean talk seconds (log-normal, sd = mean / 3)")
    ap.add_argument("--wrapup", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--debtors", type=int, default=0, help="default: enough for the run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    sc = live_scenario(a.collectors, a.minutes, a.handle, a.wrapup)
    debtors = a.debtors or int(a.collectors * a.minutes * 60 / (a.handle + a.wrapup) / sc.p_human * 2.5) + 20
    t = time.monotonic()
    sim = run_sim(sc, a.seed, debtors)
    sim_many = run_sim(sc, a.seed, debtors, seeds=20)
    sim_s = time.monotonic() - t
    with tempfile.TemporaryDirectory(prefix="pacing_live-") as tmp:
        live = run_live(sc, a.seed, debtors, Path(tmp))
    params = {"collectors": a.collectors, "minutes": a.minutes, "handle_mean": a.handle, "wrapup": a.wrapup,
              "seed": a.seed, "debtors": debtors, "p_human": sc.p_human, "p_machine": sc.p_machine,
              "ring": sc.ring, "no_answer_timeout": sc.no_answer_timeout, "patience": sc.patience,
              "limit": sc.limit}
    result = {"params": params, "live": live, "simulated": sim | {"cpu_seconds": round(sim_s, 2)},
              "simulated_20_seeds": sim_many,
              "occupancy_gap_points": round(100 * (live["occupancy"] - sim["occupancy"]), 1)}
    if a.json:
        print(json.dumps(result))
        return 0
    print("pacing, live harness vs simulator (same scenario, seed, pacer, floor): "
          + ", ".join(f"{k}={v}" for k, v in params.items()))
    print(f"{'':12}{'occupancy':>10}{'abandon':>9}{'placed':>8}{'answered':>9}{'abandoned':>10}{'connects':>9}")
    for name, r in (("live", live), ("simulated", sim), ("sim 20 seeds", sim_many)):
        print(f"{name:12}{100 * r['occupancy']:>9.1f}%{100 * r['abandon_rate']:>8.1f}%{r['placed']:>8}"
              f"{r['answered']:>9}{r['abandoned']:>10}{r['connects']:>9}")
    print(f"occupancy gap live - simulated: {result['occupancy_gap_points']:+.1f} points;"
          f" live run {live['wall_seconds']} s wall, {live['decisions']} pacing decisions,"
          f" {live['debtors_left']} debtors left undialled")
    print(f"live call timing: answer to end of greeting {live['mean_greeting']} s (simulated: uniform {sc.greeting}),"
          f" to a collector {live['mean_wait']} s (simulated connect: uniform {sc.connect}), talk beyond the drawn"
          f" time {live['mean_talk_excess']} s; busy after {live['mean_busy']} s (simulated: uniform {sc.fail_fast})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
