"""`dialer report`: contact, promise-to-pay, recovery, abandonment and compliance, per campaign."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dialer.cli.options import db_option, json_option, open_store, zone_param
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
        "complaints": complaints_section(store, campaign, since, until),
    }


def complaints_section(store: Store, campaign: str, since: float | None, until: float | None) -> dict[str, Any]:
    """Complaints per 10,000 calls for the campaign and each collector; substantiated ones by rule."""
    from dialer.qa.complaints import per_10k
    from dialer.store.complaints import complaint_figures

    import time

    now = time.time()  # overdue as of the report's end, or now when it ends later
    f = complaint_figures(store, campaign, since, until, as_of=min(until, now) if until is not None else now)
    f["per_10k_calls"] = per_10k(f["complaints"], f["calls"])
    for g in f["by_collector"].values():
        g["per_10k_calls"] = per_10k(g["complaints"], g["calls"])
    f["by_rule"] = {rule: {"complaints": n, "per_10k_calls": per_10k(n, f["calls"])}
                    for rule, n in sorted(f["by_rule"].items())}
    return f


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
    start = window_start(datetime.fromtimestamp(end, timezone.utc), ab.window)  # the UTC day, as the pacer counts it
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
    cp = r.get("complaints")
    if cp and cp["complaints"]:
        per = "-" if cp["per_10k_calls"] is None else f"{cp['per_10k_calls']:g}"
        echo(f"  complaints {cp['complaints']} ({per} per 10,000 calls), substantiated {cp['substantiated']}, "
             f"review open {cp['open_reviews']} (overdue {cp['overdue']}), closed late {cp['closed_late']}, "
             f"against the campaign's owner {cp['against_owner']}; by severity: "
             + (", ".join(f"{k} {v}" for k, v in sorted(cp["by_severity"].items())) or "-") + "; by rule: "
             + (", ".join(f"{k} {v['complaints']}" for k, v in cp["by_rule"].items()) or "-")
             + "; by collector (complaints/calls): "
             + (", ".join(f"{k} {v['complaints']}/{v['calls']}" for k, v in sorted(cp["by_collector"].items())) or "-"))
    echo(f"  outcomes: {', '.join(f'{k} {v}' for k, v in sorted(r['outcomes'].items())) or '-'}")
    w = r.get("abandon_window")
    if w:
        wh = w["worst_hour"]
        echo(f"  abandon window ({w['window']}): {w['abandoned']} of {w['answered']} answered = {_pct(w['rate'])}"
             f" against limit {_pct(w['limit'])}{'  OVER THE LIMIT' if w['over_limit'] else ''};"
             f" worst rolling hour {_pct(wh['rate'])} ({wh['abandoned']} of {wh['answered']})")
    for agent_name, counts in sorted((r.get("collectors") or {}).items()):
        echo(f"  collector {agent_name}: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")


def _when(v: str | None, name: str, tz) -> float | None:
    """An ISO date (midnight in the report's zone) or date/time with a UTC offset."""
    if v is None:
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise click.BadParameter(f"not an ISO date or date/time: {v!r}", param_hint=name) from None
    if dt.tzinfo is None:
        if len(v) > 10:
            raise click.BadParameter("a date/time needs a UTC offset, e.g. 2026-11-23T00:00:00+08:00 (or give a "
                                     "date: midnight in --tz)", param_hint=name)
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


@click.command()
@db_option
@click.option("--campaign", "campaigns", multiple=True, help="Only these campaigns (default: all).")
@click.option("--since", default=None, help="ISO date (midnight in --tz) or date/time with offset; default: the first attempt.")
@click.option("--until", default=None, help="ISO date (midnight in --tz, excluded) or date/time with offset; default: now.")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "csv", "jsonl"]), default=None,
              help="By campaign, segment, collector and day: text (default), one self-contained HTML file with "
                   "charts, CSV or JSON lines.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the report here (default: stdout).")
@click.option("--tz", "tz_name", default="UTC", show_default=True, help="Zone the days and hours are counted in.")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=Path("compliance_rules.yaml"),
              show_default=True, help="Rules file the abandon limits come from.")
@json_option("One JSON object per campaign per line (the campaign totals; --format jsonl for every grouping).")
def report(db: Path | None, campaigns: tuple[str, ...], since: str | None, until: str | None, fmt: str | None,
           out: Path | None, tz_name: str, rules_file: Path, as_json: bool) -> None:
    """Contact, promise-to-pay, recovery, abandonment and compliance figures per campaign, segment,
    collector and day."""
    import time

    from dialer.reports import render
    from dialer.reports.report import build_report

    if as_json and fmt:
        raise click.UsageError("--json and --format are alternatives: --json prints the campaign totals, "
                               "--format jsonl every grouping")
    tz = zone_param(tz_name)
    lo, hi = _when(since, "--since", tz), _when(until, "--until", tz)
    if lo is not None and hi is not None and hi <= lo:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    store = open_store(db, must_exist=True)
    known = [r["name"] for r in core.list_campaigns(store)]
    names = list(campaigns) or known
    for name in names:
        if name not in known:
            raise click.ClickException(f"unknown campaign {name!r} (known: {', '.join(known) or 'none'})")
    until_ts = hi  # the abandon window ends here (None: now)

    def totals(name: str) -> dict[str, Any]:
        r = campaign_report(store, name, lo, hi)
        r.update(floor_report(store, name, until_ts))
        return r

    if as_json:
        for name in names:
            click.echo(json.dumps(totals(name), ensure_ascii=False))
        return
    first, last = q.attempt_span(store)
    if lo is None:
        lo = first if first is not None else time.time()
    if hi is None:
        hi = max(time.time(), (last or 0) + 1)
    rep = build_report(store, lo, hi, tz, campaigns=list(campaigns) or None, rules_file=rules_file)
    text = {"html": render.to_html, "csv": render.to_csv, "jsonl": render.to_jsonl}.get(fmt or "text", render.to_text)(rep)
    if out is None:
        if fmt in (None, "text"):
            for name in names:
                print_report(totals(name))
            click.echo()
        click.echo(text, nl=False)
        return
    from common.files import write_private
    write_private(out, text)
    click.echo(f"report written: {out} ({fmt or 'text'}, {rep['attempts']} attempts, "
               f"{rep['since_text']} → {rep['until_text']} {rep['tz']})", err=True)
