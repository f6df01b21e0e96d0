"""PostgreSQL behind the same connection interface the store modules use with SQLite.

A store module writes ordinary SQLite-style SQL (`?` placeholders, `INSERT OR IGNORE`, `sum(<boolean>)`,
`group_concat`, scalar `max(a, b)`, `IS NOT 'x'`, REAL times, INTEGER PRIMARY KEY ids) and calls
`conn.execute(sql, params)` / `executemany` / `fetchone` / `fetchall` / `rowcount` / `lastrowid` /
`in_transaction` exactly as on `sqlite3.Connection`. On PostgreSQL, `PgConn` translates each statement once
(cached) and returns rows that read by name and by index like `sqlite3.Row`. The few functions the two
engines spell differently are installed in the database (`SHIM_SQL`: `sum(boolean)`, `group_concat`,
`instr`), so a module never asks which engine it runs on. The rules a module follows are in docs/STORE.md.

Why not SQLAlchemy Core: every module already holds SQLite SQL strings and would have to be rewritten as
expression trees or wrapped in `text()` with `:name` binds; Core would still leave the differences above
(boolean sums, group_concat, upsert spellings) to us. This layer is one file, and the SQLite path does
not go through it at all (the store hands out the `sqlite3.Connection` itself).

Transactions: `BEGIN IMMEDIATE` (what SQLite modules write) becomes `BEGIN` plus an exclusive
transaction-level advisory lock on the whole store, so a module's read-then-write is as serial across
servers as it is across processes on SQLite. `Store.transaction(lock=KEY)` instead takes that lock shared
plus an exclusive lock on KEY (the gate: one debtor), so take_attempt for different debtors runs in
parallel on different servers; the hash-chained audit log serialises its appends with its own lock.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterable, Iterator, Sequence

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper, Loader
from psycopg.types.numeric import IntDumper

from dialer.store.errors import StoreUnavailable

log = logging.getLogger("dialer.store")

URL_PREFIXES = ("postgresql://", "postgres://")
DEFAULT_WAIT = 30.0  # seconds a store call waits for a lost server to come back ($DIALER_DB_WAIT)
GLOBAL_LOCK = 0x64_69_61_6C_65_72  # "dialer": what BEGIN IMMEDIATE takes exclusively


def is_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (e.g. 'debtor:D1', 'audit')."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


# -- rows ---------------------------------------------------------------------------------------------
class Row:
    """A result row read by column name or index, iterable, `dict(row)`-able: what sqlite3.Row offers."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]):
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise IndexError(f"no column {key!r}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self._values) == (tuple(other) if isinstance(other, (Row, tuple)) else other)

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


_INDEXES: dict[tuple[bytes, ...], dict[str, int]] = {}


def _row_factory(cursor: psycopg.Cursor) -> Any:
    res = cursor.pgresult
    names = tuple(res.fname(i) or b"" for i in range(res.nfields)) if res is not None else ()
    index = _INDEXES.get(names)
    if index is None:
        index = {}
        for i, name in enumerate(names):
            index.setdefault(name.decode(), i)
        if len(_INDEXES) < 10000:
            _INDEXES[names] = index
    return lambda values: Row(values, index)


def _has_rows(cur: psycopg.Cursor) -> bool:
    res = cur.pgresult
    return res is not None and res.status == pq.ExecStatus.TUPLES_OK


# -- adapters: values come back as SQLite gives them -----------------------------------------------------
class _BoolAsInt(IntDumper):
    """A Python bool parameter is 1/0 (the columns are INTEGER, as in SQLite)."""

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _BoolLoader(Loader):
    """A boolean result (`SELECT x IS NULL`) reads 1/0, as SQLite returns it."""

    def load(self, data: Any) -> int:
        return 1 if bytes(data) in (b"t", b"\x01") else 0


class _NumericLoader(Loader):
    """numeric (sum of bigint, avg) reads as int when whole, else float, as SQLite returns it."""

    def load(self, data: Any) -> Any:
        s = bytes(data).decode()
        if s in ("NaN",):
            return float("nan")
        if "." not in s and "e" not in s.lower():
            return int(s)
        f = float(s)
        return f


# -- SQL translation --------------------------------------------------------------------------------------
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")
_TRIGGER = re.compile(
    r"CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+(BEFORE|AFTER)\s+(INSERT|UPDATE|DELETE)\s+ON\s+(\w+)"
    r"\s+(?:FOR\s+EACH\s+ROW\s+)?BEGIN\s+SELECT\s+RAISE\s*\(\s*(?:ABORT|FAIL|ROLLBACK)\s*,\s*('(?:[^']|'')*')\s*\)\s*;"
    r"\s*END\s*;?\s*$", re.I | re.S)
_SUBS = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\b(INTEGER|BOOLEAN)\b", re.I), "BIGINT"),  # SQLite integers are 64-bit; booleans are 0/1
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\bifnull\s*\(", re.I), "coalesce("),
    (re.compile(r"\bNOT\s+LIKE\b", re.I), "NOT ILIKE"),
    (re.compile(r"(?<!NOT )(?<!I)\bLIKE\b", re.I), "ILIKE"),
    (re.compile(r"\bIS\s+NOT\s+(?!NULL\b|DISTINCT\b|TRUE\b|FALSE\b)", re.I), "IS DISTINCT FROM "),
    (re.compile(r"\bIS\s+(?!NOT\b|NULL\b|DISTINCT\b|TRUE\b|FALSE\b)", re.I), "IS NOT DISTINCT FROM "),
    # a PostgreSQL-only clause in a hint comment SQLite ignores: `… LIMIT ? /* pg: FOR UPDATE OF d SKIP LOCKED */`
    (re.compile(r"/\*\s*pg:\s*(.*?)\s*\*/", re.S), r"\1"),
    (re.compile(r"\)\s*(WITHOUT\s+ROWID|STRICT)\s*(,\s*(WITHOUT\s+ROWID|STRICT)\s*)?$", re.I), ")"),
]
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*(\(([^)]*)\))?", re.I)
_MINMAX = re.compile(r"\b(max|min)\s*\(", re.I)


_UPSERT = re.compile(r"\bON\s+CONFLICT\b[^;]*?\bDO\s+UPDATE\s+SET\b", re.I | re.S)
_UPSERT_KEYWORDS = frozenset("""NULL CASE WHEN THEN ELSE END AND OR NOT IS IN DISTINCT FROM TRUE FALSE WHERE CAST AS
    EXCLUDED BETWEEN LIKE ILIKE ESCAPE COLLATE DOUBLE PRECISION BIGINT TEXT INTEGER REAL NUMERIC""".split())


def _qualify_upsert(code: str) -> str:
    """In `ON CONFLICT … DO UPDATE SET col = expr`, a bare column in `expr` means the existing row in SQLite
    but is ambiguous on PostgreSQL (it could be `excluded`'s): qualify it with the table name."""
    m = _UPSERT.search(code)
    t = re.match(r"\s*INSERT\s+INTO\s+(\w+)", code, re.I)
    if not m or not t:
        return code
    table, tail = t.group(1), code[m.end():]
    out, pos, depth, expect_lhs, in_where = [], 0, 0, True, False
    for tok in re.finditer(r"[A-Za-z_]\w*|[(),]", tail):
        word, start = tok.group(0), tok.start()
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif word == ",":
            expect_lhs = depth == 0 and not in_where
        else:
            upper = word.upper()
            if upper in ("SELECT", "RETURNING"):
                return code if upper == "SELECT" else code[:m.end()] + "".join(out) + tail[pos:]
            if upper == "WHERE" and depth == 0:
                in_where, expect_lhs = True, False
                continue
            if expect_lhs and not in_where:
                expect_lhs = False
                continue
            before = tail[start - 1] if start else " "
            after = tail[tok.end():].lstrip()[:1]
            if upper in _UPSERT_KEYWORDS or before in ".%" or before.isalnum() or after in (".", "("):
                continue
            out.append(tail[pos:start] + f"{table}.{word}")
            pos = tok.end()
    return code[:m.end()] + "".join(out) + tail[pos:]


class Translated:
    __slots__ = ("sql", "replace_table", "replace_cols")

    def __init__(self, sql: str, replace_table: str | None = None, replace_cols: tuple[str, ...] = ()):
        self.sql = sql
        self.replace_table = replace_table
        self.replace_cols = replace_cols


def _scalar_minmax(code: str) -> str:
    """SQLite's scalar max(a, b, ...)/min(a, b, ...) → GREATEST/LEAST (one argument stays the aggregate)."""
    out, pos = [], 0
    for m in _MINMAX.finditer(code):
        if m.start() < pos:
            continue
        depth, commas, i = 1, 0, m.end()
        while i < len(code) and depth:
            ch = code[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1:
                commas += 1
            i += 1
        if commas:
            out.append(code[pos:m.start()])
            out.append("GREATEST(" if m.group(1).lower() == "max" else "LEAST(")
            pos = m.end()
    out.append(code[pos:])
    return "".join(out)


@lru_cache(maxsize=4096)
def translate(sql: str) -> Translated:
    """One SQLite-style statement → its PostgreSQL form (placeholders, upserts, types, scalar functions)."""
    literals: list[str] = []

    def keep(m: re.Match[str]) -> str:
        text = m.group(0)
        if text.startswith("--"):
            return " "
        literals.append(text.replace("%", "%%"))
        return f"\x00{len(literals) - 1}\x00"

    code = _LITERAL.sub(keep, sql).strip().rstrip(";")
    code = code.replace("%", "%%").replace("?", "%s")
    for pattern, repl in _SUBS:
        code = pattern.sub(repl, code)
    code = _scalar_minmax(code)
    code = _qualify_upsert(code)
    replace_table, replace_cols = None, ()
    m = _INSERT_OR.match(code)
    if m:
        kind, table = m.group(1).upper(), m.group(2)
        code = code[:m.start()] + f"INSERT INTO {table}" + (f" ({m.group(4)})" if m.group(3) else "") + code[m.end():]
        if kind == "IGNORE":
            code += " ON CONFLICT DO NOTHING"
        else:
            replace_table = table
            replace_cols = tuple(c.strip() for c in (m.group(4) or "").split(",") if c.strip())
    text = re.sub("\x00(\\d+)\x00", lambda m: literals[int(m.group(1))], code)
    return Translated(text, replace_table, replace_cols)


def translate_ddl(statement: str) -> list[str]:
    """A migration statement → the PostgreSQL statements that do the same (a refusing trigger becomes a
    trigger function plus a trigger)."""
    m = _TRIGGER.match(statement.strip())
    if m:
        name, when, event, table, message = m.groups()
        return [
            f"CREATE OR REPLACE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS "
            f"$fn$ BEGIN RAISE EXCEPTION {message}; END $fn$",
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} {when} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_fn()",
        ]
    if re.match(r"\s*CREATE\s+TRIGGER\b", statement, re.I):
        raise ValueError("only a trigger that refuses (BEGIN SELECT RAISE(ABORT, '...'); END) runs on both "
                         "engines; give this migration a .pg.sql variant")
    return [translate(statement).sql.replace("%%", "%")]


# The functions SQLite has and PostgreSQL spells otherwise, installed once per database.
SHIM_SQL = [
    "CREATE OR REPLACE FUNCTION dialer_bool_sum(acc bigint, v boolean) RETURNS bigint LANGUAGE sql IMMUTABLE"
    " AS $$ SELECT CASE WHEN v IS NULL THEN acc WHEN v THEN coalesce(acc, 0) + 1 ELSE coalesce(acc, 0) END $$",
    "CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = dialer_bool_sum, STYPE = bigint)",
    "CREATE OR REPLACE FUNCTION dialer_concat(acc text, v text, sep text) RETURNS text LANGUAGE sql IMMUTABLE"
    " AS $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || sep || v END $$",
    "CREATE OR REPLACE FUNCTION dialer_concat1(acc text, v text) RETURNS text LANGUAGE sql IMMUTABLE"
    " AS $$ SELECT dialer_concat(acc, v, ',') $$",
    "CREATE OR REPLACE AGGREGATE group_concat(text, text) (SFUNC = dialer_concat, STYPE = text)",
    "CREATE OR REPLACE AGGREGATE group_concat(text) (SFUNC = dialer_concat1, STYPE = text)",
    "CREATE OR REPLACE FUNCTION instr(s text, sub text) RETURNS integer LANGUAGE sql IMMUTABLE"
    " AS $$ SELECT strpos(s, sub) $$",
    "CREATE OR REPLACE FUNCTION round(x double precision, n integer) RETURNS double precision LANGUAGE sql"
    " IMMUTABLE AS $$ SELECT round(x::numeric, n)::double precision $$",
]


# -- errors: the sqlite3 exception classes, so a module's `except sqlite3.IntegrityError` holds on both ------
@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except (psycopg.errors.IntegrityError, psycopg.errors.RaiseException) as exc:
        raise sqlite3.IntegrityError(str(exc).strip()) from exc
    except psycopg.OperationalError as exc:
        raise sqlite3.OperationalError(str(exc).strip()) from exc
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.InterfaceError):
            raise
        raise sqlite3.OperationalError(str(exc).strip()) from exc


