"""`dialer webhooks add|remove|status|run`: outcome webhooks from the durable outbox (at least once, HMAC-signed,
the event id as idempotency key)."""
from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import click

from dialer.cli.campaign import _fail
from dialer.cli.options import db_option, json_option, open_store
from dialer.store.outbox import OUTBOX_KINDS


@click.group()
def webhooks() -> None:
    """Outcome webhooks: endpoints, backlog, the delivering process."""


@webhooks.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(OUTBOX_KINDS),
              help="Only these event kinds (repeat; default: every kind).")
@click.option("--from-start", is_flag=True, help="Also deliver every event already in the outbox.")
@db_option
@json_option()
def add_cmd(name: str, url: str, kinds: tuple[str, ...], from_start: bool, db: Path | None, as_json: bool) -> None:
    """Register endpoint NAME at URL (a new one gets a generated signing secret, printed once)."""
    from dialer.store.outbox import add_endpoint

    if not url.startswith(("http://", "https://")):
        _fail(f"URL must start with http:// or https://, got {url!r}", as_json)
    store = open_store(db)
    try:
        ep = add_endpoint(store, name, url, kinds, from_start=from_start)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "name": name, "url": url, "kinds": sorted(kinds), "secret": ep["secret"]}))
        return
    click.echo(f"webhook {name} -> {url} ({', '.join(sorted(kinds)) or 'every kind'})")
    click.echo(f"signing secret (HMAC-SHA256, header X-Dialer-Signature): {ep['secret']}")


@webhooks.command("remove")
@click.argument("name")
@db_option
def remove_cmd(name: str, db: Path | None) -> None:
    """Stop delivering to NAME (its ledger is kept)."""
    from dialer.store.outbox import remove_endpoint

    store = open_store(db, must_exist=True)
    try:
        remove_endpoint(store, name)
    except KeyError as exc:
        _fail(str(exc).strip('"'))
    finally:
        store.close()
    click.echo(f"webhook {name} disabled")


@webhooks.command("status")
@db_option
@json_option()
def status_cmd(db: Path | None, as_json: bool) -> None:
    """The backlog: events in the outbox, and per endpoint pending, retrying, delivered, oldest pending, last error."""
    from dialer.store.outbox import status

    store = open_store(db, must_exist=True)
    try:
        st = status(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False))
        return
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(st["by_kind"].items())) or "none"
    click.echo(f"outbox: {st['outbox_events']} event(s) ({kinds})")
    if not st["endpoints"]:
        click.echo("no webhook endpoints (dialer webhooks add NAME URL)")
    for e in st["endpoints"]:
        age = f", oldest pending {e['oldest_pending_age_s']:.0f}s" if e["oldest_pending_age_s"] is not None else ""
        err = f", last error: {e['last_error']}" if e["last_error"] else ""
        click.echo(f"{e['endpoint']:<16} {'active' if e['active'] else 'disabled':<8} pending {e['pending']} "
                   f"(retrying {e['retrying']}), delivered {e['delivered']}{age}{err}  {e['url']}")


@webhooks.command("run")
@click.option("--until-idle", is_flag=True, help="Exit when every event is delivered.")
@click.option("--max-seconds", type=float, default=None, help="Stop after this long.")
@click.option("--max-backoff", type=float, default=300.0, show_default=True, help="Longest wait between retries (s).")
@click.option("--base-backoff", type=float, default=1.0, show_default=True, help="First retry after (s).")
@db_option
@json_option("print the run's counts as one JSON object")
def run_cmd(until_idle: bool, max_seconds: float | None, max_backoff: float, base_backoff: float, db: Path | None,
            as_json: bool) -> None:
    """Deliver the outbox to every endpoint until stopped (SIGTERM/SIGINT), at least once; safe to kill."""
    from dialer.api.webhooks import Deliverer

    store = open_store(db)

    async def main() -> dict[str, int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if max_seconds is not None:
            loop.call_later(max_seconds, stop.set)
        d = Deliverer(store, base_backoff=base_backoff, max_backoff=max_backoff)
        st = await d.run(stop, until_idle=until_idle)
        return {"delivered": st.delivered, "failed_attempts": st.failed}

    try:
        out = asyncio.run(main())
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **out}))
    else:
        click.echo(f"delivered {out['delivered']} event(s); {out['failed_attempts']} failed attempt(s) to retry")
