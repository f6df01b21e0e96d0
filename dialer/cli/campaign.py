"""`dialer campaign validate|load|list`, `dialer debtors import`, `dialer payments import`: thin click layer.

Bad input exits with code 2 and the error (file, line/row, field/column) on stderr; nothing is half-loaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import click

from common.yamlfile import ConfigError
from dialer.campaign.config import Campaign, load_campaign
from dialer.campaign.imports import ImportRejected, read_debtors_csv, read_payments_csv
from dialer.cli.options import db_option, json_option, open_store

scripts_option = click.option("--scripts-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                              help="Where script ids resolve (default: campaigns/scripts).")
rules_option = click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="compliance_rules.yaml whose profiles are allowed.")


def _fail(text: str, as_json: bool = False, **extra: Any) -> NoReturn:
    """One error, printed once: as a JSON object on stdout with --json, else as text on stderr."""
    if as_json:
        click.echo(json.dumps({"ok": False, "error": text, **extra}, ensure_ascii=False))
    else:
        click.echo(f"error: {text}", err=True)
    raise click.exceptions.Exit(2)


def _load(path: Path, scripts_dir: Path | None, rules_file: Path | None, as_json: bool) -> Campaign:
    try:
        return load_campaign(path, scripts_dir=scripts_dir, rules_file=rules_file)
    except ConfigError as exc:
        _fail(str(exc), as_json, where=exc.as_dict())


def _summary(c: Campaign) -> dict[str, Any]:
    return {
        "ok": True, "name": c.name, "file": c.file, "profile": c.profile, "locale": c.locale,
        "dial_mode": c.dial_mode, "line_limit": c.line_limit,
        "segments": [{"name": s.name, "dpd": s.dpd.text, "customer_types": list(s.customer_types),
                      "propensity": s.propensity, "script": s.script,
                      "dial_mode": c.dial_mode_for(s)} for s in c.segments],
    }


def _print_summary(c: Campaign) -> None:
    click.echo(f"{c.name}: profile {c.profile}, {c.locale}, {c.dial_mode} up to {c.line_limit} lines, "
               f"{len(c.segments)} segment(s)")
    for s in c.segments:
        click.echo(f"  {s.name:<16} dpd {s.dpd.text:<6} {','.join(s.customer_types):<20} "
                   f"band {s.propensity:<4} script {s.script}")


@click.group()
def campaign() -> None:
    """Campaign files: validate, load into the store, list."""


@campaign.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@scripts_option
@rules_option
@json_option()
def validate_cmd(file: Path, scripts_dir: Path | None, rules_file: Path | None, as_json: bool) -> None:
    """Check FILE; every error is reported, each naming file, line and field."""
    from dialer.campaign.config import campaign_errors

    errors = sorted(campaign_errors(file, scripts_dir=scripts_dir, rules_file=rules_file), key=lambda e: e.line or 0)
    if len(errors) > 1:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": f"{len(errors)} errors in {file}",
                                   "errors": [e.as_dict() for e in errors]}, ensure_ascii=False))
        else:
            click.echo(f"error: {len(errors)} errors in {file}:", err=True)
            for e in errors:
                click.echo(f"  {e}", err=True)
        raise click.exceptions.Exit(2)
    c = _load(file, scripts_dir, rules_file, as_json)
    if as_json:
        click.echo(json.dumps(_summary(c), ensure_ascii=False))
    else:
        click.echo(f"ok: {file}")
        _print_summary(c)


@campaign.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@db_option
@scripts_option
@rules_option
@json_option()
def load_cmd(file: Path, db: Path | None, scripts_dir: Path | None, rules_file: Path | None, as_json: bool) -> None:
    """Validate FILE and store it (replacing a campaign of the same name)."""
    from dialer.store.core import upsert_campaign

    c = _load(file, scripts_dir, rules_file, as_json)
    store = open_store(db)
    try:
        upsert_campaign(store, c)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(_summary(c), ensure_ascii=False))
    else:
        click.echo(f"loaded {c.name} from {file}")


@campaign.command("list")
@db_option
@json_option()
def list_cmd(db: Path | None, as_json: bool) -> None:
    """Campaigns in the store, with their debtor counts."""
    from dialer.store.core import list_campaigns

    store = open_store(db)
    try:
        rows = list_campaigns(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no campaigns loaded")
    for r in rows:
        click.echo(f"{r['name']:<20} {r['profile']:<3} {r['locale']:<6} {r['dial_mode']:<12} "
                   f"lines {r['line_limit']:<3} {r['status']:<7} debtors {r['debtors']} ({r['active']} active)")


@click.group()
def debtors() -> None:
    """Debtor CSVs (columns: see docs/CONTRACTS.md)."""


encoding_option = click.option(
    "--encoding", default=None, metavar="NAME",
    help="The CSV's text encoding when it is not UTF-8 (gbk, gb18030: what Excel on Chinese Windows saves).")


@debtors.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--campaign", "campaign_name", required=True, help="Campaign (already loaded) to import into.")
@encoding_option
@db_option
@json_option()
def debtors_import_cmd(file: Path, campaign_name: str, encoding: str | None, db: Path | None, as_json: bool) -> None:
    """Import FILE.csv into a campaign: all rows or none. National numbers (13800138000) are read in the
    campaign's default_region; a phone list that changed replaces the old one (marks of removed numbers
    stay in their history)."""
    from dialer.store.core import get_campaign, import_debtors

    store = open_store(db)
    try:
        camp = get_campaign(store, campaign_name)
        if camp is None:
            _fail(f"unknown campaign {campaign_name!r} (load it first: dialer campaign load FILE)", as_json)
        try:
            rows = read_debtors_csv(file, region=camp.default_region, encoding=encoding)
            summary = import_debtors(store, rows, campaign_name)
        except ImportRejected as exc:
            _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
        except ValueError as exc:
            _fail(str(exc), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False))
        return
    click.echo(f"imported {summary['rows']} row(s): {summary['debtors']} debtor(s) into {summary['campaign']} "
               f"({summary['new']} new, {summary['updated']} updated)")
    if summary["no_segment"]:
        click.echo(f"warning: {len(summary['no_segment'])} debtor(s) match no segment and will not be dialled",
                   err=True)


def _when(ts: float | None) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else "-"


def phone_status_line(p: dict[str, Any]) -> str:
    """'unallocated since 2026-12-01T02:00:03+00:00 (call c-…)' — how a phone's status reads everywhere."""
    if p.get("status", "ok") == "ok" and not p.get("status_at"):
        return "ok"
    by = f"call {p['status_call']}" if p.get("status_call") else (p.get("status_actor") or "-")
    return f"{p['status']} since {_when(p.get('status_at'))} ({by})"


