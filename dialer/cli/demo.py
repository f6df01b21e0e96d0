"""`dialer demo`: the whole system end to end on this machine — PBX and carrier simulator up, the English
example campaign loaded with ten simulated debtors covering every carrier behaviour, the daemon run until
idle, and a short report of what happened and what each answering callee heard."""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from common.paths import REPO
from dialer.cli.options import at_option, json_option
from dialer.gate.rules import DEFAULT_RULES_FILE

CAMPAIGN = REPO / "campaigns" / "en_demo.yaml"
DEBTORS = REPO / "campaigns" / "examples" / "demo_debtors.csv"
BEHAVIOURS = REPO / "campaigns" / "examples" / "carrier_behaviours.yaml"


def default_demo_time(tz: str = "America/New_York") -> datetime:
    """10:00 debtor-local on the next US business day: inside every window, whenever the demo runs."""
    import holidays

    zone = ZoneInfo(tz)
    day = datetime.now(zone).date()
    us = holidays.US(years=[day.year, day.year + 1])
    while day.weekday() >= 5 or day in us:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=zone)


def run_demo(workdir: Path, at: datetime, *, base_port: int | None = None, agi_port: int | None = None,
             max_seconds: float = 240.0, echo=click.echo) -> dict:
    from common.clock import Clock
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.cli.run import load_daemon_inputs, run_daemon
    from dialer.store import Store, core
    from dialer.telephony.harness import Harness

    if shutil.which("asterisk") is None or shutil.which("sipp") is None:
        raise click.ClickException("Asterisk and SIPp are not installed: run scripts/setup first")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    store = Store(workdir / "dialer.db")
    camp = load_campaign(CAMPAIGN)
    core.upsert_campaign(store, camp)
    summary = core.import_debtors(store, read_debtors_csv(DEBTORS), camp.name)
    echo(f"campaign {camp.name}: {summary.get('debtors', summary)} debtors imported; clock starts at {at.isoformat()}")
    harness = Harness(workdir / "run", base_port=base_port, agi_port=agi_port, agents=2, behaviours=BEHAVIOURS)
    t0 = time.monotonic()
    pbx = harness.up()
    echo(f"PBX + carrier simulator + 2 collector phones up in {time.monotonic() - t0:.2f} s")
    try:
        rules, camps = load_daemon_inputs(store, (camp.name,), REPO / DEFAULT_RULES_FILE)
        t1 = time.monotonic()
        stats = asyncio.run(run_daemon(store, pbx, rules, camps, Clock(at), until_idle=True,
                                       max_seconds=max_seconds))
        elapsed = time.monotonic() - t1
        time.sleep(0.5)
        report = build_report(store, harness, camp.name)
        report["seconds"] = round(elapsed, 1)
        report["stats"] = {"placed": stats.placed, "blocked": stats.blocked, "ended": stats.ended}
        return report
    finally:
        harness.down()


def build_report(store, harness, campaign: str) -> dict:
    """Outcome per debtor, what the answering ones heard (bot transcript + carrier-side recording), promises."""
    from common.wav import active_seconds, duration
    from dialer.store import audit as audit_log
    from dialer.store import core
    from dialer.store.qa import latest_result, transcript_turns
    from dialer.store.reports import debtor_calls, screen_pops

    debtors = []
    for r in debtor_calls(store, campaign):
        entry = {k: r[k] for k in ("debtor_id", "name", "call_id", "outcome", "disposition", "agent")}
        entry["phone"] = r["phone"]
        turns = transcript_turns(store, r["call_id"]) if r["call_id"] else []
        entry["bot_said"] = [t["text"] for t in turns if t["speaker"] == "agent"]
        rec = harness.recording_for(r["phone"], r["call_id"]) if r["call_id"] and r["phone"] else None
        if rec is not None and rec.exists():
            entry["heard_seconds"] = round(active_seconds(rec), 1)
            entry["recording_seconds"] = round(duration(rec), 1)
            entry["recording"] = str(rec)
        qa = latest_result(store, r["call_id"]) if r["call_id"] else None
        if qa is not None:
            entry["qa_score"] = qa.score
            entry["qa_violations"] = [v["rule"] for v in qa.violations]
        entry["promises"] = [{"amount": p["amount"], "due_date": p["due_date"]}
                             for p in core.promises_for(store, call_id=r["call_id"])] if r["call_id"] else []
        debtors.append(entry)
    return {"campaign": campaign, "debtors": debtors,
            "screen_pops": [{"agent": p["agent"], "debtor_id": p["debtor_id"], **p["context"]}
                            for p in screen_pops(store)],
            "audit_chain_ok": audit_log.verify_audit_chain(store)[0]}


def print_report(report: dict, echo=click.echo) -> None:
    echo("")
    echo(f"{'debtor':7} {'name':16} {'outcome':14} {'disposition':18} {'heard':>6} {'QA':>4}  what the bot said")
    for d in report["debtors"]:
        heard = f"{d['heard_seconds']:.1f}s" if "heard_seconds" in d else "-"
        said = " / ".join(s[:48] for s in d["bot_said"]) or "-"
        qa = str(d.get("qa_score", "-"))
        echo(f"{d['debtor_id']:7} {d['name'][:16]:16} {str(d['outcome']):14} {str(d['disposition'] or '-'):18} "
             f"{heard:>6} {qa:>4}  {said}")
    promises = [(d["debtor_id"], p) for d in report["debtors"] for p in d["promises"]]
    echo("")
    echo(f"promises recorded: {len(promises)}" + "".join(f"\n  {i}: {p['amount']} due {p['due_date']}"
                                                          for i, p in promises))
    for pop in report["screen_pops"]:
        echo(f"collector {pop['agent']} got {pop['debtor_id']} ({pop.get('name')}, owes {pop.get('amount_owed')} "
             f"{pop.get('currency')}, {pop.get('days_past_due')} days past due, verified={pop.get('verified')})")
    echo(f"calls placed {report['stats']['placed']}, gate blocks {report['stats']['blocked']}, "
         f"{report['seconds']} s; audit chain intact: {report['audit_chain_ok']}")


@click.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("var/demo"), show_default=True,
              help="Fresh directory for the demo's database and Asterisk run files (wiped first).")
@at_option("Clock start (ISO with offset); default 10:00 New York, next business day.")
@json_option("Print the report as JSON.")
@click.option("--base-port", type=click.IntRange(1024, 60000), default=None,
              help="Port base for the demo's Asterisk instances (default: a free block of ports).")
@click.option("--agi-port", type=click.IntRange(1, 65535), default=None,
              help="The daemon's FastAGI port (default: base port + 573).")
@click.option("-v", "--verbose", is_flag=True)
def demo(workdir: Path, at: datetime | None, as_json: bool, base_port: int | None, agi_port: int | None,
         verbose: bool) -> None:
    """Run the demo campaign end to end through real Asterisk and print what happened."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    start = at or default_demo_time()
    report = run_demo(workdir, start, base_port=base_port, agi_port=agi_port,
                      echo=(lambda *_: None) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
