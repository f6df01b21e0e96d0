"""`dialer status`: the dialer servers sharing this store — last heartbeat, lines in use, leases held."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from dialer.cli.options import at_option, db_option, json_option, open_store


def server_state(row: dict, now: float, dead_after: float) -> str:
    """running, silent (no heartbeat for `dead_after` s: dead or cut off) or stopped (a clean stop)."""
    if row["status"] == "stopped":
        return "stopped"
    return "silent" if now - row["heartbeat_at"] > dead_after else "running"


@click.command()
@db_option
@at_option("The time to judge heartbeats against (ISO with UTC offset; default now).")
@json_option("Print one JSON object: {\"servers\": [...]}.")
def status(db: Path | str | None, at: datetime | None, as_json: bool) -> None:
    """Dialer servers on this store: state, last heartbeat, lines in use, leases held, calls open."""
    from dialer.calls.hopper import DEAD_AFTER
    from dialer.store import servers as servers_store

    now = (at or datetime.now(timezone.utc)).timestamp()
    store = open_store(db, must_exist=True)
    rows = servers_store.servers(store, now)
    out = []
    for r in rows:
        out.append({"server": r["server_id"], "host": r["host"], "pid": r["pid"],
                    "state": server_state(r, now, DEAD_AFTER),
                    "heartbeat_at": datetime.fromtimestamp(r["heartbeat_at"], timezone.utc).isoformat(timespec="seconds"),
                    "heartbeat_age_s": round(now - r["heartbeat_at"], 1),
                    "lines_in_use": r["lines_in_use"], "line_limit": r["line_limit"], "leases": r["leases"],
                    "open_calls": r["open_attempts"]})
    if as_json:
        click.echo(json.dumps({"servers": out}))
        return
    if not out:
        click.echo("no dialer server has run on this store yet")
        return
    head = ("server", "host", "pid", "state", "last heartbeat", "age", "lines", "leases", "open calls")
    table = [head] + [(s["server"], s["host"], str(s["pid"]), s["state"], s["heartbeat_at"],
                       f"{s['heartbeat_age_s']:.0f}s", f"{s['lines_in_use']}/{s['line_limit']}", str(s["leases"]),
                       str(s["open_calls"])) for s in out]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
