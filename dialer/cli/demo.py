"""`dialer demo [--lang zh]`: the whole system end to end on this machine — PBX and carrier simulator up,
the English (or Chinese) example campaign loaded with ten simulated debtors covering every outcome, the
daemon run until idle, and a short report of what happened and what each answering callee heard."""
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
ZH_CAMPAIGN = REPO / "campaigns" / "zh_demo.yaml"
ZH_DEBTORS = REPO / "campaigns" / "examples" / "zh_debtors.csv"

# The Chinese demo's simulated debtors: the keys each presses, one per question (None: the carrier file's
# entry as it is — busy, no answer, machine, unallocated). Key timings come from `script preview` of the
# debtor's own script at run time, so they follow the prompts whatever voice renders them.
ZH_SCENARIOS: dict[str, tuple[list[str] | None, str]] = {
    "Z001": (["1", "1986", "1"], "本人，核实出生年份，承诺今天还款"),
    "Z002": (None, "忙线"),
    "Z003": (None, "无人接听"),
    "Z004": (["1", "1970", "1971"], "本人，出生年份两次不符：听不到任何欠款信息"),
    "Z005": (["1", "1983", "0"], "本人，核实后要求转人工"),
    "Z006": (None, "语音信箱（答录机）"),
    "Z007": ([], "接听后说“喂”，不按键"),
    "Z008": (["2", "1"], "不是本人，认识债务人：第三方"),
    "Z009": (["2", "2"], "不是本人，不认识：号码错误"),
    "Z010": (None, "空号"),
}
OUTCOME_ZH = {"promise": "承诺还款", "busy": "忙线", "no_answer": "无人接听", "machine": "答录机",
              "unallocated": "空号", "verification_failed": "核实失败", "third_party": "第三方",
              "wrong_number": "号码错误", "no_response": "无回应", "transferred": "转人工", "agent": "转人工",
              "callee_hangup": "对方挂机", "answered": "已接听", "failed": "失败", "refusal": "拒绝",
              "hardship": "困难", "dispute": "异议", "cease": "停止来电", "callback": "另约时间"}


def default_demo_time(tz: str = "America/New_York") -> datetime:
    """10:00 debtor-local on the next business day (US or CN calendar by zone): inside every window,
    whenever the demo runs."""
    import holidays

    zone = ZoneInfo(tz)
    day = datetime.now(zone).date()
    cal = (holidays.CN if tz.startswith("Asia/") else holidays.US)(years=[day.year, day.year + 1])
    while day.weekday() >= 5 or day in cal:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=zone)


def zh_behaviours(store, at: datetime, base: Path = BEHAVIOURS) -> dict:
    """The carrier file's entries for the Chinese demo's numbers, each answering debtor's keys re-timed
    by previewing their own segment's script (what `dialer script preview --behaviour-out` writes)."""
    import yaml

    from agi.media.tts import TTS
    from common.wav import duration
    from dialer.calls.bot import script_debtor
    from dialer.campaign.preview import behaviour_entry, notice_for, preview_script
    from dialer.cli.script import debtor_context, load_script_arg
    from dialer.store import core

    data = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
    tts = TTS()
    out = {}
    for debtor_id, (keys, note) in ZH_SCENARIOS.items():
        d = core.get_debtor(store, debtor_id)
        if d is None:
            continue
        phone = d["phones"][0]["phone"]
        if keys is None:
            out[phone] = dict(data.get(phone) or {"unallocated": True}, note=note)
            continue
        ctx, camp, today = debtor_context(store, debtor_id, at)
        seg = camp.segment(d["segment"]) if d["segment"] else camp.segments[0]
        scr = load_script_arg(seg.script, camp.file)
        p = preview_script(scr, script_debtor(ctx), keys, today,
                           lambda text, locale: duration(tts.render(text, locale)), amd=camp.amd,
                           notice=notice_for(camp))
        out[phone] = behaviour_entry(p, note=note)
    return out


