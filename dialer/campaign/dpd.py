"""Days past due as of a given day: counted from the account's due date when the file gave one, so a
number imported last month is never read aloud stale; the imported figure only when there is no date."""
from __future__ import annotations

from datetime import date


def days_past_due_on(due_date: str | date | None, imported: int, today: date) -> int:
    """Days past due on `today` (the debtor's local date). Pure."""
    if not due_date:
        return int(imported)
    due = due_date if isinstance(due_date, date) else date.fromisoformat(str(due_date))
    return max(0, (today - due).days)
