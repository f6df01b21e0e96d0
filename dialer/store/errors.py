"""Errors of the store that do not depend on the engine (importing this pulls in no driver)."""
from __future__ import annotations

import sqlite3


class StoreUnavailable(sqlite3.OperationalError):
    """The PostgreSQL server cannot be reached (restarting, stopped, network). An `OperationalError`, so
    code that already handles one goes on handling it. (SQLite, a file, never raises it.)

    `in_doubt` is False when the interrupted transaction is known to have failed (the server rolls back a
    transaction whose connection is lost; nothing it wrote is kept): run it again once the server is back.
    It is True only when the connection was lost while COMMIT was under way: the transaction may or may not
    have committed, and the caller must look (take_attempt looks for its call id)."""

    def __init__(self, message: str, *, in_doubt: bool = False, waited: bool = False):
        super().__init__(message)
        self.in_doubt = in_doubt
        self.waited = waited  # the store already waited its full `wait` for the server: do not wait again
        self.call_id: str | None = None  # set by a caller that knows what the transaction was for
