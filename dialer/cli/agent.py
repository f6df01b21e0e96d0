"""`dialer agent`: a collector's state (`login | ready | pause | logout NAME`, applied to the queue by
the daemon), their screen pop (`watch NAME`: the debtor's context when a call reaches them, or a preview
offer with the gate's verdict), preview offers (`accept NAME`, `skip NAME --reason`), dispositions
(`dispo NAME --outcome …`) and hand-started wrap-up (`wrapup NAME`).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import click

from dialer.cli.options import at_option, db_option, json_option, open_store, zone_param

POLL_SECONDS = 0.25


@click.group()
def agent() -> None:
    """Collectors: state (login, ready, pause, logout), screen pops (watch), preview offers (accept, skip),
    dispositions (dispo) and wrap-up (wrapup)."""


def known_agents(store: Any) -> set[str]:
    """Collectors the dialer knows: every one with a recorded state, and the running PBX's queue members."""
    from dialer.store.agents import agent_states
    from dialer.telephony.harness import DEFAULT_RUN_DIR
    from dialer.telephony.pbx import PbxConnection

    names = set(agent_states(store))
    try:
        names |= set(PbxConnection.load(DEFAULT_RUN_DIR).members)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    return names


def _set(name: str, state: str, db: Path | None, reason: str | None) -> None:
    from dialer.store.agents import set_agent_state

    store = open_store(db)
    try:
        if reason != "login":
            known = known_agents(store)
            if name not in known:
                raise click.ClickException(
                    f"unknown collector {name!r} (known: {', '.join(sorted(known)) or 'none'}); "
                    f"log in first: dialer agent login {name}")
        set_agent_state(store, name, state, time.time(), reason=reason)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    finally:
        store.close()
    click.echo(json.dumps({"agent": name, "state": state, "reason": reason}))


@agent.command("login")
@click.argument("name")
@db_option
def login(name: str, db: Path | None) -> None:
    """Log collector NAME in, ready for calls."""
    _set(name, "ready", db, "login")


@agent.command("ready")
@click.argument("name")
@db_option
def ready(name: str, db: Path | None) -> None:
    """Collector NAME is ready for the next call (ends a pause)."""
    _set(name, "ready", db, None)


@agent.command("pause")
@click.argument("name")
@click.option("--reason", default="break", show_default=True, help="Why (shown in the queue's pause reason).")
@db_option
def pause(name: str, reason: str, db: Path | None) -> None:
    """Pause collector NAME: no new calls (a call in progress finishes)."""
    _set(name, "paused", db, reason)


@agent.command("logout")
@click.argument("name")
@db_option
def logout(name: str, db: Path | None) -> None:
    """Log collector NAME out: no new calls, not counted as capacity by the pacer."""
    _set(name, "logged_out", db, "logout")


def _offer_action(name: str, db: Path | None, state: str, reason: str | None, as_json: bool) -> None:
    """accept / skip: move the collector's open offer (the daemon places the call on accept)."""
    from dialer.store.preview import open_offer, set_offer_state

    store = open_store(db, must_exist=True)
    try:
        offer = open_offer(store, name)
        if offer is None or offer["state"] != "offered":
            what = f"its offer {offer['id']} is already {offer['state']}" if offer else "no debtor is offered to them"
            raise click.ClickException(f"collector {name!r} has nothing to {'accept' if state == 'accepted' else 'skip'}:"
                                       f" {what} (dialer agent watch {name} shows offers)")
        now = time.time()
        if not set_offer_state(store, offer["id"], state, now, from_states=("offered",), reason=reason, actor=name):
            raise click.ClickException(f"offer {offer['id']} changed meanwhile (expired?); nothing done")
    finally:
        store.close()
    out = {"agent": name, "offer": offer["id"], "debtor_id": offer["debtor_id"], "state": state, "reason": reason}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
    elif state == "accepted":
        click.echo(f"accepted offer {offer['id']} ({offer['debtor_id']}): your phone rings first, then the debtor's")
    else:
        click.echo(f"skipped offer {offer['id']} ({offer['debtor_id']}): not offered again for an hour; reason: {reason}")


@agent.command("accept")
@click.argument("name")
@db_option
@json_option()
def accept(name: str, db: Path | None, as_json: bool) -> None:
    """Accept the debtor offered to collector NAME (preview): the call is placed, your phone first."""
    _offer_action(name, db, "accepted", None, as_json)


