"""The store: one SQLite database (WAL, the default) or one PostgreSQL database (`--db postgresql://…`,
several servers sharing it) behind this package; every SQL statement lives under dialer/store/.

Modules write SQLite-style SQL; on PostgreSQL `dialer.store.pg` translates it (rules: docs/STORE.md).
A migration may have per-engine variants `NNN_name.sqlite.sql` / `NNN_name.pg.sql` where one text
cannot serve both; `NNN_name.sql` serves both otherwise.

Schema changes are numbered migration files in `dialer/store/migrations/NNN_name.sql`, applied
in order and recorded in `schema_migrations`. Number ranges per area keep parallel work apart:
001–009 core (campaigns, debtors, attempts, calls, audit), 010–019 compliance gate, 020–029 QA,
030–039 strategy, 040–049 voice bot, 050–059 pacing/agents, 080–089 recordings and live QA,
090–099 collector floor, 110–119 lender systems (payments, suppression lists, outbox and webhooks).
"""
from __future__ import annotations

import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from common.files import touch_private
from dialer.store.errors import StoreUnavailable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
Conn = sqlite3.Connection  # or dialer.store.pg.PgConn, which answers the same calls
DEFAULT_DB = Path("var/dialer.db")
URL_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def default_db() -> str | Path:
    """$DIALER_DB (a path or a postgresql:// URL), else var/dialer.db."""
    env = os.environ.get("DIALER_DB")
    if env and is_postgres_url(env):
        return env
    return Path(env or DEFAULT_DB)


def default_db_path() -> Path:
    target = default_db()
    return target if isinstance(target, Path) else Path(DEFAULT_DB)


def local_path(target: str | Path) -> Path:
    """The file on this host that stands for the store: the SQLite file, or for a PostgreSQL URL
    `var/postgres-<dbname>.db` (never created; files kept beside a store — the audit head, the API token —
    go next to it)."""
    if is_postgres_url(target):
        return DEFAULT_DB.parent / f"postgres-{str(target).rsplit('/', 1)[-1].split('?')[0]}.db"
    return Path(target)


def describe(target: str | Path) -> str:
    """Where a store lives, for messages: the path, or the URL without its password."""
    if is_postgres_url(target):
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", str(target))
    return str(target)


class Store:
    """A handle on the database. Use `transaction()` for every state change that matters."""

    def __init__(self, path: str | Path | None = None, *, migrate: bool = True):
        target = path if path is not None else default_db()
        self._local = threading.local()
        if is_postgres_url(target):
            from dialer.store import pg

            self.engine, self.url = "postgres", str(target)
            self.conn = pg.PgConn(self.url)  # type: ignore[assignment]
            # the audit head is anchored on this host, outside the database (dialer.store.audit)
            self.path = local_path(self.url)
            self.db = pg.PgTables(self.conn)  # the sqlite_utils subset tests seed with
            if migrate:
                self.migrate()
            return
        self.engine, self.url = "sqlite", None
        self.path = Path(target)
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
        if migrate:
            self.migrate()

    # -- transactions -------------------------------------------------------
    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: takes the write lock up front, so two processes
        can never both read-then-write the same state (e.g. the last allowed attempt).
        Nested calls join the outer transaction.

        `lock` (e.g. "debtor:D1") narrows the lock on PostgreSQL: only transactions naming the same key
        exclude each other (they still exclude every plain transaction); on SQLite it changes nothing."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield self.conn
            finally:
                self._local.depth -= 1
            return
        if lock is not None and self.engine == "postgres":
            self.conn.begin(lock)  # type: ignore[attr-defined]
        else:
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
        if self.engine == "postgres":
            return self._migrate_pg()
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, path in migration_files("sqlite"):
            if version in done:
                continue
            sql = path.read_text(encoding="utf-8")
            with self.transaction() as conn:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations(version) VALUES (?)", (version,))
            applied.append(version)
        return applied

    def _migrate_pg(self) -> list[str]:
        """The same files on PostgreSQL, translated (dialer.store.pg.translate_ddl); one server at a time."""
        from dialer.store import pg

        conn: pg.PgConn = self.conn  # type: ignore[assignment]
        wanted = [v for v, _ in migration_files("postgres")]
        try:  # the usual case, every open of a migrated store: nothing to do, no lock taken
            have = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if set(wanted) <= have and conn.execute(
                    "SELECT to_regprocedure('dialer_bool_sum(bigint, boolean)') IS NOT NULL").fetchone()[0]:
                return []
        except sqlite3.OperationalError:  # a new database: no schema_migrations yet
            pass
        applied = []
        with self.transaction():
            pg.install_shim(conn)
            conn.execute_raw("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY,"
                             " applied_at TEXT NOT NULL DEFAULT (now()::text))")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, path in migration_files("postgres"):
                if version in done:
                    continue
                for statement in _split_sql(path.read_text(encoding="utf-8")):
                    for pg_statement in pg.translate_ddl(statement):
                        try:
                            conn.execute_raw(pg_statement)
                        except Exception as exc:
                            raise RuntimeError(f"{path.name}: {exc} (in: {pg_statement[:200]})") from exc
                conn.execute("INSERT INTO schema_migrations(version) VALUES (?)", (version,))
                applied.append(version)
        return applied

    def schema_versions(self) -> list[str]:
        return sorted(r[0] for r in self.conn.execute("SELECT version FROM schema_migrations"))

    def close(self) -> None:
        self.conn.close()


