"""`dialer db migrate` and `dialer db copy SQLITE_PATH POSTGRES_URL`: the store on either engine."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dialer.cli.options import db_option, db_path, json_option, store_exists
from dialer.store import Store, describe, is_postgres_url


def _open(target: Path | str, what: str, *, migrate: bool = True) -> Store:
    try:
        return Store(target, migrate=migrate)
    except Exception as exc:
        hint = (" (is the server up, the database created — createdb NAME — and the URL right?)"
                if is_postgres_url(str(target)) else "")
        raise click.ClickException(f"{what} {describe(target)}: {exc}{hint}") from None


@click.group()
def db() -> None:
    """The store: SQLite (one server, the default) or PostgreSQL (several servers); docs/STORE.md."""


@db.command()
@db_option
@json_option()
def migrate(db: Path | str | None, as_json: bool) -> None:
    """Apply the migrations this version has and the database lacks (idempotent; one server at a time)."""
    target = db_path(db)
    store = _open(target, "cannot open the store at", migrate=False)
    try:
        before = store.schema_versions() if _has_versions(store) else []
        applied = store.migrate()
        versions = store.schema_versions()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"db": describe(target), "engine": store.engine, "applied": applied,
                               "schema": versions}))
        return
    if applied:
        click.echo(f"{describe(target)} ({store.engine}): applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        click.echo(f"{describe(target)} ({store.engine}): up to date ({len(before)} migrations)")


def _has_versions(store: Store) -> bool:
    try:
        store.schema_versions()
        return True
    except Exception:
        if store.engine == "postgres":
            store.conn.rollback()  # type: ignore[attr-defined]
        return False


@db.command()
@click.argument("sqlite_path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("postgres_url")
@json_option()
def copy(sqlite_path: Path, postgres_url: str, as_json: bool) -> None:
    """Copy a SQLite store into an empty PostgreSQL database, all or nothing (for a site that grows to
    several servers). Stop the daemon first; the SQLite file is only read."""
    from dialer.store.copy import CopyError, copy_sqlite_to_postgres

    if not is_postgres_url(postgres_url):
        raise click.UsageError(f"POSTGRES_URL must start with postgresql://, not {postgres_url!r}")
    if not store_exists(sqlite_path):
        raise click.ClickException(f"no SQLite store at {sqlite_path}")
    src = _open(sqlite_path, "cannot open the SQLite store at")
    dst = _open(postgres_url, "cannot open")

    def progress(table: str, rows: int) -> None:
        if not as_json:
            click.echo(f"  {table}: {rows} rows", err=True)

    try:
        result = copy_sqlite_to_postgres(src, dst, progress)
    except CopyError as exc:
        raise click.ClickException(f"nothing copied: {exc}") from None
    except Exception as exc:
        raise click.ClickException(f"nothing copied (rolled back): {exc}") from None
    finally:
        src.close()
        dst.close()
    if as_json:
        click.echo(json.dumps({"from": str(sqlite_path), "to": describe(postgres_url), **result}))
    else:
        click.echo(f"copied {result['rows']} rows in {len(result['tables'])} tables from {sqlite_path} to "
                   f"{describe(postgres_url)}; point --db / DIALER_DB at the URL from now on")
    sys.stdout.flush()
