"""When may this debtor be called next? `next_allowed(disposition, segment, attempts_made, promise_due, now=…)`:
a promise waits for the day after its date, a person reached waits a day, the rest follow the segment's
retry rules (None: stop dialing this debtor). Pure: the daemon reads the inputs and writes the result."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from common import vocab
from dialer.calls.disposition import Disposition
from dialer.campaign.config import Segment, retry_delay

DAY = 86400.0


def after_promise(due: date) -> float:
    """The start (UTC) of the day after a promise falls due: the debtor is left alone until then."""
    day = due + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def next_allowed(disposition: Disposition, segment: Segment | None, attempts_made: int,
                 promise_due: date | None = None, *, now: float) -> float | None:
    """The epoch after which the debtor may be dialed again, or None when the segment says stop
    (no delay for this outcome, no segment, or `max_attempts` made)."""
    if disposition.kind == vocab.PROMISE:
        return after_promise(promise_due) if promise_due is not None else now + DAY
    if disposition.outcome == vocab.ANSWERED:
        return now + DAY  # spoke to someone: the next contact follows the segment's cadence, not today
    if segment is None:
        return None
    delay = retry_delay(segment, vocab.RETRY_KEY.get(disposition.outcome, vocab.FAILED), attempts_made)
    return None if delay is None else now + delay
