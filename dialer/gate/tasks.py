"""take_task: the only way an escalation task (SMS, letter, legal review) reaches the lender's gateway. In ONE
transaction (locked on the debtor, as `take_attempt`) it loads the debtor's history with that channel's earlier
tasks in place of calls, asks the same pure `decide()` with the channel's rules (its window in the debtor's
local time, its caps; cease, do-not-call, suppression lists and paid-in-full as for calls), and writes the task:
queued with its outbox event, or blocked with the rule id. The caps count the queued tasks."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping

from common.log import log_event
from dialer.gate.account import campaign_profile, load_history
from dialer.gate.decide import Attempt, Decision, PastAttempt, decide
from dialer.gate.rules import Rules
from dialer.store import Store
from dialer.store import escalation as esc_store
from dialer.store.outbox import outbox_add

log = logging.getLogger("dialer.gate.tasks")

OUTBOX_KIND = "contact_task"
NO_RULES = "channel.rules"  # the profile has no rules for the channel: nothing is sent


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    channel: str
    decision: Decision
    event_id: str | None = None

    @property
    def queued(self) -> bool:
        return self.decision.allowed


def take_task(store: Store, *, debtor_id: str, account_id: str | None, campaign: str, segment: str | None,
              stage: str, channel: str, to: str | None, rules: Rules, now: datetime,
              payload: Mapping[str, Any] | None = None) -> TaskResult:
    """Decide and account for one task in one transaction; `to` is the number an SMS goes to (None for a
    letter or a legal review)."""
    t = now.timestamp()
    task_id = f"task-{uuid.uuid4().hex[:16]}"
    event_id = None
    with store.transaction(lock=f"debtor:{debtor_id}") as conn:
        profile = campaign_profile(conn, rules, campaign)
        ch = profile.channels.get(channel)
        attempt = Attempt(debtor_id, to or "", account_id, campaign)
        if ch is None:
            d = Decision(False, NO_RULES, f"profile {profile.name} has no rules for the {channel} channel"
                         " (compliance_rules.yaml channels:)", None, (), (), now, to)
        else:
            calls = load_history(conn, debtor_id, t, lookback_seconds=ch.lookback_seconds,
                                 extra_phones=(to,) if to else ())
            past = tuple(PastAttempt(placed_at=at, phone=target or "", account_id=acct, outcome="task")
                         for at, target, acct in esc_store.queued_tasks(conn, debtor_id, channel,
                                                                        t - ch.lookback_seconds))
            # the channel's own tasks are what its caps count; hours to avoid are about calls, except by SMS
            history = replace(calls, attempts=past, inconvenient=calls.inconvenient if channel == "sms" else ())
            d = decide(attempt, history, ch.gate, now)
        if d.allowed:
            body = dict(payload or {}) | {"task_id": task_id, "channel": channel, "debtor_id": debtor_id,
                                          "account_id": account_id, "campaign": campaign, "segment": segment,
                                          "stage": stage, "to": to, "at": now.isoformat()}
            event_id = outbox_add(conn, OUTBOX_KIND, body, subject=debtor_id, at=t)
            esc_store.insert_task(conn, task_id=task_id, debtor_id=debtor_id, account_id=account_id,
                                  campaign=campaign, segment=segment, stage=stage, channel=channel, target=to, at=t,
                                  status="queued", event_id=event_id)
        else:
            esc_store.insert_task(conn, task_id=task_id, debtor_id=debtor_id, account_id=account_id,
                                  campaign=campaign, segment=segment, stage=stage, channel=channel, target=to, at=t,
                                  status="blocked", rule_id=d.rule_id, reason=d.reason,
                                  next_allowed_at=d.next_allowed_at.timestamp() if d.next_allowed_at else None)
    log_event(log, "task.queued" if d.allowed else "task.blocked", task=task_id, debtor_id=debtor_id,
              channel=channel, stage=stage, phone=to, rule=d.rule_id,
              next=d.next_allowed_at.isoformat() if d.next_allowed_at and not d.allowed else None)
    return TaskResult(task_id, channel, d, event_id)
