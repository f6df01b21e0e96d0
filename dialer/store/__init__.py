"""The store: one SQLite database (WAL) behind this package; every SQL statement lives under dialer/store/.

Schema changes are numbered migration files in `dialer/store/migrations/NNN_name.sql`, applied
in order and recorded in `schema_migrations`. Number ranges per area keep parallel work apart:
001–009 core (campaigns, debtors, attempts, calls, audit), 010–019 compliance gate, 020–029 QA,
030–039 strategy, 040–049 voice bot, 050–059 pacing/agents, 080–089 recordings and live QA,
090–099 collector floor, 110–119 lender systems (payments, suppression lists, outbox and webhooks).
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from common.files import touch_private

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
Conn = sqlite3.Connection
DEFAULT_DB = Path("var/dialer.db")


def default_db_path() -> Path:
    return Path(os.environ.get("DIALER_DB") or DEFAULT_DB)


class Store:
    """A handle on the database. Use `transaction()` for every state change that matters."""

    def __init__(self, path: str | Path | None = None, *, migrate: bool = True):
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Debtors' data: 0600 from the first byte; SQLite gives its -wal and -shm files the same mode.
            touch_private(self.path)
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._local = threading.local()
        if migrate:
            self.migrate()

    # -- transactions -------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: takes the write lock up front, so two processes
        can never both read-then-write the same state (e.g. the last allowed attempt).
        Nested calls join the outer transaction."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield self.conn
            finally:
                self._local.depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params))

    def query_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    # -- migrations ----------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply every migration not yet applied, each in its own transaction."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            version = path.stem
            if version in done:
                continue
            sql = path.read_text(encoding="utf-8")
            with self.transaction() as conn:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations(version) VALUES (?)", (version,))
            applied.append(version)
        return applied

    def close(self) -> None:
        self.conn.close()


def conn_of(x: Store | Conn) -> Conn:
    """The connection behind a Store, or the connection itself (query functions accept either)."""
    return x.conn if isinstance(x, Store) else x


@contextmanager
def tx(x: Store | Conn) -> Iterator[Conn]:
    """Join the caller's transaction (a connection already in one), else open one: the Store's
    `transaction()`, or BEGIN IMMEDIATE … COMMIT on an idle connection."""
    if isinstance(x, Store):
        with x.transaction() as conn:
            yield conn
        return
    if x.in_transaction:
        yield x
        return
    x.execute("BEGIN IMMEDIATE")
    try:
        yield x
    except BaseException:
        x.execute("ROLLBACK")
        raise
    else:
        x.execute("COMMIT")


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement keeps triggers whole)."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        if not buf and line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