# -- the connection ---------------------------------------------------------------------------------------
class PgCursor:
    """The part of sqlite3.Cursor the store uses."""

    def __init__(self, cur: psycopg.Cursor, conn: "PgConn"):
        self._cur = cur
        self._conn = conn

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def lastrowid(self) -> int | None:
        """The id the last INSERT drew from an identity column (lastval() of this session)."""
        return self._conn._c.execute("SELECT lastval()").fetchone()[0]

    def fetchone(self) -> Row | None:
        return self._cur.fetchone() if _has_rows(self._cur) else None

    def fetchall(self) -> list[Row]:
        return self._cur.fetchall() if _has_rows(self._cur) else []

    def fetchmany(self, size: int = 1) -> list[Row]:
        return self._cur.fetchmany(size) if _has_rows(self._cur) else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class _NoRows(PgCursor):
    """What BEGIN / COMMIT / ROLLBACK return (also on a lost connection): no rows."""

    def __init__(self, conn: "PgConn"):
        self._conn = conn

    @property
    def rowcount(self) -> int:
        return -1

    @property
    def description(self) -> Any:
        return None

    def fetchone(self) -> Row | None:
        return None

    def fetchall(self) -> list[Row]:
        return []

    def fetchmany(self, size: int = 1) -> list[Row]:
        return []


