"""The options every command shares, written once: `--db`, `--at`, `--json`, and `open_store()`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import click

from common.clock import parse_at
from dialer.store import Store, default_db, describe, is_postgres_url

DB_HELP = ("SQLite database file, or a postgresql://user@host/dbname URL for several servers sharing one "
           "database (default: $DIALER_DB or var/dialer.db).")


class DbTarget(click.ParamType):
    """`--db`: a path (SQLite) → Path, or a postgresql:// URL → str."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (Path, str)) and is_postgres_url(str(value)):
            return str(value)
        path = Path(value)
        if path.is_dir():
            self.fail(f"{path} is a directory: give the database file (or a postgresql:// URL)", param, ctx)
        return path


db_option = click.option("--db", "db", type=DbTarget(), default=None, help=DB_HELP)


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


def db_path(db: Path | str | None) -> Path | str:
    """`--db` or the default: a Path (SQLite) or a postgresql:// URL (str)."""
    if db is None:
        return default_db()
    return str(db) if is_postgres_url(str(db)) else Path(db)


def store_exists(target: Path | str) -> bool:
    """A PostgreSQL URL counts as existing (connecting tells); a path must be a file."""
    return is_postgres_url(str(target)) or Path(target).exists()


def open_store(db: Path | str | None, *, must_exist: bool = False) -> Store:
    """The store at `--db` (default $DIALER_DB or var/dialer.db). `must_exist` refuses to create one
    where there is none (a command that only reads)."""
    target = db_path(db)
    if must_exist and not store_exists(target):
        raise click.ClickException(f"no database at {target} (use --db)")
    try:
        return Store(target)
    except Exception as exc:
        if not is_postgres_url(str(target)):
            raise
        raise click.ClickException(f"cannot open the store at {describe(target)}: {exc} "
                                   "(is the PostgreSQL server up, the database created, the URL right?)") from None


def zone_param(name: str, param_hint: str = "--tz") -> Any:
    """A `--tz` value as a ZoneInfo; a name that is not an IANA zone is a usage error naming the option."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"not an IANA time zone: {name!r} (e.g. Asia/Shanghai, UTC)",
                                 param_hint=param_hint) from None