@agent.command("skip")
@click.argument("name")
@click.option("--reason", required=True, help="Why the debtor is skipped (kept in the audit log).")
@db_option
@json_option()
def skip(name: str, reason: str, db: Path | None, as_json: bool) -> None:
    """Skip the debtor offered to collector NAME (preview): no call is placed; the next debtor is offered."""
    _offer_action(name, db, "skipped", reason, as_json)


@agent.command("dispo")
@click.argument("name")
@click.option("--outcome", required=True, metavar="OUTCOME",
              help="promise | callback | refusal (refuse) | dispute | hardship | cease | wrong_number | third_party"
                   " | no_contact")
@click.option("--amount", default=None, help="promise: the amount promised (default: the full balance).")
@click.option("--date", "date_text", default=None,
              help="promise: the day to pay by (YYYY-MM-DD); callback: when to call (YYYY-MM-DDTHH:MM, the debtor's"
                   " local time unless an offset is given).")
@click.option("--note", default=None, help="Free text kept with the disposition.")
@at_option("When it is entered (ISO time with UTC offset; default now).")
@db_option
@json_option()
def dispo(name: str, outcome: str, amount: str | None, date_text: str | None, note: str | None, at: Any,
          db: Path | None, as_json: bool) -> None:
    """Record how collector NAME's last call ended: it ends their wrap-up and feeds retries, promises, holds."""
    from dialer.calls.collectors import DispositionError, enter_disposition

    store = open_store(db, must_exist=True)
    try:
        out = enter_disposition(store, name, outcome, at=at.timestamp() if at else time.time(), amount=amount,
                                date_text=date_text, note=note)
    except DispositionError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        extra = f" {out['amount'] or 'full balance'} by {out['date']}" if out["outcome"] == "promise" else (
            f" at {out['date']}" if out["outcome"] == "callback" else "")
        click.echo(f"{name}: call {out['call_id']} ({out['debtor_id']}) -> {out['outcome']}{extra}")


@agent.command("wrapup")
@click.argument("name")
@click.option("--seconds", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Wrap-up lasts until this many seconds from now (extends a running one).")
@at_option("Now (ISO time with UTC offset; default the system clock).")
@db_option
@json_option()
def wrapup(name: str, seconds: float, at: Any, db: Path | None, as_json: bool) -> None:
    """Start or extend collector NAME's wrap-up by hand: no call reaches them until it ends."""
    from dialer.store.dispositions import set_wrapup_until

    now = at.timestamp() if at else time.time()
    store = open_store(db, must_exist=True)
    try:
        set_wrapup_until(store, name, now + seconds, now)
    finally:
        store.close()
    out = {"agent": name, "wrapup_until": now + seconds}
    click.echo(json.dumps(out) if as_json else f"{name}: in wrap-up for {seconds:g} s")


def _money(amount: Any, currency: Any) -> str:
    return f"{amount} {currency}".strip() if amount is not None else "?"


def render_screen_pop(pop: Mapping[str, Any], debtor_zone: Any = None, collector_zone: Any = None) -> str:
    """Human-readable screen pop (phone already masked in the stored context), with the time of the call
    where the debtor is and where the collector is."""
    c = pop.get("context") or {}
    at = float(pop["at"])
    when = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"== call {pop['call_id']} -> {pop['agent']}  {when}"]
    if debtor_zone is not None or collector_zone is not None:
        def show(zone: Any) -> str:
            t = datetime.fromtimestamp(at, zone) if zone is not None else datetime.fromtimestamp(at).astimezone()
            return f"{t.strftime('%a %H:%M')} {getattr(zone, 'key', None) or t.tzname()}"
        lines.append(f"   time     debtor {show(debtor_zone)}  |  you {show(collector_zone)}")
    lines += [
        f"   debtor   {c.get('name') or '?'}  ({c.get('debtor_id') or pop.get('debtor_id')})"
        f"  phone {c.get('phone') or '?'}",
        f"   owes     {_money(c.get('amount_owed'), c.get('currency'))}, "
        f"{c.get('days_past_due', '?')} days past due ({c.get('bucket') or '?'}), "
        f"segment {c.get('segment') or '-'}",
        f"   verified {'yes' if c.get('verified') else 'NO - verify before discussing the debt'}",
    ]
    if c.get("intents"):
        lines.append(f"   intents  {', '.join(str(i) for i in c['intents'])}")
    p = c.get("promise")
    if p:
        amount = p.get("amount") or "full balance"
        lines.append(f"   promise  {amount} by {p.get('due_date')} ({p.get('status', 'open')})")
    pv, gate = c.get("preview"), c.get("gate")
    if pv:
        lines[0] = f"== preview offer {pv.get('offer')} -> {pop['agent']}  {when}  (campaign {pv.get('campaign')})"
        if pv.get("blocked"):
            lines.append(f"   BLOCKED  the gate refused the dial at accept: {pv['blocked']} - no call placed")
        else:
            lines.append(f"   accept   {pv.get('accept')}   skip: {pv.get('skip')}"
                         f"   (expires in {pv.get('expires_in', '?')} s)")
    if gate:
        verdict = "ALLOWED" if gate.get("allowed") else f"BLOCKED {gate.get('rule_id')}"
        lines.append(f"   gate     {verdict}: {gate.get('reason') or ''}".rstrip())
        for zone, t in (gate.get("local_times") or {}).items():
            lines.append(f"            debtor's local time {t[:16].replace('T', ' ')} ({zone})")
        if gate.get("checks"):
            lines.append(f"            checks: {', '.join(gate['checks'])}")
    shown = {"call_id", "debtor_id", "name", "phone", "account_id", "amount_owed", "currency",
             "days_past_due", "bucket", "segment", "verified", "intents", "promise", "preview", "gate"}
    for key in sorted(k for k in c if k not in shown and c[k] not in (None, "", [], {})):
        lines.append(f"   {key:<8} {c[key]}")
    return "\n".join(lines)


