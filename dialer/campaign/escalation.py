"""A segment's escalation plan: stages by days past due and outcome history, each one action (an SMS,
letter or legal-review task for the lender's gateway, or a bot or collector call). Typed here, validated by
`campaign/config.py`; `stage_for` is pure: the facts come in as arguments (docs/ESCALATION.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TASK_ACTIONS = ("sms", "letter", "legal_review")  # written to the outbox for the lender's gateway
CALL_ACTIONS = ("bot_call", "collector_call")  # placed through the existing dial path
ACTIONS = TASK_ACTIONS + CALL_ACTIONS
CHANNELS = TASK_ACTIONS  # compliance_rules.yaml `channels:` (voice calls follow `gate:`)
STAGE_KEYS = ("stage", "action", "dpd", "no_contact_attempts", "broken_promise", "template", "every")


@dataclass(frozen=True)
class Stage:
    name: str
    action: str
    dpd: Any = None  # campaign.config.DpdRange, or None = any days past due
    no_contact_attempts: int | None = None
    broken_promise: bool | None = None
    template: str | None = None
    every: int | None = None  # seconds: at most one task of this stage per interval (tasks only)

    @property
    def is_call(self) -> bool:
        return self.action in CALL_ACTIONS

    def matches(self, facts: "Facts") -> bool:
        if self.dpd is not None and not self.dpd.contains(facts.days_past_due):
            return False
        if self.no_contact_attempts is not None and facts.attempts_without_contact < self.no_contact_attempts:
            return False
        if self.broken_promise is not None and facts.broken_promise != self.broken_promise:
            return False
        return True


@dataclass(frozen=True)
class Facts:
    """What a stage is chosen from, as of one moment (the debtor's local day)."""

    days_past_due: int
    attempts_without_contact: int = 0  # call attempts since the last one a person answered
    broken_promise: bool = False  # the debtor's latest promise is broken


def stage_for(plan: tuple[Stage, ...], facts: Facts) -> Stage | None:
    """The debtor's stage: the LAST stage in file order whose conditions all hold (later = further
    escalated); None when none does (the debtor is contacted on no channel)."""
    for stage in reversed(plan):
        if stage.matches(facts):
            return stage
    return None


__all__ = ["ACTIONS", "CALL_ACTIONS", "CHANNELS", "Facts", "STAGE_KEYS", "Stage", "TASK_ACTIONS", "stage_for"]
