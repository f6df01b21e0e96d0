"""`dialer recordings list|seal|prune|play|export`: the PBX's per-leg call recordings (docs/RECORDINGS.md)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import click

from dialer.cli.options import at_option, db_option, json_option, open_store
from dialer.cli.qa import _actor, _rules, by_option, rules_option

run_dir_option = click.option("--run-dir", "run_dir", type=click.Path(file_okay=False, path_type=Path),
                              default=Path("var/run"), show_default=True,
                              help="the PBX's run directory (recordings are under <run-dir>/pbx/rec)")


def _ts(at: datetime | None) -> float:
    return at.timestamp() if at is not None else time.time()


def _day(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else "-"


@click.group()
def recordings() -> None:
    """Every call recorded at the PBX, one file per leg, hashed into the audit log at hang-up."""


@recordings.command("list")
@click.option("--call", "call_id", default=None, help="only this call")
@click.option("--pruned", is_flag=True, help="include pruned legs")
@click.option("--limit", type=int, default=200, show_default=True, help="show at most this many legs")
@db_option
@json_option("one JSON object per leg per line")
def list_(call_id: str | None, pruned: bool, limit: int, db: Path | None, as_json: bool) -> None:
    """List recorded legs: call, leg, seconds, campaign, debtor, collector, start, SHA-256."""
    from dialer.store import recordings as rec_store

    store = open_store(db, must_exist=True)
    rows = (rec_store.recordings_for(store, call_id) if call_id
            else rec_store.list_recordings(store, include_pruned=pruned, limit=limit))
    if not rows:
        click.echo("no recordings" + (f" for call {call_id}" if call_id else ""), err=not as_json)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            state = f"pruned {_day(r['pruned_at'])}" if r["pruned_at"] else r["sha256"][:12]
            click.echo(f"{r['call_id']}  {r['leg']:<16} {r['seconds']:7.1f}s  {r['campaign'] or '-'}  "
                       f"collector={r['agent'] or '-'}  started {_day(r['started_at'])}  {state}")


@recordings.command()
@run_dir_option
@db_option
@at_option()
@json_option()
def seal(run_dir: Path, db: Path | None, at: datetime | None, as_json: bool) -> None:
    """Hash the closed files of ended calls that were never sealed (after a daemon crash) into the audit log."""
    from dialer.qa.recordings import seal_pending

    store = open_store(db, must_exist=True)
    done = seal_pending(store, run_dir / "pbx" / "rec", at=_ts(at), actor="operator")
    if as_json:
        click.echo(json.dumps({"sealed": done}))
        return
    click.echo(f"sealed {sum(len(v) for v in done.values())} files of {len(done)} calls")


@recordings.command()
@click.option("--dry-run", is_flag=True, help="only list what retention lets go")
@rules_option
@db_option
@at_option("the time retention is counted to (ISO with UTC offset; default now)")
@by_option
@json_option()
def prune(dry_run: bool, rules_file: Path, db: Path | None, at: datetime | None, actor: str | None,
          as_json: bool) -> None:
    """Delete the recordings their profile's retention no longer covers; each deletion is audited first."""
    from dialer.qa.recordings import prune as run_prune

    ruleset = _rules(rules_file)
    store = open_store(db, must_exist=True)
    pruned = run_prune(store, lambda p: ruleset.for_jurisdiction(p).retention_days, _ts(at), actor=_actor(actor),
                       dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "pruned": [
            {"call_id": r["call_id"], "leg": r["leg"], "path": r["path"], "retention_days": r["retention_days"]}
            for r in pruned]}))
        return
    verb = "would prune" if dry_run else "pruned"
    for r in pruned:
        click.echo(f"{verb} {r['call_id']} {r['leg']} (started {_day(r['started_at'])}, "
                   f"retention {r['retention_days']} days)")
    click.echo(f"{verb} {len(pruned)} files; younger recordings kept")


def _player() -> list[str] | None:
    for cmd in (["aplay", "-q"], ["paplay"], ["play", "-q"]):
        if shutil.which(cmd[0]):
            return cmd
    return None


@recordings.command()
@click.argument("call_id")
@click.option("--leg", default="mix", show_default=True, help="callee | heard | mix | collector | collector-heard | collector-mix")
@db_option
@by_option
def play(call_id: str, leg: str, db: Path | None, actor: str | None) -> None:
    """Play one leg of a call (audited: who, when, which call)."""
    from dialer.qa.recordings import RecordingError, play_leg

    try:
        path = play_leg(open_store(db, must_exist=True), call_id, leg, actor=_actor(actor))
    except RecordingError as exc:
        raise click.ClickException(str(exc)) from None
    player = _player()
    if player is None:
        click.echo(f"no audio player (aplay, paplay, play) on this machine; the file is {path}")
        return
    subprocess.run([*player, str(path)], check=False)


@recordings.command()
@click.argument("call_id")
@click.option("--leg", default="mix", show_default=True, help="callee | heard | mix | collector | collector-heard | collector-mix")
@click.option("--to", "to", type=click.Path(path_type=Path), required=True, help="file or directory")
@db_option
@by_option
def export(call_id: str, leg: str, to: Path, db: Path | None, actor: str | None) -> None:
    """Copy one leg of a call out (audited: who, when, which call, where)."""
    from dialer.qa.recordings import RecordingError, export_leg

    try:
        out = export_leg(open_store(db, must_exist=True), call_id, leg, to, actor=_actor(actor))
    except RecordingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported {call_id} {leg} to {out} (audited)")