class PgConn:
    """A psycopg 3 connection that reads SQLite-style SQL (see the module docstring).

    A lost server (restart, stop, network) is survived here: the connection is marked lost, the transaction
    it carried is gone (the server rolled it back) and `StoreUnavailable` says so. The next statement outside
    a transaction reconnects first, waiting for the server with backoff for up to `wait` seconds
    ($DIALER_DB_WAIT, default 30 — as SQLite waits up to 30 s for a busy lock); once one call has waited that
    long in vain, the next ones try once and fail at once until the server is back. A statement outside a
    transaction that the outage interrupted is sent again once reconnected."""

    engine = "postgres"

    def __init__(self, url: str, *, connect_timeout: int = 10, wait: float | None = None):
        self.url = url
        self.connect_timeout = connect_timeout
        self.wait = float(os.environ.get("DIALER_DB_WAIT", DEFAULT_WAIT)) if wait is None else float(wait)
        self.outages = 0          # how many times the connection was lost and made again
        self.lost_at: float | None = None  # monotonic time the current outage was noticed (None: connected)
        self._c = self._connect(connect_timeout)
        self._open = False        # a transaction begun and not yet committed or rolled back (by the caller)
        self._gave_up = False     # this outage already outlasted `wait` once
        self._pk_cache: dict[str, tuple[str, ...]] = {}

    def _connect(self, timeout: int) -> psycopg.Connection[Any]:
        c = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory, connect_timeout=timeout)
        c.adapters.register_dumper(bool, _BoolAsInt)
        c.adapters.register_loader("bool", _BoolLoader)
        c.adapters.register_loader("numeric", _NumericLoader)
        return c

    # -- a lost server ------------------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        return self._c.closed or self._c.broken

    def _lost(self, exc: BaseException, *, in_doubt: bool = False) -> StoreUnavailable:
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            log.warning("store.unavailable: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        err = StoreUnavailable(f"the PostgreSQL server is unavailable: {str(exc).strip()}", in_doubt=in_doubt)
        err.__cause__ = exc
        return err

    def reconnect(self, wait: float | None = None) -> bool:
        """Connect again if the connection is lost, trying with backoff for up to `wait` seconds (default
        `self.wait`; 0: one try). True when connected; False when the server is still away."""
        if not self.lost:
            return True
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        delay = 0.1
        while True:
            try:
                c = self._connect(max(1, min(self.connect_timeout, int(max(1.0, deadline - time.monotonic())))))
            except psycopg.Error:
                if time.monotonic() + delay > deadline:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            try:
                self._c.close()
            except Exception:  # noqa: BLE001 - the old connection is gone anyway
                pass
            self._c = c
            self._gave_up = False
            self.outages += 1
            down = time.monotonic() - self.lost_at if self.lost_at is not None else 0.0
            self.lost_at = None
            log.warning("store.reconnected after %.1f s", down)
            return True

    def _ready(self) -> None:
        """Before a statement outside a transaction: a lost connection is made again (or StoreUnavailable)."""
        if self.lost:
            if self.lost_at is None:
                self.lost_at = time.monotonic()
                log.warning("store.unavailable: the connection was lost")
            # waited in full once this outage: the next calls try once and fail at once (an event loop
            # calling the store many times must not stand still for `wait` at each call)
            if not self.reconnect(0 if self._gave_up else None):
                self._gave_up = True
                raise StoreUnavailable(f"the PostgreSQL server is unavailable (waited {self.wait:g} s)",
                                       waited=True)

    def _run(self, fn: Any, *, retry: bool) -> Any:
        """fn() with sqlite3-class errors; a lost connection → StoreUnavailable, or (outside a transaction,
        `retry`) once more after reconnecting."""
        try:
            with _sqlite_errors():
                return fn()
        except (sqlite3.Error, psycopg.Error) as exc:
            if not self.lost:
                raise
            if not retry:
                raise self._lost(exc) from None
            self._lost(exc)
        self._ready()
        try:
            with _sqlite_errors():
                return fn()
        except (sqlite3.Error, psycopg.Error) as exc:
            if self.lost:
                raise self._lost(exc) from None
            raise

    def _prepare(self) -> bool:
        """Before a statement: True when it runs outside a transaction (reconnected first if need be); inside
        a transaction the lost connection took with it, StoreUnavailable (known not committed)."""
        if self._open or (not self.lost and self._c.info.transaction_status != pq.TransactionStatus.IDLE):
            if self.lost:
                raise StoreUnavailable("the PostgreSQL server was lost in the middle of this transaction "
                                       "(it rolled it back; nothing of it was kept)")
            return False
        self._ready()
        return True

    def ping(self) -> bool:
        """Is the server there? Reconnects (one try) when the connection was lost."""
        if self.lost and not self.reconnect(0):
            return False
        try:
            self._c.execute("SELECT 1")
            return True
        except psycopg.Error:
            return self.reconnect(0) if self.lost else False

    # -- statements -----------------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        if self.lost:  # the server rolled it back; until the caller rolls back too, its statements fail
            return self._open
        return self._c.info.transaction_status != pq.TransactionStatus.IDLE

    def begin(self, lock: str | None = None) -> None:
        """BEGIN, then the store-wide advisory lock: exclusive (what BEGIN IMMEDIATE means), or shared plus
        an exclusive lock on `lock` (one debtor: transactions on different keys run in parallel)."""
        self._ready()
        if lock is None:  # one round trip: no parameters, so both statements go in one simple query
            sql = f"BEGIN; SELECT pg_advisory_xact_lock({GLOBAL_LOCK})"
        else:
            sql = (f"BEGIN; SELECT pg_advisory_xact_lock_shared({GLOBAL_LOCK}),"
                   f" pg_advisory_xact_lock({lock_key(lock)})")

        def go() -> None:
            if self._c.info.transaction_status != pq.TransactionStatus.IDLE:  # a BEGIN cut off: start clean
                self._c.execute("ROLLBACK")
            self._c.execute(sql)
        self._run(go, retry=True)
        self._open = True

    def xact_lock(self, name: str) -> None:
        """An exclusive lock on `name` until the transaction ends (e.g. the audit log's tail)."""
        self._run(lambda: self._c.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(name),)), retry=False)

    def execute(self, sql: str, params: Any = ()) -> PgCursor:
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            self.begin()
            return _NoRows(self)
        if head.startswith("COMMIT"):
            self.commit()
            return _NoRows(self)
        if head.startswith("ROLLBACK"):
            self.rollback()
            return _NoRows(self)
        t = translate(sql)
        args = tuple(params) if not isinstance(params, dict) else params
        outside = self._prepare()

        def go() -> PgCursor:
            q = t.sql if t.replace_table is None else self._replace_sql(t)
            cur = self._c.cursor()
            cur.execute(q, args)
            return PgCursor(cur, self)
        return self._run(go, retry=outside)

    def executemany(self, sql: str, seq: Iterable[Any]) -> PgCursor:
        t = translate(sql)
        rows = [tuple(p) for p in seq]
        outside = self._prepare()

        def go() -> PgCursor:
            q = t.sql if t.replace_table is None else self._replace_sql(t)
            cur = self._c.cursor()
            cur.executemany(q, rows)
            return PgCursor(cur, self)
        return self._run(go, retry=outside)

    def execute_raw(self, sql: str, params: Any = None) -> PgCursor:
        """A PostgreSQL statement as written (migrations' translated DDL, the engine's own queries)."""
        outside = self._prepare()

        def go() -> PgCursor:
            cur = self._c.cursor()
            cur.execute(sql, params)
            return PgCursor(cur, self)
        return self._run(go, retry=outside)

    def _replace_sql(self, t: Translated) -> str:
        """INSERT OR REPLACE → INSERT … ON CONFLICT (primary key) DO UPDATE SET every other column."""
        table = t.replace_table or ""
        pk = self._pk_cache.get(table)
        if pk is None:
            rows = self._c.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (table,)).fetchall()
            pk = self._pk_cache[table] = tuple(r[0] for r in rows)
        cols = [c for c in t.replace_cols if c not in pk]
        action = ("DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in cols)) if cols else "DO NOTHING"
        return f"{t.sql} ON CONFLICT ({', '.join(pk)}) {action}"

    def commit(self) -> None:
        """COMMIT. The connection lost while committing: StoreUnavailable with `in_doubt` (it may have
        committed); lost before it: StoreUnavailable, known not committed."""
        was_open, self._open = self._open, False
        if self.lost:
            if was_open:
                raise self._lost(psycopg.OperationalError("the connection was lost before COMMIT"))
            return
        if self._c.info.transaction_status == pq.TransactionStatus.IDLE:
            return
        try:
            with _sqlite_errors():
                self._c.execute("COMMIT")
        except (sqlite3.Error, psycopg.Error) as exc:
            if self.lost:
                raise self._lost(exc, in_doubt=True) from None
            raise

    def rollback(self) -> None:
        """ROLLBACK; nothing to do on a lost connection (the server rolled the transaction back)."""
        self._open = False
        if self.lost or self._c.info.transaction_status == pq.TransactionStatus.IDLE:
            return
        try:
            self._c.execute("ROLLBACK")
        except psycopg.Error:
            if not self.lost:
                raise

    def close(self) -> None:
        self._c.close()


def install_shim(conn: PgConn) -> None:
    for statement in SHIM_SQL:
        conn.execute_raw(statement)


# -- the sqlite_utils subset tests and benchmarks seed with (`store.db["table"].insert(...)`) ----------------
class PgTable:
    def __init__(self, conn: PgConn, name: str):
        self.conn, self.name = conn, name

    def _insert_sql(self, cols: Sequence[str], ignore: bool, replace: bool) -> str:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE" if ignore else "INSERT"
        return f"{verb} INTO {self.name}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    def insert(self, row: dict[str, Any], *, ignore: bool = False, replace: bool = False, **_: Any) -> "PgTable":
        self.conn.execute(self._insert_sql(list(row), ignore, replace), tuple(row.values()))
        return self

    def insert_all(self, rows: Iterable[dict[str, Any]], *, ignore: bool = False, replace: bool = False,
                   **_: Any) -> "PgTable":
        by_cols: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for r in rows:
            by_cols.setdefault(tuple(r), []).append(tuple(r.values()))
        for cols, values in by_cols.items():
            self.conn.executemany(self._insert_sql(cols, ignore, replace), values)
        return self

    def update(self, pk_value: Any, updates: dict[str, Any]) -> "PgTable":
        pk = self.conn._replace_sql(Translated("", self.name, ())).split("(")[-1].split(")")[0]
        sets = ", ".join(f"{k}=?" for k in updates)
        self.conn.execute(f"UPDATE {self.name} SET {sets} WHERE {pk}=?", (*updates.values(), pk_value))
        return self


class PgTables:
    def __init__(self, conn: PgConn):
        self.conn = conn

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self.conn, name)
