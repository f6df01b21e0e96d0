"""A second Store on the same database in one process (the daemon's web API, QA, recordings) must not cost
the first its SQLite locks: closing any descriptor of a file drops every POSIX lock the process holds on it,
and the next connection from elsewhere then takes the WAL for unused and deletes it, so the first
connection's later writes went to a deleted file — visible to nobody else, lost on a SIGKILL (CI's chaos
soak: 125 of 155 attempts gone)."""
from __future__ import annotations

import subprocess
import sys

from dialer.store import Store

COUNT = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM t').fetchone()[0]); c.close()"


def _count_elsewhere(path) -> int:
    return int(subprocess.run([sys.executable, "-c", COUNT, str(path)], capture_output=True, text=True,
                              check=True, timeout=30).stdout)


def test_a_second_store_in_the_process_leaves_the_first_ones_writes_visible_and_durable(tmp_path):
    path = tmp_path / "d.db"
    first = Store(path)
    first.conn.execute("CREATE TABLE t (x INTEGER)")
    first.conn.execute("INSERT INTO t VALUES (1)")
    second = Store(path, migrate=False)  # e.g. the API's own handle, opened while the daemon runs
    second.close()
    assert _count_elsewhere(path) == 1
    first.conn.execute("INSERT INTO t VALUES (2)")  # after another process opened and closed the database
    assert _count_elsewhere(path) == 2, "the first handle writes into a WAL nobody else sees"
    assert (tmp_path / "d.db-wal").exists()
    first.close()