@debtors.command("phone-status")
@click.argument("number")
@click.option("--reset", is_flag=True, help="Put the number back to ok (audited): it was wrongly marked, or fixed.")
@click.option("--reason", default=None, help="Why (kept in the audit log and the number's history).")
@click.option("--region", default=None, metavar="CC",
              help="Region for a national NUMBER (13800138000 with CN); default: E.164 required.")
@db_option
@json_option()
def phone_status_cmd(number: str, reset: bool, reason: str | None, region: str | None, db: Path | None,
                     as_json: bool) -> None:
    """Show a number's status (when, by which call) and its history; --reset makes it callable again."""
    from dialer.campaign.imports import parse_phone
    from dialer.store import core

    try:
        phone = parse_phone(number, region)
    except ValueError as exc:
        _fail(str(exc), as_json)
    store = open_store(db, must_exist=True)
    try:
        current = core.phone_statuses(store, phone=phone)
        if not current:
            _fail(f"no debtor has the number {number}", as_json)
        changed = core.reset_phone_status(store, phone, reason=reason) if reset else []
        current = core.phone_statuses(store, phone=phone)
        history = core.phone_status_history(store, phone=phone)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "phone": phone, "reset": changed, "current": current,
                               "history": history}, ensure_ascii=False))
        return
    for c in changed:
        click.echo(f"reset {phone} for debtor {c['debtor_id']}: {c['previous']} -> ok")
    if reset and not changed:
        click.echo(f"{phone} was not marked: nothing to reset")
    for p in current:
        click.echo(f"{phone}  debtor {p['debtor_id']}  {phone_status_line(p)}")
    for h in history:
        by = f"call {h['call_id']}" if h["call_id"] else h["actor"]
        why = f"  ({h['reason']})" if h["reason"] else ""
        click.echo(f"  {_when(h['at'])}  {h['previous'] or '-'} -> {h['status']}  by {by}{why}")


