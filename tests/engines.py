"""Markers for store tests on both engines (the fixture is `store_engine` in tests/conftest.py).

    pytestmark = both_engines          # every test of the module: [sqlite] and [postgres]
    @sqlite_only                       # this one is about SQLite itself (its file, its PRAGMAs)
"""
import pytest

both_engines = pytest.mark.usefixtures("store_engine")
sqlite_only = pytest.mark.parametrize("store_engine", ["sqlite"], indirect=True)


_target = None  # set by the `store_engine` fixture on its PostgreSQL leg


def db_target(path):
    """What to pass as `--db` to a process the test starts (a subprocess does not see the fixture): the
    path on the SQLite leg, the URL of the same database on the PostgreSQL leg."""
    return str(path) if _target is None else _target(path)


def tamper(store, statements, params=()):
    """What someone with direct access to the database could do: drop the audit log's refusing triggers,
    then run `statements` (SQLite-style SQL), on whichever engine `store` lives."""
    import sqlite3

    if store.engine == "postgres":
        from dialer.store.pg import PgConn

        conn = PgConn(store.url)
        for trigger in ("audit_log_no_update", "audit_log_no_delete"):
            conn.execute_raw(f"DROP TRIGGER IF EXISTS {trigger} ON audit_log")
    else:
        conn = sqlite3.connect(store.path, isolation_level=None)
        for trigger in ("audit_log_no_update", "audit_log_no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for sql in statements:
        conn.execute(sql, params)
    conn.close()
