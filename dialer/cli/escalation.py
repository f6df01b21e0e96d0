"""`dialer escalation tasks`: the SMS, letter and legal-review tasks the escalation plan asked the gate for —
queued for the lender's gateway (with their outbox event) or blocked (the rule and when it may pass) — and each
debtor's current stage (docs/ESCALATION.md)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from common.log import mask_phone
from dialer.cli.options import db_option, json_option, open_store


@click.group()
def escalation() -> None:
    """The escalation plan's tasks and stages."""


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


@escalation.command("tasks")
@click.option("--debtor", "debtor_id", help="Only this debtor (also prints their current stage).")
@click.option("--status", type=click.Choice(["queued", "blocked"]), help="Only queued or only blocked tasks.")
@click.option("--channel", type=click.Choice(["sms", "letter", "legal_review"]), help="Only tasks of this channel.")
@db_option
@json_option()
def tasks_cmd(debtor_id: str | None, status: str | None, channel: str | None, db: Path | None,
              as_json: bool) -> None:
    """List contact tasks, oldest first."""
    from dialer.store import escalation as esc_store

    store = open_store(db, must_exist=True)
    try:
        rows = esc_store.tasks(store, debtor_id=debtor_id, status=status, channel=channel)
        state = esc_store.get_state(store, debtor_id) if debtor_id else None
    finally:
        store.close()
    if as_json:
        out = {"tasks": [r | {"at": _iso(r["at"]), "next_allowed_at": _iso(r["next_allowed_at"])} for r in rows]}
        if debtor_id:
            out["stage"] = state and {"stage": state["stage"], "action": state["action"], "since": _iso(state["since"])}
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if state:
        click.echo(f"{debtor_id}: stage {state['stage'] or '(none)'} ({state['action'] or 'no contact'})"
                   f" since {_iso(state['since'])}")
    for r in rows:
        what = f"queued event {r['event_id']}" if r["status"] == "queued" else \
            f"blocked {r['rule_id']}: {r['reason']} (next {_iso(r['next_allowed_at']) or 'never by waiting'})"
        click.echo(f"{_iso(r['at'])}  {r['debtor_id']}  {r['channel']:<12} {r['stage']:<16} "
                   f"{mask_phone(r['target']) if r['target'] else '-':<16} {what}")
    if not rows:
        click.echo("no tasks")
