"""`dialer agent login|ready|pause|logout NAME`: a collector's state, applied to the queue by the daemon."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from dialer.store import Store, default_db_path

_DB = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                   help="SQLite database (default: $DIALER_DB or var/dialer.db).")


def _set(name: str, state: str, db: Path | None, reason: str | None) -> None:
    from dialer.store.agents import set_agent_state

    store = Store(db if db is not None else default_db_path())
    try:
        set_agent_state(store, name, state, time.time(), reason=reason)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    finally:
        store.close()
    click.echo(json.dumps({"agent": name, "state": state, "reason": reason}))


@click.command("login")
@click.argument("name")
@_DB
def login(name: str, db: Path | None) -> None:
    """Log collector NAME in, ready for calls."""
    _set(name, "ready", db, "login")


@click.command("ready")
@click.argument("name")
@_DB
def ready(name: str, db: Path | None) -> None:
    """Collector NAME is ready for the next call (ends a pause)."""
    _set(name, "ready", db, None)


@click.command("pause")
@click.argument("name")
@click.option("--reason", default="break", show_default=True, help="Why (shown in the queue's pause reason).")
@_DB
def pause(name: str, reason: str, db: Path | None) -> None:
    """Pause collector NAME: no new calls (a call in progress finishes)."""
    _set(name, "paused", db, reason)


@click.command("logout")
@click.argument("name")
@_DB
def logout(name: str, db: Path | None) -> None:
    """Log collector NAME out: no new calls, not counted as capacity by the pacer."""
    _set(name, "logged_out", db, "logout")
