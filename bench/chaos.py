"""Chaos soak: SIGKILL the dialer daemon at random moments through a campaign against the real PBX and the
carrier simulator, restart it each time, and match every attempt against the carrier's own record (its
CDR, tagged with the dialer's call id) of every call it received.

    python -m bench.chaos [--kills 20] [--debtors 100] [--seed 7] [--json]

Figures: kills survived, attempts, double dials, lost attempts, mis-settled attempts, cap violations (the
last four must be 0) and the time from a restart to dialling again, next to the same time for the first
start of the run (the baseline: a start with nothing to recover).

- double dial: the carrier received a call no attempt accounts for twice (two calls with one call id, two
  calls to one number in flight at once, or more calls to a number than attempts to it);
- lost attempt: a call the carrier received with no attempt, or an attempt left open or settled `unknown`
  although the carrier received it;
- mis-settled: an attempt whose outcome is not what the carrier's record and the number's behaviour say
  happened (busy → busy, rings out → no_answer, unallocated → unallocated, congestion → failed, answering
  machine → machine, a person → answered or callee_hangup; verified → a conversation), or that the
  carrier never received but was settled as reached;
- cap violation: two attempts to one debtor inside the minimum gap, more than the daily cap in a local day,
  or an attempt inside the quiet period after a conversation.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import vocab
from common.paths import REPO
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.gate.rules import DAY, load_rules
from dialer.gate.zones import local_time
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
# one of each per ten debtors: (name, behaviour or None for an unlisted = unallocated number, expected outcomes)
KINDS: list[tuple[str, dict[str, Any] | None, set[str]]] = [
    ("busy", {"busy": True}, {vocab.BUSY}),
    ("rings_out", {"no_answer": True}, {vocab.NO_ANSWER}),
    ("unallocated", None, {vocab.UNALLOCATED}),
    ("congestion", {"congestion": True}, {vocab.FAILED}),
    ("machine", {"answer_after": 1, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 20},
     {vocab.MACHINE}),
    # silence after answering: AMD's initial-silence rule says MACHINE after 2.5 s, so a clean run may too
    ("hangs_up", {"answer_after": 1, "then": "silent", "hangup_after": 3},
     {vocab.ANSWERED, vocab.CALLEE_HANGUP, vocab.MACHINE}),
    ("promise", {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                 "dtmf": [{"digits": "1", "at": 6}, {"digits": "1984", "at": 10}, {"digits": "1", "at": 24}],
                 "hangup_after": 34}, {vocab.ANSWERED, vocab.CALLEE_HANGUP}),
    ("collector", {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                   "dtmf": [{"digits": "1", "at": 6}, {"digits": "1984", "at": 10}, {"digits": "2", "at": 14}],
                   "hangup_after": 30}, {vocab.ANSWERED, vocab.CALLEE_HANGUP}),
    ("wrong_year", {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                    "dtmf": [{"digits": "1", "at": 6}, {"digits": "1970", "at": 10}], "hangup_after": 25},
     {vocab.ANSWERED, vocab.CALLEE_HANGUP}),
    ("silent", {"answer_after": 2, "then": "silent", "hangup_after": 12}, {vocab.MACHINE}),
]
CAMPAIGN = "chaos"


def _number(i: int) -> str:
    return f"+1212556{i:04d}"


def setup(work: Path, debtors: int) -> tuple[Harness, Path, dict[str, tuple[str, set[str]]]]:
    """The harness, the campaign and its debtors; number → (kind, expected outcomes)."""
    plan: dict[str, tuple[str, set[str]]] = {}
    behaviours: dict[str, Any] = {}
    rows = []
    for i in range(debtors):
        name, behaviour, expected = KINDS[i % len(KINDS)]
        number = _number(i)
        plan[number] = (name, expected)
        if behaviour is not None:
            behaviours[number] = behaviour
        rows.append(f"X{i:04d},Chaos {i},{number},1234,1984,ACC-X{i:04d},250.00,USD,10,2026-11-13,"
                    f"America/New_York,first,en,\n")
    (work / "debtors.csv").write_text(HEADER + "".join(rows))
    camp = (REPO / "campaigns" / "en_demo.yaml").read_text().replace("name: en_demo", f"name: {CAMPAIGN}")
    camp = camp.replace("line_limit: 4 ", "line_limit: 6 ")
    (work / "chaos.yaml").write_text(camp + "ring_seconds: 15\n")
    db = work / "dialer.db"
    store = Store(db)
    c = load_campaign(work / "chaos.yaml")
    core.upsert_campaign(store, c)
    core.import_debtors(store, read_debtors_csv(work / "debtors.csv"), c.name)
    store.close()
    harness = Harness(work / "run", agents=1, queue_timeout=15, behaviours=behaviours_from_dict(behaviours))
    return harness, db, plan


class Daemons:
    """`dialer run` processes whose clock goes on from where the last one's was."""

    def __init__(self, work: Path, db: Path, at: datetime):
        self.work, self.db, self.at, self.t0 = work, db, at, time.monotonic()
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, *, until_idle: bool = False, max_seconds: float = 600) -> subprocess.Popen:
        at = (self.at + timedelta(seconds=time.monotonic() - self.t0)).isoformat()
        log = self.work / f"daemon{len(self.procs)}.log"
        self.logs.append(log)
        args = [sys.executable, "-m", "dialer.cli", "run", "--db", str(self.db), "--run-dir", str(self.work / "run"),
                "--at", at, "--max-seconds", str(max_seconds), "--campaign", CAMPAIGN, "-v"]
        if until_idle:
            args.append("--until-idle")
        with open(log, "w") as fh:
            proc = subprocess.Popen(args, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _count(db: Path) -> int:
    s = Store(db, migrate=False)
    try:
        return int(s.query_one("SELECT count(*) FROM attempts")[0])
    finally:
        s.close()


def _time_to_dial(db: Path, proc: subprocess.Popen, timeout: float = 30.0) -> float | None:
    """Seconds from now (a start) until the daemon's first new attempt; None if it placed none in time."""
    t0, n0 = time.monotonic(), _count(db)
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if _count(db) > n0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def read_carrier_cdr(path: Path) -> list[dict[str, str]]:
    """The carrier's CDR rows (cdr_csv columns, uniqueid and userfield = the dialer's call id)."""
    from dialer.calls.recovery import CDR_COLUMNS

    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [dict(zip(CDR_COLUMNS, row)) for row in csv.reader(fh) if len(row) >= len(CDR_COLUMNS)]


def _epoch(s: str) -> float | None:
    try:
        return datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=None).timestamp()
    except ValueError:
        return None