@agent.command("watch")
@click.argument("name")
@db_option
@click.option("--once", is_flag=True, help="Exit after the first screen pop.")
@click.option("--timeout", type=float, default=None, help="Stop after S seconds (exit 1 with --once if none came).")
@click.option("--all", "replay", is_flag=True, help="Show this collector's earlier screen pops first.")
@click.option("--tz", "collector_tz", default=None, metavar="ZONE",
              help="The collector's time zone for the time shown (default: this machine's).")
@json_option("One JSON object per screen pop per line.")
def watch(name: str, db: Path | None, once: bool, timeout: float | None, replay: bool, collector_tz: str | None,
          as_json: bool) -> None:
    """Print the debtor's context each time a call reaches collector NAME."""
    from dialer.gate.zones import debtor_zone
    from dialer.store.core import get_debtor, last_screen_pop_id, screen_pops_after
    from dialer.store.preview import pending_pop_id

    czone = zone_param(collector_tz) if collector_tz else None
    store = open_store(db, must_exist=True)

    def zone_of(debtor_id: str) -> Any:
        d = get_debtor(store, debtor_id)
        if d is None:
            return None
        phone = d["phones"][0]["phone"] if d["phones"] else None
        return debtor_zone(phone, d.get("timezone"))

    after = 0 if replay else last_screen_pop_id(store, name)
    pending = pending_pop_id(store, name)
    if not replay and pending is not None:  # a preview offer waiting for this collector is shown first
        after = min(after, pending - 1)
    deadline = time.monotonic() + timeout if timeout is not None else None
    if not as_json:
        click.echo(f"watching for calls to {name} (Ctrl-C to stop)", err=True)
    try:
        while True:
            for pop in screen_pops_after(store, name, after):
                after = pop["id"]
                if as_json:
                    out = {k: pop[k] for k in ("id", "agent", "call_id", "debtor_id", "at")}
                    dz = zone_of(pop["debtor_id"])
                    local = {"debtor_local_time": datetime.fromtimestamp(float(pop["at"]), dz).isoformat()
                             if dz is not None else None,
                             "collector_local_time": (datetime.fromtimestamp(float(pop["at"]), czone) if czone
                                                      else datetime.fromtimestamp(float(pop["at"])).astimezone()).isoformat()}
                    click.echo(json.dumps(out | local | {"context": pop["context"]}, ensure_ascii=False))
                else:
                    click.echo(render_screen_pop(pop, zone_of(pop["debtor_id"]) or timezone.utc, czone))
                if once:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                if once:
                    click.echo(f"no call reached {name} within {timeout:g} s", err=True)
                    raise click.exceptions.Exit(1)
                return
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
