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
from dialer.cli.options import db_option, json_option, open_store
from dialer.store.audit import write_head
from dialer.qa.complaints import (
    CATEGORIES,
    CHANNELS,
    FINDINGS,
    HOLD_CATEGORIES,
    HOLD_LIST,
    ComplaintError,
    parse_complaint,
)

by_option = click.option("--by", "actor", default=None, help="who is acting (default: the login name)")


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
    click.echo(f"  status {c['status']}; {len(c['calls'])} linked call(s) in the {c['window_days']:g} days before")
    for call in c["calls"]:
        click.echo(f"  call {call['call_id']}  {call['campaign']}  collector {call['agent'] or '(bot)'}  "
                   f"placed {_when(call['placed_at'])}")
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
                          if rev["agent"] else ""))
    h = c["hold"]
    if h is not None:
        state = f"released {_when(h['released_at'])} by {h['released_by']}" if h["released_at"] else "in force"
        click.echo(f"  contact hold on the {h['list']} list ({h['by']} {h['key']}) since {h['since']}: {state}")


@click.group()
def complaints() -> None:
    """Complaints from the regulator's hotline, the lender's customer service, ... (docs/COMPLAINTS.md)."""


@complaints.command("add")
@click.option("--debtor", "debtor_id", default=None, help="The debtor complained about (or give --phone).")
@click.option("--phone", default=None, help="The number called (E.164); finds the debtor when --debtor is not given.")
@click.option("--channel", required=True, type=click.Choice(CHANNELS), help="Where the complaint came in.")
@click.option("--category", required=True, type=click.Choice(CATEGORIES),
              help=f"What it is about; {', '.join(HOLD_CATEGORIES)} put a contact hold at once.")
@click.option("--text", "text", required=True, help="What the complainant said.")
@click.option("--at", "at", default=None, help="When it was received: ISO time with UTC offset (default: now).")
@click.option("--reference", default=None, help="The channel's own ticket number.")
@click.option("--window-days", "window_days", type=float, default=None,
              help="Link answered calls placed this many days before it (default 14).")
@db_option
@by_option
@json_option()
def add_cmd(debtor_id: str | None, phone: str | None, channel: str, category: str, text: str, at: str | None,
            reference: str | None, window_days: float | None, db: Path | None, actor: str | None,
            as_json: bool) -> None:
    """Record a complaint: link the calls that could be its cause, open their QA review, hold contact for a
    harassment complaint; audited, and `complaint.received` goes out through the webhook outbox."""
    from dialer.store.complaints import ComplaintStoreError, add_complaint

    record = {"debtor_id": debtor_id, "phone": phone, "channel": channel, "category": category, "text": text,
              "received_at": at, "reference": reference, "window_days": window_days}
    try:
        c = parse_complaint(record, now=time.time())
    except ComplaintError as exc:
        flag = {"debtor_id": "--debtor", "received_at": "--at"}.get(exc.field, "--" + exc.field.replace("_", "-"))
        _fail(f"{flag}: {str(exc).split(': ', 1)[1]}", as_json)
    store = open_store(db)
    try:
        out = add_complaint(store, c.__dict__, hold_list=HOLD_LIST if c.holds else None, actor=_actor(actor))
        write_head(store)  # anchor the audit chain outside the database
    except ComplaintStoreError as exc:
        _fail(str(exc).replace("debtor_id:", "--debtor:"), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    _print(out)


@complaints.command("list")
@click.option("--status", type=click.Choice(["review", "no_calls", "reviewed"]), default=None)
@click.option("--debtor", "debtor_id", default=None)
@db_option
@json_option("print one JSON object per complaint per line")
def list_cmd(status: str | None, debtor_id: str | None, db: Path | None, as_json: bool) -> None:
    """The complaints, oldest first."""
    from dialer.store.complaints import list_complaints

    store = open_store(db, must_exist=True)
    rows = list_complaints(store, status=status, debtor_id=debtor_id)
    for c in rows:
        if as_json:
            click.echo(json.dumps(c, ensure_ascii=False))
            continue
        rev = c["review"]
        finding = "-" if rev is None else rev["finding"] or "open"
        click.echo(f"{c['id']:5d} {_when(c['received_at'])} {c['channel']:17} {c['category']:19} "
                   f"{c['debtor_id'] or mask_phone(c['phone'] or '')} calls {len(c['calls'])} review {finding}"
                   + (f" ({rev['agent']}, {rev['rule']})" if rev and rev["agent"] else "")
                   + (" HOLD" if c["hold_id"] else ""))
    if not rows and not as_json:
        click.echo("no complaints")


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
@db_option
@by_option
@json_option()
def review_cmd(complaint_id: int, finding: str, call_id: str | None, rule: str | None, note: str | None,
               db: Path | None, actor: str | None, as_json: bool) -> None:
    """Close the QA review of a complaint with its finding; `complaint.reviewed` goes out through the outbox."""
    from dialer.store.complaints import ComplaintStoreError, close_review

    store = open_store(db, must_exist=True)
    try:
        out = close_review(store, complaint_id, finding, reviewer=_actor(actor), call_id=call_id, rule=rule, note=note)
        write_head(store)  # anchor the audit chain outside the database
    except ComplaintStoreError as exc:
        _fail(str(exc).replace("call_id:", "--call:"), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    _print(out)


@complaints.command("release")
@click.argument("complaint_id", type=int)
@click.option("--reason", required=True, help="Why contact may resume (audited).")
@db_option
@by_option
@json_option()
def release_cmd(complaint_id: int, reason: str, db: Path | None, actor: str | None, as_json: bool) -> None:
    """Lift the contact hold a complaint put."""
    from dialer.store.complaints import ComplaintStoreError, release_hold

    store = open_store(db, must_exist=True)
    try:
        out = release_hold(store, complaint_id, by=_actor(actor), reason=reason)
        write_head(store)  # anchor the audit chain outside the database
    except (ComplaintStoreError, ValueError) as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    _print(out)
