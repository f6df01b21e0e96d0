"""`dialer db copy`: a SQLite store into an empty PostgreSQL store, all or nothing.

Both stores are migrated to the same schema first; every table is copied (COPY, in foreign-key order)
inside ONE PostgreSQL transaction, row counts and the audit chain are checked before it commits, and
the identity counters are moved past the copied ids. Anything wrong rolls the whole copy back.
"""
from __future__ import annotations

from typing import Any, Callable

from dialer.store import Store
from dialer.store.audit import verify_audit_chain

BATCH = 5000


class CopyError(RuntimeError):
    """The copy cannot be done (the message says why and what to do); nothing was written."""


def _sqlite_tables(src: Store) -> list[str]:
    return [r[0] for r in src.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'schema_migrations' ORDER BY name")]


def _fk_order(src: Store, tables: list[str]) -> list[str]:
    """Tables so that every table comes after the tables its foreign keys reference."""
    deps = {t: {r[2] for r in src.conn.execute(f"PRAGMA foreign_key_list({t})")} & set(tables) - {t}
            for t in tables}
    order: list[str] = []
    while deps:
        ready = sorted(t for t, d in deps.items() if not d - set(order))
        if not ready:
            raise CopyError(f"foreign keys form a cycle among {', '.join(sorted(deps))}")
        order += ready
        for t in ready:
            del deps[t]
    return order


def copy_sqlite_to_postgres(src: Store, dst: Store,
                            progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy every row of `src` (SQLite) into `dst` (PostgreSQL, empty). Returns {tables: {name: rows}}."""
    if src.engine != "sqlite" or dst.engine != "postgres":
        raise CopyError("copy goes from a SQLite store to a PostgreSQL store")
    src_versions, dst_versions = src.schema_versions(), dst.schema_versions()
    if src_versions != dst_versions:
        only_src = sorted(set(src_versions) - set(dst_versions))
        only_dst = sorted(set(dst_versions) - set(src_versions))
        raise CopyError(f"the two schemas differ (only in SQLite: {only_src or 'none'}; only in PostgreSQL: "
                        f"{only_dst or 'none'}): run this version of dialer against both (dialer db migrate)")
    tables = _fk_order(src, _sqlite_tables(src))
    pg = dst.conn
    counts: dict[str, int] = {}
    with dst.transaction() as conn:
        for t in tables:
            if conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None:
                raise CopyError(f"the PostgreSQL database is not empty (table {t} has rows): copy into a new "
                                "database (createdb), never over a live one")
        for t in tables:
            cols = [r[1] for r in src.conn.execute(f"PRAGMA table_info({t})")]
            have = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = ?", (t,))}
            missing = [c for c in cols if c not in have]
            if missing:
                raise CopyError(f"table {t}: PostgreSQL has no column {', '.join(missing)}")
            n = 0
            cur = src.conn.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY rowid")
            with pg._c.cursor().copy(f"COPY {t} ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                while True:
                    rows = cur.fetchmany(BATCH)
                    if not rows:
                        break
                    for row in rows:
                        copy.write_row(tuple(row))
                    n += len(rows)
                    if progress:
                        progress(t, n)
            counts[t] = n
            if progress and n == 0:
                progress(t, 0)
        for t in tables:
            got = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            if got != counts[t]:
                raise CopyError(f"table {t}: {counts[t]} rows read, {got} in PostgreSQL")
        for t, col in conn.execute(
                "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attidentity != ''"
                " AND n.nspname = current_schema()").fetchall():
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{t}', '{col}'),"
                         f" (SELECT coalesce(max({col}), 0) + 1 FROM {t}), false)")
        if verify_audit_chain(conn) != verify_audit_chain(src):
            raise CopyError("the copied audit log does not verify as the source's does")
    return {"tables": counts, "rows": sum(counts.values())}
