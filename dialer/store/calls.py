"""Queries the call steps need beyond the core tables' basics: who is calling back."""
from __future__ import annotations

from typing import Any

from dialer.store import Conn, Store, conn_of


def debtor_for_caller(store: Store | Conn, phone: str) -> dict[str, Any] | None:
    """The debtor (and campaign) a number belongs to: an active debtor first, then the number's rank."""
    row = conn_of(store).execute(
        "SELECT p.debtor_id, d.campaign FROM phones p JOIN debtors d ON d.debtor_id = p.debtor_id"
        " WHERE p.phone = ? ORDER BY d.status = 'active' DESC, p.rank LIMIT 1", (phone,)).fetchone()
    return dict(row) if row is not None else None
