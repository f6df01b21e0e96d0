"""`dialer complaints`: record a complaint, see it with its linked calls, close its QA review, release its hold
(docs/COMPLAINTS.md). The coaching list the reviews feed is `dialer qa coaching`."""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from common.log import mask_phone
from common.yamlfile import ConfigError
from dialer.cli.options import db_option, json_option, open_store
from dialer.store.audit import write_head
from dialer.gate.rules import DEFAULT_RULES_FILE
from dialer.qa.complaints import (
    CATEGORIES,
    CHANNELS,
    FINDINGS,
    RESPONSIBLE,
    ComplaintError,
    parse_complaint,
    parse_review,
)

by_option = click.option("--by", "actor", default=None, help="who is acting (default: the login name)")
at_option = click.option("--at", "at", default=None, help="When: ISO time with UTC offset (default: now; a simulated "
                         "clock).")


def _at(at: str | None, as_json: bool) -> float:
    from common.clock import parse_at

    try:
        return parse_at(at).timestamp() if at else time.time()
    except ValueError as exc:
        _fail(str(exc), as_json)
rules_option = click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
                            default=DEFAULT_RULES_FILE, show_default=True,
                            help="Compliance rules: the profile's complaints: settings (hold, window, severity, due).")


def _actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


def _fail(msg: str, as_json: bool = False) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": msg}, ensure_ascii=False))
        raise SystemExit(1)
    raise click.ClickException(msg)


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _print(c: dict[str, Any]) -> None:
    who = " ".join(x for x in (f"debtor {c['debtor_id']}" if c["debtor_id"] else "",
                               f"phone {mask_phone(c['phone'])}" if c["phone"] else "") if x)
    click.echo(f"complaint {c['id']}: {c['category']} via {c['channel']}, {who}, received {_when(c['received_at'])}"
               + (f", ref {c['reference']}" if c["reference"] else ""))
    click.echo(f"  {c['text']}")
    if c.get("severity"):
        late = " OVERDUE" if c["status"] == "review" and c["due_at"] is not None and c["due_at"] < time.time() else ""
        click.echo(f"  severity {c['severity']} (profile {c['profile']}); review due {_when(c['due_at'])}{late}")
    what = "attempt(s), answered or not," if c.get("link_scope") == "attempts" else "answered call(s)"
    click.echo(f"  status {c['status']}; {len(c['calls'])} linked {what} in the {c['window_days']:g} days before")
    p = c.get("attempts")
    if p:
        def cap(rule: str, peak: int) -> str:
            limit, held = p["caps"][rule], p["held"][rule]
            return f"{peak} ({rule} {'none' if limit is None else limit}: " \
                   f"{'-' if held is None else 'held' if held else 'EXCEEDED'})"
        click.echo(f"  attempts {p['attempts']} ({p['answered']} answered); most in a day "
                   f"{cap('cap.daily', p['peak_day'])}, to one number in a day "
                   f"{cap('cap.number_daily', p['peak_number_day'])}, in 7 days {cap('cap.7in7', p['peak_7days'])}"
                   f"; days in {p['zone']}, counting {p['count']}")
        for d in p["days"]:
            click.echo(f"    {d['date']}  {d['attempts']:3d} attempts, {d['answered']} answered")
    for call in c["calls"]:
        state = "" if "answered_at" not in call else "  answered" if call["answered_at"] else \
            f"  {call.get('outcome') or 'unanswered'}"
        click.echo(f"  call {call['call_id']}  {call['campaign']}  collector {call['agent'] or '(none)'}  "
                   f"placed {_when(call['placed_at'])}{state}")
        for r in call.get("recordings", []):
            click.echo(f"    recording {r['leg']:16} {r['seconds']:6.1f} s  {r['path']}"
                       + ("  (pruned)" if r["pruned_at"] else ""))
        for a in call.get("live_alerts", []):
            click.echo(f"    live alert {a['rule']} ({a['action']}): {a['evidence']}")
        if call.get("qa"):
            click.echo(f"    QA score {call['qa']['score']}: {', '.join(call['qa']['rules']) or 'no violation'}")
        turns = call.get("transcript") or [t | {"speaker": leg} for leg, ts in call.get("leg_transcripts", {}).items()
                                           for t in ts]
        for t in turns:
            click.echo(f"    [{t['speaker']}] {t['text']}")
    rev = c["review"]
    if rev is not None:
        if rev["status"] == "open":
            click.echo(f"  QA review open since {_when(rev['opened_at'])} "
                       f"(dialer complaints review {c['id']} --finding …)")
        else:
            click.echo(f"  QA review closed {_when(rev['closed_at'])} by {rev['reviewer']}: {rev['finding']}"
                       + (f", collector {rev['agent']} on call {rev['call_id']}, rule {rev['rule']}"
                          if rev["agent"] else "")
                       + (f", campaign {rev.get('campaign')}'s owner ({rev.get('owner')}), rule {rev['rule']}"
                          if rev.get("responsible") == "owner" else ""))
    h = c["hold"]
    if h is not None:
        state = f"released {_when(h['released_at'])} by {h['released_by']}" if h["released_at"] else "in force"
        if h["released_at"] and h["in_force"]:
            state += f"; the list entry stays: complaint(s) {', '.join(map(str, h['held_by']))} still hold it"
        click.echo(f"  contact hold on the {h['list']} list ({h['by']} {h['key']}) since {h['since']}: {state}")


