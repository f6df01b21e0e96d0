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
    if as_json:
        click.echo(json.dumps({"ok": False, "error": text, **extra}, ensure_ascii=False))
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
    """Check FILE; errors name file, line and field."""
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


@debtors.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--campaign", "campaign_name", required=True, help="Campaign (already loaded) to import into.")
@db_option
@json_option()
def debtors_import_cmd(file: Path, campaign_name: str, db: Path | None, as_json: bool) -> None:
    """Import FILE.csv into a campaign: all rows or none."""
    from dialer.store.core import import_debtors

    try:
        rows = read_debtors_csv(file)
    except ImportRejected as exc:
        _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
    store = open_store(db)
    try:
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


@click.group()
def payments() -> None:
    """Payment CSVs (account_id, paid_at, amount, currency, reference)."""


@payments.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@db_option
@json_option()
def payments_import_cmd(file: Path, db: Path | None, as_json: bool) -> None:
    """Import FILE.csv (all or nothing) and mark promises the payments keep."""
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
    click.echo(f"imported {summary['payments']} payment(s) ({totals}); "
               f"{len(summary['promises_kept'])} promise(s) kept")
