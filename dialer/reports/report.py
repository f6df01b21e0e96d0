"""One report over [since, until): the store's rows through figures.build, with the profile limits."""
from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from dialer.gate.rules import load_rules
from dialer.reports import figures
from dialer.store import Store
from dialer.store import reports as q


def abandon_limits(store: Store, rules_file: str | Path) -> dict[str, float]:
    """Campaign → its profile's abandon limit (campaign overrides applied)."""
    rules = load_rules(rules_file)
    return {name: rules.profile_for(profile, name).abandon.limit
            for name, profile in q.campaign_profiles(store).items() if profile in rules.profiles}


def build_report(store: Store, since: float, until: float, tz: tzinfo, *, campaigns: list[str] | None = None,
                 rules_file: str | Path = "compliance_rules.yaml") -> dict[str, Any]:
    attempts = q.attempt_rows(store, since, until, campaigns)
    blocks = q.block_rows(store, since, until, campaigns)
    ceases = [c for c in q.cease_rows(store, since, until) if not campaigns or c["campaign"] in campaigns]
    groups = figures.build(attempts, tz=tz, payments=q.payment_rows(store, campaigns), ceases=ceases,
                           limits=abandon_limits(store, rules_file), since=since, until=until)
    return {
        "since_text": datetime.fromtimestamp(since, tz).isoformat(timespec="minutes"),
        "until_text": datetime.fromtimestamp(until, tz).isoformat(timespec="minutes"),
        "tz": str(tz), "attempts": len(attempts), "groups": groups,
        "by_hour": figures.outcomes_by_hour(attempts, tz), "gate_blocks": figures.blocks_by_rule(blocks),
    }