def match(db: Path, carrier_rows: list[dict[str, str]], plan: dict[str, tuple[str, set[str]]],
          rules_path: Path = REPO / "compliance_rules.yaml") -> dict[str, Any]:
    """Every attempt against the carrier's record: double dials, lost and mis-settled attempts, cap violations."""
    store = Store(db, migrate=False)
    try:
        attempts = [dict(r) for r in store.query("SELECT * FROM attempts WHERE inbound=0 ORDER BY placed_at")]
        verified = {r[0] for r in store.query("SELECT DISTINCT call_id FROM call_events WHERE kind='verified'")}
        camp = core.get_campaign(store, CAMPAIGN)
    finally:
        store.close()
    by_id = {a["id"]: a for a in attempts}
    received: dict[str, list[dict[str, str]]] = {}
    for row in carrier_rows:
        received.setdefault(row["userfield"], []).append(row)
    double = sum(len(rows) - 1 for rows in received.values() if len(rows) > 1)
    per_number: dict[str, list[tuple[float, float]]] = {}
    for row in carrier_rows:
        start, end = _epoch(row["start"]), _epoch(row["end"])
        if start is not None:
            per_number.setdefault(row["dst"], []).append((start, end or start))
    for spans in per_number.values():  # two calls to one number in flight at once
        spans.sort()
        double += sum(1 for (s1, e1), (s2, _) in zip(spans, spans[1:]) if s2 < e1)
    attempts_per_number: dict[str, int] = {}
    for a in attempts:
        attempts_per_number[a["phone"]] = attempts_per_number.get(a["phone"], 0) + 1
    double += sum(max(0, len(spans) - attempts_per_number.get(num, 0)) for num, spans in per_number.items())

    lost = [uid for uid in received if uid and uid not in by_id]
    lost += [a["id"] for a in attempts if a["state"] in core.OPEN_STATES]
    lost += [a["id"] for a in attempts if a["outcome"] == vocab.UNKNOWN and a["id"] in received]
    mis: list[tuple[str, str, str]] = []
    for a in attempts:
        kind, expected = plan.get(a["phone"], ("?", set()))
        if a["id"] not in received:
            if a["outcome"] not in (vocab.UNKNOWN, vocab.FAILED):
                mis.append((a["id"], kind, f"{a['outcome']} but the carrier never received it"))
            continue
        if a["outcome"] not in expected:
            mis.append((a["id"], kind, f"{a['outcome']} not in {sorted(expected)}"))
        elif a["id"] in verified and not a["conversation"]:
            mis.append((a["id"], kind, "verified but no conversation"))
    profile = load_rules(rules_path).profile_for(camp.profile if camp else "us", CAMPAIGN)
    g = profile.gate
    caps = 0
    by_debtor: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_debtor.setdefault(a["debtor_id"], []).append(a)
    for rows in by_debtor.values():
        times = [r["placed_at"] for r in rows]
        caps += sum(1 for t1, t2 in zip(times, times[1:]) if t2 - t1 < g.min_gap_minutes * 60)
        days: dict[str, int] = {}
        for r in rows:
            d = local_time(r["placed_at"], r["phone"], "America/New_York").date().isoformat()
            days[d] = days.get(d, 0) + 1
        caps += sum(1 for n in days.values() if g.daily_attempts is not None and n > g.daily_attempts)
        conv = [max(r["placed_at"], r["ended_at"] or 0) for r in rows if r["conversation"]]
        caps += sum(1 for r in rows for c in conv
                    if c < r["placed_at"] < c + g.conversation_quiet_days * DAY)
    return {"attempts": len(attempts), "carrier_calls": len(carrier_rows), "double_dials": double,
            "lost_attempts": len(lost), "mis_settled_attempts": len(mis), "cap_violations": caps,
            "mis_settled": mis[:10], "lost": lost[:10]}


