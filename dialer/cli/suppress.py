"""`dialer suppress import|remove|list`: the lender's suppression lists (dnc, attorney, bankruptcy, deceased,
complaint_hold) by phone, debtor or account, with an effective date and a source. The gate blocks with each
list's rule id; `dialer compliance explain` names the list and since when."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dialer.campaign.imports import SUPPRESSION_LIST_NAMES, ImportRejected
from dialer.cli.campaign import _fail, encoding_option
from dialer.cli.options import db_option, json_option, open_store

list_option = click.option("--list", "list_name", required=True, type=click.Choice(SUPPRESSION_LIST_NAMES),
                           help="Which list.")


@click.group()
def suppress() -> None:
    """Suppression lists: bulk import, removal (audited), listing."""


@suppress.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@list_option
@click.option("--source", default=None, help="Source for rows whose source column is empty (e.g. core-banking).")
@click.option("--region", default=None, metavar="CC", help="Region for national phone numbers (CN).")
@encoding_option
@db_option
@json_option()
def import_cmd(file: Path, list_name: str, source: str | None, region: str | None, encoding: str | None,
               db: Path | None, as_json: bool) -> None:
    """Import FILE.csv onto a list, all rows or none. Columns: phone | debtor_id | account_id (one per row),
    effective_date (ISO date, or date-time with offset), source, note."""
    from dialer.campaign.imports import read_suppressions_csv
    from dialer.store.suppression import import_suppressions

    try:
        rows = read_suppressions_csv(file, list_name, source=source, region=region, encoding=encoding)
    except ImportRejected as exc:
        _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
    store = open_store(db)
    try:
        summary = import_suppressions(store, rows, list_name, file=str(file))
    except ImportRejected as exc:
        _fail(str(exc), as_json, errors=[e.__dict__ for e in exc.errors])
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False))
        return
    click.echo(f"{list_name}: {summary['added']} entr{'y' if summary['added'] == 1 else 'ies'} added, "
               f"{summary['already']} already listed, {summary['earlier']} moved earlier ({summary['rows']} rows)")


@suppress.command("remove")
@list_option
@click.option("--phone", default=None, help="The entry's phone number (E.164).")
@click.option("--debtor", "debtor_id", default=None, help="The entry's debtor id.")
@click.option("--account", "account_id", default=None, help="The entry's account id.")
@click.option("--reason", required=True, help="Why the entry is removed (kept in the audit log).")
@click.option("--by", "actor", default="operator", show_default=True, help="Who removes it.")
@db_option
@json_option()
def remove_cmd(list_name: str, phone: str | None, debtor_id: str | None, account_id: str | None, reason: str,
               actor: str, db: Path | None, as_json: bool) -> None:
    """Take one entry off a list (kept as removed; audited with who and why)."""
    from dialer.store.suppression import remove_suppression

    keys = [(k, v) for k, v in (("phone", phone), ("debtor", debtor_id), ("account", account_id)) if v]
    if len(keys) != 1:
        _fail("give exactly one of --phone, --debtor, --account", as_json)
    store = open_store(db, must_exist=True)
    try:
        entry = remove_suppression(store, list_name, keys[0][0], keys[0][1], actor=actor, reason=reason)
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip('"'), as_json)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "removed": entry}, ensure_ascii=False))
        return
    click.echo(f"removed {keys[0][0]} {keys[0][1]} from the {list_name} list (listed since {entry['effective']}, "
               f"source {entry['source']}); audited")


@suppress.command("list")
@click.option("--list", "list_name", default=None, type=click.Choice(SUPPRESSION_LIST_NAMES), help="Only this list.")
@click.option("--key", default=None, help="Only entries for this phone, debtor id or account id.")
@click.option("--removed", is_flag=True, help="Include removed entries.")
@db_option
@json_option()
def list_cmd(list_name: str | None, key: str | None, removed: bool, db: Path | None, as_json: bool) -> None:
    """Entries on the lists (live ones unless --removed)."""
    from common.log import mask_phone
    from dialer.store.suppression import list_suppressions

    store = open_store(db, must_exist=True)
    try:
        rows = list_suppressions(store, list_name=list_name, key=key, include_removed=removed)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "entries": rows}, ensure_ascii=False))
        return
    for r in rows:
        shown = mask_phone(r["key"]) if r["key_kind"] == "phone" else r["key"]
        gone = (f"  REMOVED {datetime.fromtimestamp(r['removed_at'], timezone.utc).isoformat(timespec='seconds')}"
                f" by {r['removed_by']}: {r['removed_reason']}") if r["removed_at"] else ""
        click.echo(f"{r['list']:<15} {r['key_kind']:<8} {shown:<20} since {r['effective']:<25} source {r['source']}{gone}")
    click.echo(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
