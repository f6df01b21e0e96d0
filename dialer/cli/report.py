"""`dialer report`: contact, promise-to-pay, recovery, abandonment and compliance, per campaign."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dialer.cli.options import db_option, json_option, open_store
from dialer.store import Store, core
from dialer.store import reports as q


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def campaign_report(store: Store, campaign: str, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    f = q.campaign_figures(store, campaign, since, until)
    live = f["answered"] - f["machines"]
    violations = Counter(v["rule"] for js in f.pop("qa_violation_json") for v in json.loads(js))
    scores = f.pop("qa_scores")
    owed = Decimal(f["owed_amount"])
    return {
        "campaign": campaign, **f,
        "contact_rate": _ratio(f["answered"], f["dials"]),
        "right_party_rate": _ratio(f["right_party_contacts"], f["dials"]),
        "ptp_rate": _ratio(f["promises"], f["right_party_contacts"]),
        "promise_kept_rate": _ratio(f["promises_kept"], f["promises"]),
        "recovery_rate": float(Decimal(f["paid_amount"]) / owed) if owed else None,
        "abandon_rate": _ratio(f["abandoned"], live),
        "qa": {"calls_scored": len(scores), "mean_score": round(sum(scores) / len(scores), 1) if scores else None,
               "calls_with_violations": sum(1 for s in scores if s < 100), "violations_by_rule": dict(violations)},
    }


def floor_report(store: Store, campaign: str, until: float | None = None, rules: Any = None) -> dict[str, Any]:
    """The collector floor's figures: the abandon rate over the profile's window (ending at `until`, else the
    later of now and the last attempt) against its limit, the worst rolling hour, and each collector's
    dispositions (`not_entered` included)."""
    import time

    from dialer.gate.account import campaign_profile
    from dialer.gate.rules import DEFAULT_RULES_FILE, load_rules
    from dialer.pacing.floor import abandon_figures, window_start
    from dialer.store.dispositions import answered_calls, dispositions_for_campaign

    if rules is None:
        from common.paths import REPO

        path = DEFAULT_RULES_FILE if DEFAULT_RULES_FILE.exists() else REPO / DEFAULT_RULES_FILE
        rules = load_rules(path)
    ab = campaign_profile(store, rules, campaign).abandon
    end = until if until is not None else max(time.time(), core.latest_attempt_time(store) or 0.0)
    start = window_start(datetime.fromtimestamp(end).astimezone(), ab.window)
    fig = abandon_figures(answered_calls(store, campaign, start, end + 1e-6), ab.window, ab.limit)
    return {"abandon_window": fig.as_dict() | {"since": start, "until": end},
            "collectors": dispositions_for_campaign(store, campaign)}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def print_report(r: dict[str, Any], echo=click.echo) -> None:
    echo(f"campaign {r['campaign']}")
    echo(f"  dials {r['dials']}  answered {r['answered']} ({_pct(r['contact_rate'])})  machines {r['machines']}  "
         f"right-party contacts {r['right_party_contacts']} ({_pct(r['right_party_rate'])})  inbound {r['inbound']}")
    echo(f"  promises {r['promises']} ({_pct(r['ptp_rate'])} of contacts), kept {r['promises_kept']}, "
         f"promised {r['promised_amount']} {r['currency'] or ''}")
    echo(f"  recovered {r['paid_amount']} of {r['owed_amount']} owed ({_pct(r['recovery_rate'])})")
    echo(f"  abandoned {r['abandoned']} ({_pct(r['abandon_rate'])} of live answered)  to collectors {r['to_collector']}")
    blocks = ", ".join(f"{k} {v}" for k, v in sorted(r["gate_blocks"].items())) or "none"
    echo(f"  gate blocks: {blocks}")
    qa = r["qa"]
    rules = ", ".join(f"{k} {v}" for k, v in sorted(qa["violations_by_rule"].items())) or "none"
    echo(f"  QA: {qa['calls_scored']} calls scored, mean {qa['mean_score'] if qa['mean_score'] is not None else '-'}, "
         f"with violations {qa['calls_with_violations']} ({rules})")
    echo(f"  outcomes: {', '.join(f'{k} {v}' for k, v in sorted(r['outcomes'].items())) or '-'}")
    w = r.get("abandon_window")
    if w:
        wh = w["worst_hour"]
        echo(f"  abandon window ({w['window']}): {w['abandoned']} of {w['answered']} answered = {_pct(w['rate'])}"
             f" against limit {_pct(w['limit'])}{'  OVER THE LIMIT' if w['over_limit'] else ''};"
             f" worst rolling hour {_pct(wh['rate'])} ({wh['abandoned']} of {wh['answered']})")
    for agent_name, counts in sorted((r.get("collectors") or {}).items()):
        echo(f"  collector {agent_name}: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")


@click.command()
@db_option
@click.option("--campaign", "campaigns", multiple=True, help="Only these campaigns (default: all).")
@click.option("--since", default=None, help="ISO date/time (with offset) the report starts at.")
@click.option("--until", default=None, help="ISO date/time (with offset) the report ends at.")
@json_option("One JSON object per campaign per line.")
def report(db: Path | None, campaigns: tuple[str, ...], since: str | None, until: str | None, as_json: bool) -> None:
    """Contact, promise-to-pay, recovery, abandonment and compliance figures per campaign."""
    def ts(v: str | None, name: str) -> float | None:
        if v is None:
            return None
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise click.BadParameter(f"not an ISO date/time: {v!r}", param_hint=name) from None
        if dt.tzinfo is None:
            raise click.BadParameter("needs a UTC offset, e.g. 2026-11-23T00:00:00+08:00", param_hint=name)
        return dt.timestamp()

    store = open_store(db, must_exist=True)
    known = [r["name"] for r in core.list_campaigns(store)]
    names = list(campaigns) or known
    for name in names:
        if name not in known:
            raise click.ClickException(f"unknown campaign {name!r}")
        r = campaign_report(store, name, ts(since, "--since"), ts(until, "--until"))
        r.update(floor_report(store, name, ts(until, "--until")))
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            print_report(r)
