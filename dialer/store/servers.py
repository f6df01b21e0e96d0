"""Several dialer servers on one store: the servers table (heartbeats), the leased hopper, and the attempts
a silent server left open. What counts as dead and what to do about it is decided in calls/hopper.py.

The hopper's claim runs under `transaction(lock="hopper:<server>")`: on PostgreSQL the store lock shared
(servers claim at the same time) and `FOR UPDATE OF d SKIP LOCKED` on the debtor rows, so two servers
claiming at once take different debtors without waiting for each other; the lease upsert only takes a debtor
whose lease is free or expired, and the claim reads back which leases it really holds. On SQLite the
transaction is BEGIN IMMEDIATE: one claim at a time (one server)."""
from __future__ import annotations

from typing import Any

from dialer.store import Conn, Store, conn_of, core, tx

_CLAIM_SQL = core._CANDIDATE_SQL.replace(
    "ORDER BY d.propensity",
    "AND NOT EXISTS (SELECT 1 FROM hopper_leases l WHERE l.debtor_id = d.debtor_id"
    " AND l.server_id <> ? AND l.expires_at > ?)\nORDER BY d.propensity").rstrip() + \
    " /* pg: FOR UPDATE OF d SKIP LOCKED */"


# -- servers ----------------------------------------------------------------------------------------------
def server(store: Store | Conn, server_id: str) -> dict[str, Any] | None:
    r = conn_of(store).execute("SELECT * FROM servers WHERE server_id = ?", (server_id,)).fetchone()
    return dict(r) if r is not None else None


def register(store: Store | Conn, server_id: str, *, host: str, pid: int, now: float, line_limit: int) -> None:
    """The server starts (or starts again): running, heartbeat now."""
    with tx(store) as conn:
        conn.execute(
            "INSERT INTO servers(server_id, host, pid, started_at, heartbeat_at, lines_in_use, line_limit, status)"
            " VALUES (?,?,?,?,?,0,?,'running') ON CONFLICT(server_id) DO UPDATE SET host = excluded.host,"
            " pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
            " lines_in_use = 0, line_limit = excluded.line_limit, status = 'running'",
            (server_id, host, int(pid), float(now), float(now), int(line_limit)))


def heartbeat(store: Store | Conn, server_id: str, now: float, lines_in_use: int) -> None:
    with tx(store) as conn:
        conn.execute("UPDATE servers SET heartbeat_at = ?, lines_in_use = ?, status = 'running'"
                     " WHERE server_id = ?", (float(now), int(lines_in_use), server_id))


def stopped(store: Store | Conn, server_id: str, now: float) -> None:
    """A clean stop: no lines in use, no leases held."""
    with tx(store) as conn:
        conn.execute("UPDATE servers SET heartbeat_at = ?, lines_in_use = 0, status = 'stopped'"
                     " WHERE server_id = ?", (float(now), server_id))
        conn.execute("DELETE FROM hopper_leases WHERE server_id = ?", (server_id,))


def servers(store: Store | Conn, now: float) -> list[dict[str, Any]]:
    """Every server: its row, the leases it holds now and its attempts still open."""
    conn = conn_of(store)
    out = []
    for r in conn.execute("SELECT * FROM servers ORDER BY server_id"):
        row = dict(r)
        row["leases"] = conn.execute(
            "SELECT count(*) AS n FROM hopper_leases WHERE server_id = ? AND expires_at > ?",
            (row["server_id"], float(now))).fetchone()["n"]
        row["open_attempts"] = conn.execute(
            "SELECT count(*) AS n FROM attempts WHERE server_id = ? AND state IN ('placed','ringing','answered')",
            (row["server_id"],)).fetchone()["n"]
        out.append(row)
    return out