@click.group()
def complaints() -> None:
    """Complaints from the regulator's hotline, the lender's customer service, ... (docs/COMPLAINTS.md)."""


@complaints.command("add")
@click.option("--debtor", "debtor_id", default=None, help="The debtor complained about (or give --phone).")
@click.option("--phone", default=None, help="The number called (E.164); finds the debtor when --debtor is not given.")
@click.option("--channel", required=True, type=click.Choice(CHANNELS), help="Where the complaint came in.")
@click.option("--category", required=True, type=click.Choice(CATEGORIES),
              help="What it is about; the profile's hold categories (compliance_rules.yaml complaints.hold) put a "
                   "contact hold at once, its all_attempts categories link unanswered attempts too.")
@click.option("--text", "text", required=True, help="What the complainant said.")
@click.option("--at", "at", default=None, help="When it was received: ISO time with UTC offset (default: now).")
@click.option("--reference", default=None, help="The channel's own ticket number.")
@click.option("--window-days", "window_days", type=float, default=None,
              help="Link calls placed this many days before it (default: the profile's complaints.window_days).")
@rules_option
@db_option
@by_option
@json_option()
def add_cmd(debtor_id: str | None, phone: str | None, channel: str, category: str, text: str, at: str | None,
            reference: str | None, window_days: float | None, rules_file: Path, db: Path | None, actor: str | None,
            as_json: bool) -> None:
    """Record a complaint: link the calls that could be its cause, open their QA review, hold contact for a
    harassment complaint; audited, and `complaint.received` goes out through the webhook outbox."""
    from dialer.gate.rules import load_rules
    from dialer.qa.complaints import take_complaint

    record = {"debtor_id": debtor_id, "phone": phone, "channel": channel, "category": category, "text": text,
              "received_at": at, "reference": reference, "window_days": window_days}
    try:
        c = parse_complaint(record, now=time.time())
    except ComplaintError as exc:
        flag = {"debtor_id": "--debtor", "received_at": "--at"}.get(exc.field, "--" + exc.field.replace("_", "-"))
        _fail(f"{flag}: {str(exc).split(': ', 1)[1]}", as_json)
    try:
        rules = load_rules(rules_file)
    except (ConfigError, OSError) as exc:
        _fail(exc.render() if isinstance(exc, ConfigError) else f"--rules: {exc}", as_json)
    _change(open_store(db), lambda store: take_complaint(store, c, rules, actor=_actor(actor)),
            {"debtor_id": "--debtor"}, as_json)


@complaints.command("list")
@click.option("--status", type=click.Choice(["review", "no_calls", "reviewed"]), default=None,
              help="Only complaints in this state (review: open review; no_calls: nothing linked; reviewed).")
@click.option("--debtor", "debtor_id", default=None, help="Only complaints about this debtor.")
@click.option("--overdue", is_flag=True, help="Only complaints whose review is still open past its due time.")
@click.option("--at", "at", default=None,
              help="The time overdue is judged at: ISO time with UTC offset (default: now).")