@debtors.command("show")
@click.argument("debtor_id")
@db_option
@json_option()
def debtors_show_cmd(debtor_id: str, db: Path | None, as_json: bool) -> None:
    """A debtor's record and history: accounts, numbers with their status (when, by which call), calls."""
    from dialer.store import core

    store = open_store(db, must_exist=True)
    try:
        d = core.get_debtor(store, debtor_id)
        if d is None:
            _fail(f"no debtor {debtor_id!r} in {store.path}", as_json)
        history = core.phone_status_history(store, debtor_id=debtor_id)
        calls = core.attempts_for_debtor(store, debtor_id)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **d, "phone_history": history, "calls": calls},
                              ensure_ascii=False, default=str))
        return
    click.echo(f"{d['debtor_id']}  {d['name']}  campaign {d['campaign']}  segment {d['segment'] or '-'}  "
               f"status {d['status']}")
    for a in d["accounts"]:
        click.echo(f"  account {a['account_id']}: {a['amount_owed']} {a['currency']}, due {a['due_date'] or '-'}, "
                   f"{a['days_past_due']} days past due at import")
    for p in d["phones"]:
        click.echo(f"  phone {p['phone']} (rank {p['rank']}): {phone_status_line(p)}")
    if history:
        click.echo("  number history:")
        for h in history:
            by = f"call {h['call_id']}" if h["call_id"] else h["actor"]
            click.echo(f"    {_when(h['at'])}  {h['phone']}  {h['previous'] or '-'} -> {h['status']}  by {by}")
    click.echo(f"  calls: {len(calls)}")
    for c in calls:
        click.echo(f"    {_when(c['placed_at'])}  {c['id']}  {c['phone']}  {c['outcome'] or c['state']}"
                   f"  {c['disposition'] or ''}")


@click.group()
def payments() -> None:
    """Payment CSVs (account_id, paid_at, amount, currency, reference)."""


@payments.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@db_option
@json_option()
def payments_import_cmd(file: Path, db: Path | None, as_json: bool) -> None:
    """Import FILE.csv (all or nothing): balances fall by each payment in the same transaction (an account at 0
    is no longer dialled), a negative amount with an earlier payment's reference reverses it, and promises
    the payments keep are marked."""
    from dialer.store.core import import_payments

    try:
        rows = read_payments_csv(file)
    except ImportRejected as exc:
        _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
    store = open_store(db)
    try:
        summary = import_payments(store, rows)
    except ImportRejected as exc:
        _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False))
        return
    totals = ", ".join(f"{v} {k}" for k, v in summary["totals"].items()) or "nothing"
    click.echo(f"imported {summary['payments']} payment(s) and {summary.get('reversals', 0)} reversal(s) ({totals}); "
               f"{len(summary['promises_kept'])} promise(s) kept")
    if summary.get("paid_in_full"):
        click.echo(f"paid in full (no longer dialled): {', '.join(summary['paid_in_full'])}")
    if summary.get("restored"):
        click.echo(f"balance restored by a reversal (dialled again): {', '.join(summary['restored'])}")


@payments.command("settle")
@click.option("--today", default=None, help="The date promises are judged on (ISO; default: today, UTC).")
@db_option
@json_option()
def payments_settle_cmd(today: str | None, db: Path | None, as_json: bool) -> None:
    """Nightly: judge every open promise by the payments against it — kept, partly kept (something paid by the
    due date) or broken (nothing)."""
    from datetime import date, datetime, timezone

    from dialer.store.core import settle_promises

    try:
        day = date.fromisoformat(today) if today else datetime.now(timezone.utc).date()
    except ValueError:
        _fail(f"--today {today!r} is not an ISO date (YYYY-MM-DD)", as_json)
    store = open_store(db, must_exist=True)
    try:
        out = settle_promises(store, day)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "today": day.isoformat(), **out}))
        return
    click.echo(f"promises on {day.isoformat()}: {len(out['kept'])} kept, {len(out.get('partly_kept', []))} partly kept, "
               f"{len(out['broken'])} broken")
