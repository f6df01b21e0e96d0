"""`dialer script preview SCRIPT --debtor ID [--answers 1,1986,1]`: what the bot would say to this debtor,
turn by turn with the timing of each prompt, and (`--behaviour-out FILE`) the carrier behaviour entry
that makes a real call through the simulator follow the same path. Rehearse a script before going live."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from dialer.cli.options import at_option, db_option, json_option, open_store


def load_script_arg(script: str, campaign_file: str | None = None) -> Any:
    """SCRIPT as a file path or a script id (the campaign's scripts/ folder first, then campaigns/scripts)."""
    from agi.script.loader import HandlerRef, load_by_id, load_script
    from common.yamlfile import ConfigError

    try:
        if script.endswith((".yaml", ".yml")) or "/" in script:
            loaded = load_script(Path(script))
        else:
            local = Path(campaign_file).parent / "scripts" if campaign_file else None
            loaded = load_by_id(script, local if local is not None and (local / f"{script}.yaml").exists() else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"no script {script!r} ({exc.filename})") from None
    if isinstance(loaded, HandlerRef):
        raise click.ClickException(f"{script} is the hand-written {loaded.handler} flow, not a script graph: "
                                   "preview a script from campaigns/scripts/ (m1_reminder, m1_reminder_en, ...)")
    return loaded


def debtor_context(store: Any, debtor_id: str, at: datetime, phone: str | None = None,
                   call_id: str = "preview") -> tuple[Any, Any, Any]:
    """(CallContext, Campaign, the debtor's local date at `at`) for a debtor in the store — what a real
    call to them would be told (days past due counted from the due date, as at dial time)."""
    from agi.ports import CallContext
    from dialer.campaign.dpd import days_past_due_on
    from dialer.gate import zones
    from dialer.store import core

    d = core.get_debtor(store, debtor_id)
    if d is None:
        raise click.ClickException(f"no debtor {debtor_id!r} in {store.path}")
    camp = core.get_campaign(store, d["campaign"])
    if camp is None:
        raise click.ClickException(f"debtor {debtor_id}'s campaign {d['campaign']!r} is not loaded")
    if not d["accounts"]:
        raise click.ClickException(f"debtor {debtor_id} has no account")
    acct = d["accounts"][0]
    phone = phone or (d["phones"][0]["phone"] if d["phones"] else "")
    today = zones.local_date(at.timestamp(), phone or None, d.get("timezone"))
    ctx = CallContext(
        call_id=call_id, debtor_id=d["debtor_id"], name=d["name"], birth_year=d.get("birth_year"),
        institution=camp.institution, amount_owed=str(acct["amount_owed"]), currency=acct["currency"],
        days_past_due=days_past_due_on(acct.get("due_date"), acct["days_past_due"], today),
        locale=camp.locale, phone=phone, account_id=acct["account_id"], callback_number=camp.callback_number,
        extra={"due_date": acct.get("due_date"), "id_last4": d.get("id_last4"), "lang": d.get("lang"),
               "segment": d.get("segment")})
    return ctx, camp, today


def parse_answers(text: str | None) -> list[str]:
    if not text:
        return []
    out = [a.strip() for a in text.split(",")]
    for a in out:
        if not a or any(c not in "0123456789*#" for c in a):
            raise click.BadParameter(f"{a!r} is not DTMF keys (answers are keys separated by commas: 1,1986,1)",
                                     param_hint="--answers")
    return out


def write_behaviour(path: Path, number: str, entry: dict[str, Any]) -> None:
    """Add or replace NUMBER's entry in a carrier behaviour file (created if absent)."""
    import yaml

    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise click.ClickException(f"{path}: not a behaviour file (expected a mapping of numbers)")
    data[number] = entry
    path.write_text("# carrier behaviours written by `dialer script preview --behaviour-out`\n"
                    + yaml.safe_dump(data, allow_unicode=True, sort_keys=True, width=200), encoding="utf-8")


@click.group()
def script() -> None:
    """Voice-bot scripts: preview one for a debtor before going live."""


@script.command("preview")
@click.argument("script_name", metavar="SCRIPT")
@click.option("--debtor", "debtor_id", required=True, help="Debtor id (imported) whose record fills the prompts.")
@click.option("--answers", default=None, metavar="KEYS,...",
              help="The callee's keys, one entry per question, e.g. 1,1986,1 (none: the callee stays silent).")
@click.option("--say", "say", default=None, metavar="PHRASE|...",
              help='Spoken answers instead of keys, one per question, separated by "|", e.g. "是的|一九八六|我明天还" '
                   "(given to the script as recognised speech; the behaviour entry makes the carrier say them).")
@click.option("--number", default=None, help="The number called (default: the debtor's primary number).")
@click.option("--behaviour-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the matching carrier behaviour entry for the number into FILE (added or replaced).")
@click.option("--no-amd", is_flag=True, help="Time as for a campaign with answering-machine detection off.")
@at_option("Time of the call (ISO with offset; default now): sets the debtor's 'today'.")
@db_option
@json_option("Print the preview as one JSON object.")
def preview_cmd(script_name: str, debtor_id: str, answers: str | None, say: str | None, number: str | None,
                behaviour_out: Path | None, no_amd: bool, at: datetime | None, db: Path | None, as_json: bool) -> None:
    """Print what the bot would say to DEBTOR, turn by turn, with the second each prompt starts and ends."""
    from agi.media.tts import TTS
    from common.wav import duration
    from dialer.calls.bot import script_debtor
    from dialer.campaign.preview import behaviour_entry, notice_for, preview_script

    if answers and say:
        raise click.UsageError("give --answers (keys) or --say (spoken answers), not both")
    keys = [p.strip() for p in say.split("|") if p.strip()] if say else parse_answers(answers)
    now = at or datetime.now(timezone.utc)
    store = open_store(db, must_exist=True)
    try:
        ctx, camp, today = debtor_context(store, debtor_id, now, phone=number)
    finally:
        store.close()
    scr = load_script_arg(script_name, camp.file)
    if scr.locale != camp.locale:
        click.echo(f"warning: script {scr.id} is {scr.locale}, campaign {camp.name} is {camp.locale}", err=True)
    tts = TTS()
    p = preview_script(scr, script_debtor(ctx), keys, today,
                       lambda text, locale: duration(tts.render(text, locale)), amd=camp.amd and not no_amd,
                       spoken=bool(say), notice=notice_for(camp))
    entry = behaviour_entry(p, note=f"preview {scr.id} {debtor_id} {'says' if say else 'answers'} "
                                    f"{'|'.join(keys) if say else ','.join(keys) or '-'}")
    if behaviour_out is not None:
        write_behaviour(behaviour_out, ctx.phone, entry)
    if as_json:
        click.echo(json.dumps({"debtor_id": debtor_id, "number": ctx.phone, "today": today.isoformat(),
                               **p.as_dict(), "behaviour": entry}, ensure_ascii=False))
        return
    click.echo(f"script {scr.id} ({scr.locale}) for {debtor_id} {ctx.name}, number {ctx.phone}, "
               f"debtor's date {today.isoformat()}; seconds after answer:")
    for t in p.turns:
        who = "bot   " if t.speaker == "agent" else "callee"
        click.echo(f"  {t.start:6.1f}–{t.end:6.1f}s  {who} {t.text}")
    click.echo(f"outcome: {p.outcome or 'waiting'}" + (f"; records: {', '.join(p.records)}" if p.records else ""))
    if p.unused_answers:
        click.echo(f"warning: answers not used (the call ended first): {','.join(p.unused_answers)}", err=True)
    if behaviour_out is not None:
        click.echo(f"behaviour for {ctx.phone} written to {behaviour_out}")
    else:
        click.echo(f"carrier behaviour: {json.dumps(entry, ensure_ascii=False)}")