def soak(work: Path, *, kills: int, debtors: int, seed: int = 7, kill_after: tuple[float, float] = (2.0, 9.0),
         echo=print) -> dict[str, Any]:
    """Run the soak in `work`; returns the figures (see the module's docstring)."""
    from dialer.cli.demo import default_demo_time

    rng = random.Random(seed)
    harness, db, plan = setup(work, debtors)
    harness.up()
    daemons = Daemons(work, db, default_demo_time())
    restart_to_dial: list[float] = []
    baseline = None
    survived = 0
    t_start = time.monotonic()
    try:
        proc = daemons.start()
        baseline = _time_to_dial(db, proc)
        for k in range(kills):
            time.sleep(rng.uniform(*kill_after))
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited early; see {daemons.logs[-1]}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc = daemons.start()
            survived += 1
            dial = _time_to_dial(db, proc)
            if dial is not None:
                restart_to_dial.append(dial)
            echo(f"kill {k + 1}/{kills}: restarted, dialling again after "
                 f"{'-' if dial is None else f'{dial:.2f} s'}; {_count(db)} attempts so far")
        proc.send_signal(signal.SIGTERM)  # the end: stop gracefully, then one run to finish the campaign
        proc.wait(200)
        last = daemons.start(until_idle=True, max_seconds=400)
        last.wait(600)
        time.sleep(1.0)  # the carrier's CDR of the last calls
        carrier = read_carrier_cdr(work / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv")
    finally:
        daemons.kill_all()
        harness.down()
    figures = match(db, carrier, plan)
    figures.update({
        "kills_survived": survived, "debtors": debtors, "seconds": round(time.monotonic() - t_start, 1),
        "restart_to_dial_median_s": round(statistics.median(restart_to_dial), 2) if restart_to_dial else None,
        "restart_to_dial_max_s": round(max(restart_to_dial), 2) if restart_to_dial else None,
        "first_start_to_dial_s": round(baseline, 2) if baseline is not None else None,
    })
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--debtors", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the run here (default: a temporary dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        f = soak(work, kills=args.kills, debtors=args.debtors, seed=args.seed,
                 echo=(lambda *_: None) if args.json else print)
    if args.json:
        print(json.dumps(f))
        return
    print(f"kills survived:            {f['kills_survived']}")
    print(f"attempts:                  {f['attempts']} ({f['debtors']} debtors; the carrier received {f['carrier_calls']} calls)")
    print(f"double dials:              {f['double_dials']}")
    print(f"lost attempts:             {f['lost_attempts']}")
    print(f"mis-settled attempts:      {f['mis_settled_attempts']}")
    print(f"cap violations:            {f['cap_violations']}")
    print(f"restart to dialling again: median {f['restart_to_dial_median_s']} s, max {f['restart_to_dial_max_s']} s "
          f"(baseline, the first start with nothing to recover: {f['first_start_to_dial_s']} s)")
    print(f"soak time:                 {f['seconds']} s")
    for item in f["mis_settled"] + [("lost", x, "") for x in f["lost"]]:
        print("  ", *item)
    bad = f["double_dials"] + f["lost_attempts"] + f["mis_settled_attempts"] + f["cap_violations"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