@db_option
@json_option("print one JSON object per complaint per line")
def list_cmd(status: str | None, debtor_id: str | None, overdue: bool, at: str | None, db: Path | None,
             as_json: bool) -> None:
    """The complaints, oldest first, with their severity and the review's due time."""
    from dialer.store.complaints import list_complaints

    when = _at(at, as_json)
    store = open_store(db, must_exist=True)
    rows = list_complaints(store, status=status, debtor_id=debtor_id, overdue_at=when if overdue else None)
    for c in rows:
        if as_json:
            click.echo(json.dumps(c, ensure_ascii=False))
            continue
        rev = c["review"]
        finding = "-" if rev is None else rev["finding"] or "open"
        late = " OVERDUE" if finding == "open" and c["due_at"] is not None and c["due_at"] < when else ""
        click.echo(f"{c['id']:5d} {_when(c['received_at'])} {c['channel']:17} {c['category']:19} "
                   f"{c['severity'] or '-':8} due {_when(c['due_at'])}{late} "
                   f"{c['debtor_id'] or mask_phone(c['phone'] or '')} calls {len(c['calls'])} review {finding}"
                   + (f" ({rev['agent']}, {rev['rule']})" if rev and rev["agent"] else "")
                   + (" HOLD" if c["hold_id"] else ""))
    if not rows and not as_json:
        click.echo("no overdue reviews" if overdue else "no complaints")


@complaints.command("show")
@click.argument("complaint_id", type=int)
@db_option
@json_option()
def show_cmd(complaint_id: int, db: Path | None, as_json: bool) -> None:
    """A complaint with what its review opens: each linked call's recordings, transcripts, live alerts and score."""
    from dialer.store.complaints import get_complaint

    store = open_store(db, must_exist=True)
    c = get_complaint(store, complaint_id, evidence=True)
    if c is None:
        _fail(f"no complaint {complaint_id}", as_json)
    if as_json:
        click.echo(json.dumps(c, ensure_ascii=False))
        return
    _print(c)


@complaints.command("review")
@click.argument("complaint_id", type=int)
@click.option("--finding", required=True, type=click.Choice(FINDINGS),
              help="substantiated puts the collector on the coaching list (dialer qa coaching).")
@click.option("--call", "call_id", default=None, help="The linked call the finding is about (default: the only "
              "collector's call).")
@click.option("--rule", default=None, help="The rule broken (default: the call's QA violation, its live alert, or "
              "complaint.<category>).")
@click.option("--note", default=None, help="The reviewer's note (audited).")
@click.option("--responsible", type=click.Choice(RESPONSIBLE), default=None,
              help="Who answers for a substantiated finding (default: the only collector on the linked calls, the "
                   "campaign's owner when none was on the line).")
@at_option
@db_option
@by_option
@json_option()
def review_cmd(complaint_id: int, finding: str, call_id: str | None, rule: str | None, note: str | None,
               responsible: str | None, at: str | None, db: Path | None, actor: str | None, as_json: bool) -> None:
    """Close the QA review of a complaint with its finding; `complaint.reviewed` goes out through the outbox."""
    from dialer.store.complaints import close_review

    try:
        r = parse_review({"finding": finding, "call_id": call_id, "rule": rule, "note": note,
                          "responsible": responsible})
    except ComplaintError as exc:
        _fail(f"--{ {'call_id': 'call'}.get(exc.field, exc.field)}: {str(exc).split(': ', 1)[1]}", as_json)
    now = _at(at, as_json)
    _change(open_store(db, must_exist=True),
            lambda store: close_review(store, complaint_id, r.finding, reviewer=_actor(actor), call_id=r.call_id,
                                       rule=r.rule, note=r.note, responsible=r.responsible, now=now),
            {"call_id": "--call", "responsible": "--responsible"}, as_json)


@complaints.command("release")
@click.argument("complaint_id", type=int)
@click.option("--reason", required=True, help="Why contact may resume (audited).")
@at_option
@db_option
@by_option
@json_option()
def release_cmd(complaint_id: int, reason: str, at: str | None, db: Path | None, actor: str | None,
                as_json: bool) -> None:
    """Release the contact hold a complaint put; the list entry is lifted when no other complaint still holds it."""
    from dialer.store.complaints import release_hold

    now = _at(at, as_json)
    _change(open_store(db, must_exist=True),
            lambda store: release_hold(store, complaint_id, by=_actor(actor), reason=reason, now=now),
            {"reason": "--reason"}, as_json)


def _change(store, change, options: dict[str, str], as_json: bool) -> None:
    """Run one change of a complaint, anchor the audit chain outside the database, print the result; a
    refusal names the command's option (`debtor_id:` → `--debtor:`)."""
    from dialer.store.complaints import ComplaintStoreError

    try:
        out = change(store)
        write_head(store)  # anchor the audit chain outside the database
    except ComplaintStoreError as exc:
        msg = str(exc)
        for field, option in options.items():
            msg = msg.replace(f"{field}:", f"{option}:")
        _fail(msg, as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    _print(out)
