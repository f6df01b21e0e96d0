"""retry.next_allowed per outcome: promises wait for the day after their date, a person reached waits a day,
the rest follow the segment's retry rules and stop at max_attempts (pure: time comes in)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from common import vocab
from dialer.calls.disposition import Disposition
from dialer.calls.retry import DAY, after_promise, next_allowed
from dialer.campaign.config import DpdRange, Retry, Segment

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc).timestamp()
SEG = Segment("m1", DpdRange("M1", 1, 30), "m1_reminder_en",
              retry=Retry(busy=3600, no_answer=7200, machine=86400, failed=14400, callee_hangup=None,
                          max_attempts=6))


@pytest.mark.parametrize("outcome, delay", [
    (vocab.BUSY, 3600), (vocab.NO_ANSWER, 7200), (vocab.MACHINE, 86400), (vocab.FAILED, 14400),
    (vocab.UNALLOCATED, 14400),  # waits as a failed call
    (vocab.UNKNOWN, 14400),      # so does a call whose outcome nobody knows
])
def test_unreached_outcomes_follow_the_segment_retry(outcome, delay):
    assert next_allowed(Disposition(outcome), SEG, 1, now=NOW) == NOW + delay


def test_no_delay_configured_or_max_attempts_made_stops():
    assert next_allowed(Disposition(vocab.CALLEE_HANGUP), SEG, 1, now=NOW) is None
    assert next_allowed(Disposition(vocab.BUSY), SEG, 6, now=NOW) is None
    assert next_allowed(Disposition(vocab.BUSY), SEG, 5, now=NOW) == NOW + 3600
    assert next_allowed(Disposition(vocab.BUSY), None, 1, now=NOW) is None  # no segment: nothing to follow


def test_abandoned_waits_as_a_failed_call():
    # the campaign's retry section names no delay for an abandoned call: it waits as a failed one
    assert next_allowed(Disposition(vocab.ABANDONED, True), SEG, 1, now=NOW) == NOW + 14400


def test_a_person_reached_waits_a_day():
    assert next_allowed(Disposition(vocab.ANSWERED), SEG, 6, now=NOW) == NOW + DAY


def test_a_promise_waits_for_the_day_after_its_date():
    promise = Disposition(vocab.ANSWERED, fields={"disposition": vocab.PROMISE})
    due = date(2026, 3, 13)
    assert next_allowed(promise, SEG, 1, due, now=NOW) == after_promise(due)
    assert after_promise(due) == datetime(2026, 3, 14, tzinfo=timezone.utc).timestamp()
    assert next_allowed(promise, SEG, 1, None, now=NOW) == NOW + DAY  # no promise row: a day
