"""The operators' view's cost and speed, through real Asterisk (harness + carrier simulator):

    python -m bench.observe [--debtors 12] [--json]

- event-to-screen latency: from the moment the daemon took an AMI event in (it publishes on its bus there)
  to the wallboard's DOM update in headless Chromium (Debian's, via playwright), p50 / p95 / max;
- the daemon's CPU seconds while it dials the same campaign, with the bus, metrics, a Prometheus-like scrape
  every 5 s and an open wallboard, against the same run with no observer attached (`--no-observers`: the bus
  with the run's tally only). CPU counted from the first attempt to the process's end (start-up, including
  the QA detectors' load, is the same in both and left out). A warm-up run first fills the prompt cache.

Both runs dial the same debtors with the same carrier behaviours (answered calls of ~10-20 s, busy, machine)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common.paths import REPO
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CHROMIUM = "/usr/bin/chromium"


def _plan(n: int) -> tuple[str, dict[str, Any]]:
    rows, beh = [], {}
    kinds = [
        {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 12},
        {"answer_after": 2, "then": "speak", "audio": "hello.wav",
         "dtmf": [{"digits": "1", "at": 6}, {"digits": "1970", "at": 10}], "hangup_after": 18},
        {"busy": True},
        {"answer_after": 2, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 20},
        {"answer_after": 1, "then": "silent", "hangup_after": 3},
    ]
    for i in range(n):
        phone = f"+1212555{6000 + i:04d}"
        rows.append(f"B{i:03d},Bench {i},{phone},1234,1984,ACC-B{i:03d},100.00,USD,12,2026-11-11,"
                    f"America/New_York,first,en,\n")
        beh[phone] = kinds[i % len(kinds)]
    return HEADER + "".join(rows), beh


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(work: Path, n: int, *, observers: bool, browser: bool) -> dict[str, Any]:
    work.mkdir(parents=True)
    csv_text, beh = _plan(n)
    db = work / "dialer.db"
    store = Store(db)
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    (work / "d.csv").write_text(csv_text)
    core.import_debtors(store, read_debtors_csv(work / "d.csv"), camp.name)
    harness = Harness(work / "run", agents=1, behaviours=behaviours_from_dict(beh))
    harness.up()
    out: dict[str, Any] = {"observers": observers}
    try:
        args = [sys.executable, "-m", "dialer.cli", "run", "--db", str(db), "--run-dir", str(work / "run"),
                "--at", default_demo_time().isoformat(), "--until-idle", "--max-seconds", "240", "--grace", "30",
                "--campaign", camp.name]
        args += ["--web-port", "0"] if observers else ["--no-observers"]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pw = page = chromium = None
        try:
            if observers:
                info = work / "run" / "web.json"
                while not info.exists() and proc.poll() is None:
                    time.sleep(0.05)
                base = json.loads(info.read_text())["url"]
                token = (work / "run" / "web.token").read_text().strip()
                if browser:
                    from playwright.sync_api import sync_playwright

                    pw = sync_playwright().start()
                    chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
                    page = chromium.new_page()
                    page.goto(f"{base}?token={token}")
            while proc.poll() is None and not store.query("SELECT 1 FROM attempts LIMIT 1"):
                time.sleep(0.02)
            cpu0 = _cpu(proc.pid)
            t0 = time.monotonic()
            last_scrape = 0.0
            last_cpu = cpu0
            while proc.poll() is None:
                try:
                    last_cpu = _cpu(proc.pid)
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    break
                if observers and time.monotonic() - last_scrape > 5:
                    last_scrape = time.monotonic()
                    req = urllib.request.Request(base + "metrics", headers={"Authorization": f"Bearer {token}"})
                    try:
                        urllib.request.urlopen(req, timeout=5).read()
                    except OSError:
                        pass
                if page is not None:
                    page.wait_for_timeout(100)
                    out["updates"] = page.evaluate("window.__updates")
                else:
                    time.sleep(0.1)
            proc.wait(60)
            out["cpu_seconds"] = last_cpu - cpu0
            out["wall_seconds"] = time.monotonic() - t0
            out["summary"] = json.loads(proc.stdout.read().strip().splitlines()[-1])
        finally:
            if chromium is not None:
                chromium.close()
            if pw is not None:
                pw.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        harness.down()
    return out


def latency(updates: list[dict[str, Any]]) -> dict[str, float]:
    """Event-to-screen: each update that carried a new event (version moved), shown - event time, in ms."""
    ms, prev = [], None
    for u in updates:
        if prev is not None and u["version"] != prev and u["event_wall"]:
            ms.append((u["shown"] - u["event_wall"]) * 1000)
        prev = u["version"]
    if not ms:
        return {"n": 0}
    ms.sort()
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1), "max_ms": round(ms[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debtors", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: run scripts/setup", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp:
        work = Path(tmp)
        one_run(work / "warm", a.debtors, observers=False, browser=False)  # renders and caches the prompts
        base = one_run(work / "base", a.debtors, observers=False, browser=False)
        full = one_run(work / "full", a.debtors, observers=True, browser=True)
    lat = latency(full.get("updates", []))
    more = (full["cpu_seconds"] - base["cpu_seconds"]) / base["cpu_seconds"] * 100 if base["cpu_seconds"] else 0.0
    res = {"debtors": a.debtors, "placed": [base["summary"]["placed"], full["summary"]["placed"]],
           "cpu_without_s": round(base["cpu_seconds"], 2), "cpu_with_s": round(full["cpu_seconds"], 2),
           "cpu_more_pct": round(more, 1), "wall_without_s": round(base["wall_seconds"], 1),
           "wall_with_s": round(full["wall_seconds"], 1), "event_to_screen": lat}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{'':32}{'without observers':>20}{'bus+metrics+wallboard':>24}")
        print(f"{'calls placed':32}{res['placed'][0]:>20}{res['placed'][1]:>24}")
        print(f"{'daemon CPU s (first call → end)':32}{res['cpu_without_s']:>20}{res['cpu_with_s']:>24}")
        print(f"{'wall s':32}{res['wall_without_s']:>20}{res['wall_with_s']:>24}")
        print(f"CPU with the observers: {res['cpu_more_pct']:+.1f} % (goal < 5 %)")
        print(f"event-to-screen (AMI event in the daemon → wallboard DOM): n={lat.get('n')} "
              f"p50 {lat.get('p50_ms')} ms, p95 {lat.get('p95_ms')} ms, max {lat.get('max_ms')} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
