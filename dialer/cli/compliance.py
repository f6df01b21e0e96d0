"""`dialer compliance`: explain why a debtor may or may not be called, and validate rules files."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from common.log import mask_phone
from common.yamlfile import ConfigError
from dialer.cli.options import at_option, db_option, json_option, open_store
from dialer.gate.decide import Attempt, Decision, decide
from dialer.gate.rules import DEFAULT_RULES_FILE, SUPPRESSION_LISTS, RulesError, load_rules


@click.group()
def compliance() -> None:
    """Compliance gate: explain decisions, validate rules files."""


@compliance.command("check-rules")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option("print one JSON object")
def check_rules(file: Path, as_json: bool) -> None:
    """Validate a rules FILE; every problem as file:line: field: message (exit 2 on errors)."""
    from dialer.qa.rules import QAConfigError, qa_rules

    try:
        rules = load_rules(file)
        qa_rules(rules)  # everything the daemon loads: the QA parts too
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, (RulesError, QAConfigError)) else [exc]
        if as_json:
            click.echo(json.dumps({"file": str(file), "ok": False, "errors": [e.as_dict() | {"text": ConfigError.render(e)}
                                                                                 for e in errors]}, ensure_ascii=False))
        else:
            for e in errors:
                click.echo(ConfigError.render(e), err=True)
            click.echo(f"{len(errors)} error(s) in {file}", err=True)
        sys.exit(2)
    summary = {"file": str(file), "ok": True, "errors": [], "default_profile": rules.default_profile,
               "profiles": sorted(rules.profiles), "campaign_overrides": sorted(rules.override_raw)}
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        click.echo(f"{file}: ok — profiles {', '.join(summary['profiles'])} (default {rules.default_profile})"
                   + (f", overrides for {', '.join(summary['campaign_overrides'])}" if summary["campaign_overrides"] else ""))


@compliance.command()
@click.option("--debtor", "debtor_id", required=True, help="debtor id")
@at_option()
@db_option
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_RULES_FILE, show_default=True,
              help="Compliance rules file (gate rules per profile).")
@click.option("--phone", default=None, help="explain this number only (default: each of the debtor's numbers)")
@json_option("print one JSON object")
def explain(debtor_id: str, at: datetime | None, db: Path | None, rules_file: Path, phone: str | None, as_json: bool) -> None:
    """Every gate rule for a debtor: pass/fail and why, candidate zones and local times, next allowed time."""
    from dialer.gate.account import campaign_profile, load_history
    from dialer.store import core
    from dialer.store.gate import gate_blocks

    now = at or datetime.now(timezone.utc)
    try:
        rules = load_rules(rules_file)
    except ConfigError as exc:
        raise click.ClickException(f"invalid rules file:\n{exc.render()}") from None
    store = open_store(db, must_exist=True)
    try:
        row = core.get_debtor(store, debtor_id)
        if row is None:
            raise click.ClickException(f"no debtor {debtor_id!r} in {store.path}")
        campaign = row["campaign"]
        profile = campaign_profile(store, rules, campaign)
        history = load_history(store, debtor_id, now, lookback_seconds=profile.gate.lookback_seconds,
                               extra_phones=(phone,) if phone else ())
        from decimal import Decimal

        owing = [a for a in row["accounts"] if Decimal(a["amount_owed"]) > 0] or row["accounts"]
        account = owing[0]["account_id"] if owing else None  # the most overdue with a balance
        phones = [phone] if phone else list(history.phones)
        decisions = [decide(Attempt(debtor_id, p, account, campaign), history, profile, now) for p in phones]
        blocks = gate_blocks(store, debtor_id=debtor_id, limit=5)
    finally:
        store.close()
    from dialer.cli.campaign import phone_status_line

    status_of = {p["phone"]: p for p in row["phones"]}
    dead = {p for p, st in status_of.items() if st["status"] != "ok"}
    allowed = [d for d in decisions if d.allowed and d.phone not in dead]
    nexts = [d.next_allowed_at for d in decisions if d.next_allowed_at is not None and d.phone not in dead]
    overall_next = now if allowed else (min(nexts) if nexts else None)
    out: dict[str, Any] = {
        "debtor_id": debtor_id, "campaign": campaign, "profile": profile.name, "status": row["status"],
        "record_zone": row["timezone"], "at": now.isoformat(), "allowed": bool(allowed),
        "next_allowed_at": overall_next.isoformat() if overall_next else None,
        "attempts_in_history": len(history.attempts),
        "numbers": [dict(_number_json(d), phone_status=status_of.get(d.phone, {}).get("status", "ok"),
                         phone_status_at=_iso(status_of.get(d.phone, {}).get("status_at")),
                         phone_status_call=status_of.get(d.phone, {}).get("status_call"))
                    for d in decisions],
        "suppressions": [{"list": x.list, "rule_id": SUPPRESSION_LISTS[x.list], "by": x.key_kind,
                          "key": mask_phone(x.key) if x.key_kind == "phone" else x.key, "since": x.since,
                          "in_force": x.effective_at <= now.timestamp(), "source": x.source}
                         for x in history.suppressions],
        "recent_blocks": [{"at": _iso(b["at"]), "rule_id": b["rule_id"], "reason": b["reason"],
                           "next_allowed_at": _iso(b["next_allowed_at"])} for b in blocks],
    }
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"debtor {debtor_id}  campaign {campaign}  profile {profile.name}  status {row['status']}  at {now.isoformat()}")
    click.echo(f"record zone: {row['timezone'] or '-'}   attempts in history: {len(history.attempts)}")
    for x in out["suppressions"]:
        click.echo(f"suppression: on the {x['list']} list ({x['rule_id']}) by {x['by']} {x['key']} since {x['since']}"
                   f"{'' if x['in_force'] else ' (not yet in force)'}, source {x['source']}")
    if not decisions:
        click.echo("the debtor has no phone numbers")
    for d, nj in zip(decisions, out["numbers"]):
        click.echo("")
        st = status_of.get(d.phone)
        if d.phone in dead and st is not None:
            verdict = f"NOT DIALLED: number {phone_status_line(st)}"
            if d.allowed:
                verdict += "; the gate would allow it (reset: dialer debtors phone-status NUMBER --reset)"
        else:
            verdict = "ALLOWED" if d.allowed else f"BLOCKED by {d.rule_id}"
        click.echo(f"number {nj['phone']}: {verdict}")
        for z, lt in d.local_times().items():
            click.echo(f"  zone {z:<28} local {lt}")
        for c in d.checks:
            mark = "pass" if c.passed else "FAIL"
            extra = f"  (passes from {_show(c.next_ok_at, d)})" if not c.passed and c.next_ok_at else ""
            click.echo(f"  [{mark}] {c.rule_id:<26} {c.why}{extra}")
        if not d.allowed:
            click.echo(f"  next allowed: {_show(d.next_allowed_at, d) if d.next_allowed_at else _never(d)}")
    click.echo("")
    click.echo(f"overall: {'may be called now' if allowed else 'not now'}; next allowed time: "
               f"{_show(overall_next, decisions[0]) if overall_next else 'none found'}"
               + ("  (every number is marked; see above)" if decisions and all(d.phone in dead for d in decisions)
                  else ""))
    if blocks:
        click.echo("recent blocks:")
        for b in out["recent_blocks"]:
            click.echo(f"  {b['at']}  {b['rule_id']:<24} {b['reason']}")


def _show(dt: datetime, d: Decision) -> str:
    """A time in the debtor's first candidate zone (what an operator thinks in), with its offset."""
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo(d.zones[0])).isoformat() if d.zones else dt.isoformat()


def _never(d: Decision) -> str:
    if d.permanent:
        return "never by waiting (needs a change: request withdrawn, number fixed, ...)"
    return "none within the search horizon (the candidate zones' allowed hours never meet); rechecked later"


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts is not None else None


def _number_json(d: Decision) -> dict[str, Any]:
    j = d.as_dict()
    j["phone"] = mask_phone(d.phone)
    return j