def run_demo(workdir: Path, at: datetime, *, base_port: int | None = None, agi_port: int | None = None,
             max_seconds: float = 240.0, echo=click.echo, lang: str = "en") -> dict:
    from common.clock import Clock
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.cli.run import load_daemon_inputs, run_daemon
    from dialer.store import Store, core
    from dialer.telephony.harness import Harness

    if shutil.which("asterisk") is None or shutil.which("sipp") is None:
        raise click.ClickException("Asterisk and SIPp are not installed: run scripts/setup first")
    if (workdir / "run" / "harness.json").exists():
        # a demo killed earlier (even by SIGKILL) left its PBX, carrier and phones running: stop them by
        # the PIDs it recorded before wiping their run directory
        Harness(workdir / "run").down()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    store = Store(workdir / "dialer.db")
    camp = load_campaign(ZH_CAMPAIGN if lang == "zh" else CAMPAIGN)
    core.upsert_campaign(store, camp)
    summary = core.import_debtors(store, read_debtors_csv(ZH_DEBTORS if lang == "zh" else DEBTORS,
                                                          region=camp.default_region), camp.name)
    behaviours: Path | object = BEHAVIOURS
    if lang == "zh":
        from dialer.telephony.carrier import behaviours_from_dict

        behaviours = behaviours_from_dict(zh_behaviours(store, at), "zh demo behaviours")
        echo(f"活动 {camp.name}：导入 {summary.get('debtors', summary)} 位债务人；时钟从 {at.isoformat()} 开始")
    else:
        echo(f"campaign {camp.name}: {summary.get('debtors', summary)} debtors imported; clock starts at {at.isoformat()}")
    harness = Harness(workdir / "run", base_port=base_port, agi_port=agi_port, agents=2, behaviours=behaviours)
    t0 = time.monotonic()
    pbx = harness.up()
    echo(f"PBX + carrier simulator + 2 collector phones up in {time.monotonic() - t0:.2f} s"
         + ("（交换机、运营商模拟器和 2 部坐席话机已启动）" if lang == "zh" else ""))
    try:
        rules, camps = load_daemon_inputs(store, (camp.name,), REPO / DEFAULT_RULES_FILE)
        t1 = time.monotonic()
        stats = asyncio.run(run_daemon(store, pbx, rules, camps, Clock(at), until_idle=True,
                                       max_seconds=max_seconds))
        elapsed = time.monotonic() - t1
        time.sleep(0.5)
        report = build_report(store, harness, camp.name)
        report["lang"] = lang
        if lang == "zh":
            for d in report["debtors"]:
                d["scenario"] = ZH_SCENARIOS.get(d["debtor_id"], (None, ""))[1]
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


def print_report_zh(report: dict, echo=click.echo) -> None:
    """The Chinese demo's report, in Chinese: each debtor's scenario, outcome and what the bot said."""
    echo("")
    for d in report["debtors"]:
        key = str(d["disposition"] or ("agent" if d.get("agent") else d["outcome"]))
        outcome = OUTCOME_ZH.get(key, key) + (f"（坐席 {d['agent']}）" if d.get("agent") else "")
        heard = f"，听到 {d['heard_seconds']:.1f} 秒" if "heard_seconds" in d else ""
        qa = f"，质检 {d['qa_score']} 分" if "qa_score" in d else ""
        echo(f"{d['debtor_id']} {d['name']}（{d.get('scenario', '')}）：{outcome}{heard}{qa}")
        for said in d["bot_said"]:
            echo(f"    机器人：{said}")
    promises = [(d["debtor_id"], p) for d in report["debtors"] for p in d["promises"]]
    echo("")
    echo(f"还款承诺：{len(promises)} 笔" + "".join(f"\n  {i}：{p['amount']} 元，{p['due_date']} 前"
                                               for i, p in promises))
    for pop in report["screen_pops"]:
        echo(f"坐席 {pop['agent']} 接到 {pop['debtor_id']}（{pop.get('name')}，欠款 {pop.get('amount_owed')} "
             f"{pop.get('currency')}，逾期 {pop.get('days_past_due')} 天，已核实={pop.get('verified')}）")
    echo(f"外呼 {report['stats']['placed']} 通，合规拦截 {report['stats']['blocked']} 次，用时 {report['seconds']} 秒；"
         f"审计链完整：{'是' if report['audit_chain_ok'] else '否'}")


def print_report(report: dict, echo=click.echo) -> None:
    if report.get("lang") == "zh":
        print_report_zh(report, echo)
        return
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
@at_option("Clock start (ISO with offset); default 10:00 New York (zh: Shanghai), next business day.")
@json_option("Print the report as JSON.")
@click.option("--base-port", type=click.IntRange(1024, 64000), default=None,
              help="Port base for the demo's Asterisk instances (default: a free block of ports).")
@click.option("--agi-port", type=click.IntRange(1, 65535), default=None,
              help="The daemon's FastAGI port (default: base port + 573).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="en: the English campaign (en_demo); zh: the Chinese one (zh_demo, CN rules, Mandarin bot).")
@click.option("-v", "--verbose", is_flag=True, help="Log the daemon's events to stderr.")
def demo(workdir: Path, at: datetime | None, as_json: bool, base_port: int | None, agi_port: int | None,
         lang: str, verbose: bool) -> None:
    """Run the demo campaign end to end through real Asterisk and print what happened."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    start = at or default_demo_time("Asia/Shanghai" if lang == "zh" else "America/New_York")
    from dialer.telephony.harness import HarnessError

    try:
        report = run_demo(workdir, start, base_port=base_port, agi_port=agi_port, lang=lang,
                          echo=(lambda *_: None) if as_json else click.echo)
    except HarnessError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