def migration_files(engine: str) -> list[tuple[str, Path]]:
    """(version, file) in order for `engine` ("sqlite" | "postgres"): NNN_name.sql, or its engine's
    variant NNN_name.sqlite.sql / NNN_name.pg.sql when one exists (the version is NNN_name either way)."""
    own, other = (".sqlite", ".pg") if engine == "sqlite" else (".pg", ".sqlite")
    chosen: dict[str, Path] = {}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        stem = path.stem
        if stem.endswith(other):
            continue
        if stem.endswith(own):
            chosen[stem[: -len(own)]] = path
        else:
            chosen.setdefault(stem, path)
    return sorted(chosen.items())


def retry_transaction(store: Store, body: Any, *, lock: str | None = None, tries: int = 3,
                      committed: Any = None) -> Any:
    """`body(conn)` in one `store.transaction(lock)`, returning what it returns. A transaction a lost
    PostgreSQL server cut off is known not to have committed: it runs again once the server is back (the
    store reconnects before the next BEGIN, waiting up to its `wait`). Cut off during COMMIT (in doubt),
    `committed(conn)` — a read in a new transaction — says whether it did: if so, body's result stands;
    without `committed` the in-doubt error is raised. After `tries` runs, or once the store has waited its
    whole `wait` for the server, StoreUnavailable is raised."""
    if getattr(store._local, "depth", 0):  # inside the caller's transaction: its fate is the caller's
        with store.transaction(lock=lock) as conn:
            return body(conn)
    for n in range(1, tries + 1):
        result = None
        try:
            with store.transaction(lock=lock) as conn:
                result = body(conn)
            return result
        except StoreUnavailable as exc:
            if exc.waited:  # the server stayed away for the store's whole wait: the caller decides
                raise
            if exc.in_doubt:
                if committed is None:
                    raise
                with store.transaction(lock=lock) as conn:  # waits for the server like any transaction
                    if committed(conn):
                        return result
            if n == tries:
                raise


def serialize(conn: Conn, name: str) -> None:
    """Inside a transaction: hold an exclusive lock on `name` until it ends. On SQLite every write
    transaction is already exclusive (BEGIN IMMEDIATE), so this does nothing there."""
    if not isinstance(conn, sqlite3.Connection):
        conn.xact_lock(name)  # type: ignore[attr-defined]


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
