"""The options every command shares, written once: `--db`, `--at`, `--json`, and `open_store()`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import click

from common.clock import parse_at
from dialer.store import Store, default_db_path

DB_HELP = "SQLite database (default: $DIALER_DB or var/dialer.db)."

db_option = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=DB_HELP)


def json_option(help: str = "Print one JSON object.") -> Callable[[Any], Any]:
    """`--json` → the `as_json` flag."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def _at(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_at(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def at_option(help: str = "ISO time with UTC offset (default: now).") -> Callable[[Any], Any]:
    """`--at` → `at`, an aware datetime (or None); a time without a UTC offset is a usage error."""
    return click.option("--at", "at", default=None, callback=_at, help=help)


def db_path(db: Path | None) -> Path:
    return Path(db) if db is not None else default_db_path()


def open_store(db: Path | None, *, must_exist: bool = False) -> Store:
    """The store at `--db` (default $DIALER_DB or var/dialer.db). `must_exist` refuses to create one
    where there is none (a command that only reads)."""
    path = db_path(db)
    if must_exist and not path.exists():
        raise click.ClickException(f"no database at {path} (use --db)")
    return Store(path)
