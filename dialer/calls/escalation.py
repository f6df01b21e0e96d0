"""The escalation plan at work: each debtor's stage (campaign/escalation.py:stage_for) decides what the daemon
does for them. Task stages (SMS, letter, legal review) go through the gate's `take_task` into the outbox for
the lender's gateway; call stages let the hopper dial them, with the bot or to the collectors as the stage
says; a debtor whose stage is a task, or who has no stage, is not dialled (docs/ESCALATION.md)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from common.clock import Clock
from common.log import log_event
from common.vocab import CONTACT_OUTCOMES
from dialer.calls.call import AGENT, BOT
from dialer.campaign.config import Campaign
from dialer.campaign.dpd import days_past_due_on
from dialer.campaign.escalation import Facts, Stage, stage_for
from dialer.gate import zones
from dialer.gate.rules import Rules
from dialer.gate.tasks import take_task
from dialer.store import Store, core
from dialer.store import escalation as esc_store

log = logging.getLogger("dialer.calls.escalation")

SWEEP_SECONDS = 30.0  # how often the daemon looks for debtors whose tasks are due
MIN_RECHECK = 60.0


def attempts_without_contact(outcomes: list[tuple[str | None, int]]) -> int:
    """Calls since the last one a person answered (newest first: (outcome, conversation))."""
    n = 0
    for outcome, conversation in outcomes:
        if conversation or outcome in CONTACT_OUTCOMES:
            break
        n += 1
    return n


class Escalation:
    """Schedules each debtor's current stage for the campaigns whose segments carry a plan."""

    def __init__(self, store: Store, rules: Rules, campaigns: dict[str, Campaign], clock: Clock,
                 sweep_seconds: float = SWEEP_SECONDS):
        self.store, self.rules, self.campaigns, self.clock = store, rules, campaigns, clock
        self.sweep_seconds = sweep_seconds
        self._last_sweep: float | None = None
        self.stages: dict[str, Stage | None] = {}  # debtor → stage, as the hopper last saw it

    @staticmethod
    def plan(camp: Campaign, segment: str | None) -> tuple[Stage, ...]:
        seg = camp.segment(segment) if segment else None
        return seg.escalation if seg is not None else ()

    def has_plans(self) -> bool:
        return any(s.escalation for c in self.campaigns.values() for s in c.segments)

    def _fallback(self, camp: Campaign) -> tuple[str, ...]:
        return self.rules.profile_for(camp.profile, camp.name).gate.fallback_zones

    def facts(self, camp: Campaign, debtor_id: str, due_date: str | None, imported_dpd: int, phone: str | None,
              record_zone: str | None, now: datetime) -> Facts:
        today = zones.local_date(now, phone, record_zone, self._fallback(camp))
        return Facts(days_past_due=days_past_due_on(due_date, imported_dpd, today),
                     attempts_without_contact=attempts_without_contact(
                         esc_store.recent_call_outcomes(self.store, debtor_id)),
                     broken_promise=esc_store.latest_promise_status(self.store, debtor_id) == "broken")

    def next_local_midnight(self, camp: Campaign, phone: str | None, record_zone: str | None,
                            now: datetime) -> float:
        """When the debtor's stage may next change by days past due: their next local midnight (+1 min)."""
        loc = zones.local_time(now, phone, record_zone, self._fallback(camp))
        nxt = datetime.combine(loc.date() + timedelta(days=1), datetime.min.time(), loc.tzinfo)
        return nxt.astimezone(timezone.utc).timestamp() + 60

    # -- the hopper's side: calls --------------------------------------------------------------------------
    def callable(self, camp: Campaign, cand: Any, now: datetime) -> bool:
        """May the hopper dial this candidate now? Yes without a plan, or when the stage is a call; otherwise the
        debtor is left until their next local midnight (when the stage may change) and not offered again."""
        plan = self.plan(camp, cand.segment)
        if not plan:
            return True
        phone = cand.phones[0] if cand.phones else None
        stage = stage_for(plan, self.facts(camp, cand.debtor_id, cand.due_date, cand.days_past_due, phone,
                                           cand.timezone, now))
        if len(self.stages) > 10_000:  # candidates seen but never placed: forget them (each is re-read when due)
            self.stages.clear()
        self.stages[cand.debtor_id] = stage
        if stage is not None and stage.is_call:
            return True
        core.set_next_allowed(self.store, cand.debtor_id, self.next_local_midnight(camp, phone, cand.timezone, now))
        return False

    def mode_for(self, debtor_id: str, default: str) -> str:
        """The call's mode by the debtor's stage (bot_call → the bot, collector_call → the collectors)."""
        stage = self.stages.pop(debtor_id, None)
        if stage is None or not stage.is_call:
            return default
        return AGENT if stage.action == "collector_call" else BOT

    # -- the daemon's side: tasks ------------------------------------------------------------------------
    def tick(self) -> int:
        """About every `sweep_seconds`: queue (through the gate) the task of every debtor whose stage is a task
        and whose next look is due. Returns tasks queued."""
        ts = self.clock.timestamp()
        if self._last_sweep is not None and ts - self._last_sweep < self.sweep_seconds:
            return 0
        self._last_sweep = ts
        queued = 0
        for camp in self.campaigns.values():
            if not any(s.escalation for s in camp.segments):
                continue
            now = self.clock.now()
            for row in esc_store.due_for_tasks(self.store, camp.name, now.timestamp()):
                try:
                    queued += self._one(camp, row, now)
                except Exception:  # noqa: BLE001 - one debtor's bad record must not stop the daemon's calls
                    log.exception("escalation task failed for one debtor; the others go on")
        return queued

    def _one(self, camp: Campaign, row: esc_store.TaskDue, now: datetime) -> int:
        t = now.timestamp()
        midnight = self.next_local_midnight(camp, row.phone, row.timezone, now)
        plan = self.plan(camp, row.segment)
        stage = stage_for(plan, self.facts(camp, row.debtor_id, row.due_date, row.days_past_due, row.phone,
                                           row.timezone, now)) if plan else None
        nxt, queued = midnight, 0
        if stage is not None and not stage.is_call:
            last = esc_store.last_stage_task(self.store, row.debtor_id, stage.name)
            if stage.every and last is not None and last + stage.every > t:
                nxt = min(midnight, last + stage.every)
            elif stage.action == "sms" and row.phone is None:
                log_event(log, "task.no_number", debtor_id=row.debtor_id, stage=stage.name)
            else:
                today = zones.local_date(now, row.phone, row.timezone, self._fallback(camp))
                res = take_task(self.store, debtor_id=row.debtor_id, account_id=row.account_id, campaign=camp.name,
                                segment=row.segment, stage=stage.name, channel=stage.action,
                                to=row.phone if stage.action == "sms" else None, rules=self.rules, now=now,
                                payload={"template": stage.template, "lang": row.lang or camp.lang,
                                         "days_past_due": days_past_due_on(row.due_date, row.days_past_due, today)})
                if res.queued:
                    queued = 1
                    if stage.every:
                        nxt = min(midnight, t + stage.every)
                elif res.decision.next_allowed_at is not None:
                    nxt = min(midnight, res.decision.next_allowed_at.timestamp())
        changed = esc_store.set_state(self.store, debtor_id=row.debtor_id, campaign=camp.name,
                                      stage=stage.name if stage else None, action=stage.action if stage else None,
                                      now=t, next_check_at=max(nxt, t + MIN_RECHECK))
        if changed:
            log_event(log, "escalation.stage", debtor_id=row.debtor_id, campaign=camp.name,
                      stage=stage.name if stage else None, action=stage.action if stage else None)
        return queued