# -- the leased hopper ------------------------------------------------------------------------------------
def claim(store: Store, server_id: str, campaign: str, now: float, limit: int,
          lease_seconds: float) -> list[core.Candidate]:
    """Lease up to `limit` due debtors of `campaign` to `server_id` until now + lease_seconds, best first
    (the order of `core.due_debtors`): debtors another server holds a live lease on, or has a call in flight
    to, are skipped. Returns the debtors this server now holds."""
    if limit <= 0:
        return []
    with store.transaction(lock=f"hopper:{server_id}") as conn:
        rows = conn.execute(_CLAIM_SQL, (campaign, float(now), server_id, float(now), int(limit))).fetchall()
        if not rows:
            return []
        conn.executemany(
            "INSERT INTO hopper_leases(debtor_id, campaign, server_id, leased_at, expires_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(debtor_id) DO UPDATE SET campaign = excluded.campaign, server_id = excluded.server_id,"
            " leased_at = excluded.leased_at, expires_at = excluded.expires_at"
            " WHERE hopper_leases.server_id = excluded.server_id OR hopper_leases.expires_at <= excluded.leased_at",
            [(r["debtor_id"], campaign, server_id, float(now), float(now) + lease_seconds) for r in rows])
        ids = [r["debtor_id"] for r in rows]
        held = {r[0] for r in conn.execute(
            f"SELECT debtor_id FROM hopper_leases WHERE server_id = ? AND leased_at = ?"
            f" AND debtor_id IN ({','.join('?' * len(ids))})", (server_id, float(now), *ids))}
        return [core.candidate_of(conn, r) for r in rows if r["debtor_id"] in held]


def release(store: Store | Conn, server_id: str, debtor_ids: list[str]) -> None:
    """Give leases back (the call was placed — its open attempt keeps others off — or not placed)."""
    if not debtor_ids:
        return
    # only this server writes its own leases' rows: the store lock shared, as for the claim (on PostgreSQL a
    # plain transaction would take it exclusive and queue every server's claims behind this one)
    with (store.transaction(lock=f"hopper:{server_id}") if isinstance(store, Store) else tx(store)) as conn:
        conn.execute(f"DELETE FROM hopper_leases WHERE server_id = ? AND debtor_id IN ({','.join('?' * len(debtor_ids))})",
                     (server_id, *debtor_ids))


def leases(store: Store | Conn, now: float, server_id: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM hopper_leases WHERE expires_at > ?", [float(now)]
    if server_id is not None:
        sql += " AND server_id = ?"
        args.append(server_id)
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY debtor_id", args)]


# -- a silent server's calls ------------------------------------------------------------------------------
def silent_servers_open(store: Store | Conn, me: str, heard_before: float) -> list[dict[str, Any]]:
    """Open attempts of other servers not heard from since `heard_before` (no heartbeat, or a stale one)."""
    return [dict(r) for r in conn_of(store).execute(
        "SELECT t.* FROM attempts t JOIN servers s ON s.server_id = t.server_id"
        " WHERE t.state IN ('placed','ringing','answered') AND t.server_id <> ? AND s.heartbeat_at < ?"
        " ORDER BY t.placed_at, t.id", (me, float(heard_before)))]


def mark_orphaned(store: Store, call_id: str, *, by: str, now: float, heard_before: float) -> bool:
    """One open attempt of a silent server becomes `unknown` (it counts as an attempt; its next allowed time
    is left as it is — never sooner), with an `orphaned` call event naming who marked it. False when the
    attempt is no longer open or its server spoke again meanwhile (checked in the same transaction)."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT t.server_id FROM attempts t JOIN servers s ON s.server_id = t.server_id WHERE t.id = ?"
            " AND t.state IN ('placed','ringing','answered') AND s.heartbeat_at < ?",
            (call_id, float(heard_before))).fetchone()
        if row is None:
            return False
        core.update_attempt(conn, call_id, state="unknown", outcome="unknown", ended_at=now, at=now,
                            actor=f"server:{by}")
        core.record_call_event(conn, call_id, "orphaned", now, {"server": row["server_id"], "by": by})
    return True
