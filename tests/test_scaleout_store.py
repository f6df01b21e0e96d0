"""Several dialer servers on one store (issue 24), on SQLite and PostgreSQL: attempts carry the server that
placed them and a restart settles only its own; the leased hopper (claims never overlap, leases expire, a
race of two processes takes disjoint debtors); heartbeats and `dialer status`; a silent server's open calls
marked unknown by another after the takeover time, counted as attempts and never a reason to call sooner."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.calls.hopper import Hopper, ServerIdInUse
from dialer.campaign.config import load_campaign
from dialer.cli import main
from dialer.gate.account import load_history, take_attempt
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store import servers as servers_store
from dialer.telephony.ami import TrackedCall
from tests.engines import both_engines, db_target

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "compliance_rules.yaml")
AT = datetime.fromisoformat("2026-11-23T11:00:00-05:00")
T = AT.timestamp()
CAMP = load_campaign(REPO / "campaigns" / "en_demo.yaml")


def _store(path: Path, n: int) -> Store:
    store = Store(path)
    core.upsert_campaign(store, CAMP)
    core.import_debtors(store, [
        {"debtor_id": f"D{i:02d}", "name": f"Debtor {i}", "phones": f"+121255502{i:02d}", "id_last4": "1234",
         "birth_year": "1980", "account_id": f"A-{i:02d}", "amount_owed": "100.00", "currency": "USD",
         "days_past_due": "10", "due_date": "2026-11-13", "timezone": "America/New_York",
         "customer_type": "first", "lang": "en", "contacts": ""} for i in range(n)], CAMP.name)
    return store


def _take(store: Store, debtor: str, server: str, at: float = T, call_id: str | None = None):
    return take_attempt(store, call_id=call_id or f"{server}-{debtor}-{at}", debtor_id=debtor, account_id=None,
                        campaign=CAMP.name, phone=None, rules=RULES, now=datetime.fromtimestamp(at, AT.tzinfo),
                        server_id=server)


# -- server identity ------------------------------------------------------------------------------------------
def test_attempts_carry_their_server_and_a_restart_sees_only_its_own(tmp_path):
    store = _store(tmp_path / "s.db", 3)
    assert _take(store, "D00", "alpha").allowed and _take(store, "D01", "beta").allowed
    with store.transaction() as conn:  # placed before servers had names
        core.insert_attempt(conn, call_id="old", debtor_id="D02", account_id=None, campaign=CAMP.name,
                            phone="+12125550202", placed_at=T)
    rows = {r["id"]: r["server_id"] for r in core.open_attempts(store)}
    assert rows == {f"alpha-D00-{T}": "alpha", f"beta-D01-{T}": "beta", "old": None}
    assert [r["id"] for r in core.open_attempts(store, "alpha")] == [f"alpha-D00-{T}", "old"]
    assert [r["id"] for r in core.open_attempts(store, "beta")] == [f"beta-D01-{T}", "old"]
    audit = store.query_one("SELECT payload_json FROM audit_log WHERE kind = 'attempt.placed' AND subject = ?",
                            (f"beta-D01-{T}",))
    assert json.loads(audit[0])["server"] == "beta"


# -- the leased hopper ----------------------------------------------------------------------------------------
def test_claims_of_two_servers_never_overlap_and_leases_expire(tmp_path):
    store = _store(tmp_path / "s.db", 5)
    a = servers_store.claim(store, "alpha", CAMP.name, T, 3, lease_seconds=30)
    b = servers_store.claim(store, "beta", CAMP.name, T + 1, 5, lease_seconds=30)
    ids_a, ids_b = {c.debtor_id for c in a}, {c.debtor_id for c in b}
    assert len(ids_a) == 3 and ids_b == {f"D{i:02d}" for i in range(5)} - ids_a
    assert servers_store.claim(store, "gamma", CAMP.name, T + 2, 5, lease_seconds=30) == []
    # alpha claims again: it renews its own leases (beta's stay beta's)
    assert {c.debtor_id for c in servers_store.claim(store, "alpha", CAMP.name, T + 3, 5, 30)} == ids_a
    # beta gives back what it did not dial: free at once
    servers_store.release(store, "beta", sorted(ids_b))
    assert {c.debtor_id for c in servers_store.claim(store, "gamma", CAMP.name, T + 4, 5, 30)} == ids_b
    # alpha dies holding its leases (until T+33): nobody takes them before they expire, then gamma does
    assert {c.debtor_id for c in servers_store.claim(store, "gamma", CAMP.name, T + 32, 5, 30)} == ids_b
    assert {c.debtor_id for c in servers_store.claim(store, "gamma", CAMP.name, T + 34, 5, 30)} == ids_a | ids_b


def test_a_debtor_with_a_call_in_flight_on_another_server_is_never_claimed(tmp_path):
    store = _store(tmp_path / "s.db", 2)
    assert _take(store, "D00", "alpha").allowed
    got = servers_store.claim(store, "beta", CAMP.name, T + 1, 5, lease_seconds=30)
    assert [c.debtor_id for c in got] == ["D01"]


def _claim_worker(db: str, server: str, barrier, results) -> None:
    """A server's hopper passes: claim 3, take an attempt for each (the gate), give the leases back."""
    store = Store(db)
    barrier.wait()
    dialled = []
    for k in range(10):
        got = servers_store.claim(store, server, CAMP.name, T + k * 0.01, 3, 600)
        for c in got:
            if _take(store, c.debtor_id, server, at=T + k * 0.01).allowed:
                dialled.append(c.debtor_id)
        servers_store.release(store, server, [c.debtor_id for c in got])
    blocked = store.query_one("SELECT count(*) AS n FROM gate_blocks")["n"]
    results.put((server, (dialled, blocked)))
    store.close()


def test_two_processes_claiming_at_once_dial_disjoint_debtors(tmp_path):
    path = tmp_path / "s.db"
    _store(path, 40).close()
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claim_worker, args=(str(path), s, barrier, results)) for s in ("alpha", "beta")]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    (a, _), (b, blocked) = got["alpha"], got["beta"]
    assert not set(a) & set(b), "a debtor was dialled by both servers"
    assert len(set(a)) == len(a) and len(set(b)) == len(b)
    assert len(a) + len(b) == 40  # 2 x 10 passes of 3 want 60: all 40 are dialled, each once
    store = Store(path)
    assert blocked == 0 and store.query_one("SELECT count(*) AS n FROM gate_blocks")["n"] == 0  # no collisions
    assert store.query_one("SELECT count(*) AS n FROM attempts")["n"] == 40


# -- heartbeats and dialer status ------------------------------------------------------------------------------
def test_status_lists_servers_heartbeats_lines_and_leases(tmp_path):
    path = tmp_path / "s.db"
    store = _store(path, 4)
    servers_store.register(store, "alpha", host="h1", pid=101, now=T, line_limit=4)
    servers_store.register(store, "beta", host="h2", pid=202, now=T, line_limit=6)
    servers_store.heartbeat(store, "alpha", T + 100, lines_in_use=2)
    servers_store.claim(store, "alpha", CAMP.name, T + 100, 2, lease_seconds=60)
    assert _take(store, "D03", "alpha").allowed
    runner = CliRunner()
    at = datetime.fromtimestamp(T + 110, AT.tzinfo).isoformat()
    res = runner.invoke(main, ["status", "--db", db_target(path), "--at", at, "--json"])
    assert res.exit_code == 0, res.output
    rows = {s["server"]: s for s in json.loads(res.output)["servers"]}
    assert rows["alpha"]["state"] == "running" and rows["alpha"]["heartbeat_age_s"] == 10
    assert (rows["alpha"]["lines_in_use"], rows["alpha"]["line_limit"], rows["alpha"]["leases"],
            rows["alpha"]["open_calls"]) == (2, 4, 2, 1)
    assert rows["beta"]["state"] == "silent" and rows["beta"]["leases"] == 0
    servers_store.stopped(store, "alpha", T + 120)
    res = runner.invoke(main, ["status", "--db", db_target(path), "--at", at])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split()[:4] == ["server", "host", "pid", "state"]
    assert lines[1].split()[:4] == ["alpha", "h1", "101", "stopped"] and " 0/4 " in lines[1]
    assert lines[2].split()[:4] == ["beta", "h2", "202", "silent"]


# -- the hopper with a server id ----------------------------------------------------------------------------
class FakeAMI:
    def __init__(self):
        self.connected = asyncio.Event()
        self.connected.set()
        self.placed: list[tuple[str, str]] = []

    async def originate(self, call_id, number, **kw):
        self.placed.append((call_id, number))
        return TrackedCall(call_id=call_id, number=number, placed_at=0.0)


class Clock:
    def __init__(self, t: float):
        self.t = t

    def now(self):
        return datetime.fromtimestamp(self.t, AT.tzinfo)

    def timestamp(self):
        return self.t


def _hopper(store: Store, server: str, clock: Clock) -> Hopper:
    class Floor:
        pacing: dict = {}

    h = Hopper(store, RULES, {CAMP.name: CAMP}, clock, {}, Floor(), None, lambda call: None, lambda e: None)
    h.server_id = server
    h.ami = FakeAMI()
    h.rank = lambda c: c  # type: ignore[method-assign]
    return h


def test_two_hoppers_fill_their_own_lines_and_never_dial_one_debtor_twice(tmp_path):
    path = tmp_path / "s.db"
    _store(path, 10).close()
    clock = Clock(T)
    a, b = _hopper(Store(path), "alpha", clock), _hopper(Store(path), "beta", clock)
    a.register()
    b.register()

    async def both():
        return await asyncio.gather(a.tick(), b.tick())

    placed = asyncio.run(both())
    assert placed == [CAMP.line_limit, CAMP.line_limit]
    da = {c.debtor_id for c in a.calls.values()}
    db_ = {c.debtor_id for c in b.calls.values()}
    assert len(da) == len(db_) == CAMP.line_limit and not da & db_
    rows = core.open_attempts(a.store)
    assert {r["server_id"] for r in rows if r["debtor_id"] in da} == {"alpha"}
    assert {r["server_id"] for r in rows if r["debtor_id"] in db_} == {"beta"}
    assert servers_store.leases(a.store, T) == []  # placed or given back: no lease outlives the pass
    assert a.store.query_one("SELECT count(*) AS n FROM gate_blocks")["n"] == 0  # no in-flight refusals


def test_a_second_live_process_under_one_server_id_is_refused(tmp_path):
    store = _store(tmp_path / "s.db", 1)
    servers_store.register(store, "alpha", host="elsewhere", pid=1, now=T, line_limit=4)
    h = _hopper(store, "alpha", Clock(T + 5))
    with pytest.raises(ServerIdInUse, match="alpha"):
        h.register()
    h.unregister()  # a refused start leaves the other's row alone
    assert servers_store.server(store, "alpha")["status"] == "running"
    assert servers_store.server(store, "alpha")["host"] == "elsewhere"
    later = _hopper(store, "alpha", Clock(T + 60))  # silent for longer than DEAD_AFTER: the name is free
    later.register()
    assert servers_store.server(store, "alpha")["pid"] != 1


def test_a_silent_servers_calls_become_unknown_only_after_the_takeover_time(tmp_path):
    store = _store(tmp_path / "s.db", 2)
    servers_store.register(store, "alpha", host="h1", pid=1, now=T, line_limit=4)
    assert _take(store, "D00", "alpha", call_id="alpha-call").allowed
    before = core.get_debtor(store, "D00")["next_allowed_at"]
    clock = Clock(T + 60)
    beta = _hopper(store, "beta", clock)
    beta.register()
    beta.takeover_after = 300
    assert beta.presence(force=True) == 0  # alpha silent for a minute: its call is still its own
    assert core.get_attempt(store, "alpha-call")["state"] == "placed"
    assert asyncio.run(beta.tick()) == 1  # beta dials D01 only: D00 has a call in flight on alpha
    assert [c.debtor_id for c in beta.calls.values()] == ["D01"]
    clock.t = T + 301
    assert beta.presence(force=True) == 1
    att = core.get_attempt(store, "alpha-call")
    assert (att["state"], att["outcome"], att["server_id"]) == ("unknown", "unknown", "alpha")
    assert core.call_events(store, "alpha-call", "orphaned")[0]["data"] == {"server": "alpha", "by": "beta"}
    # it counts as an attempt, and the debtor's next allowed time did not move earlier
    hist = load_history(store, "D00", clock.t)
    assert [a.outcome for a in hist.attempts] == ["unknown"]
    assert core.get_debtor(store, "D00")["next_allowed_at"] == before
    assert [r["debtor_id"] for r in core.open_attempts(store, "beta")] == ["D01"]  # beta's own call only
    # alpha, when it comes back, still settles it from its own CDR
    assert [r["id"] for r in core.open_attempts(store, "alpha")] == ["alpha-call"]
    assert beta.presence(force=True) == 0  # nothing twice


def test_a_server_heard_again_keeps_its_calls(tmp_path):
    store = _store(tmp_path / "s.db", 1)
    servers_store.register(store, "alpha", host="h1", pid=1, now=T, line_limit=4)
    assert _take(store, "D00", "alpha", call_id="alpha-call").allowed
    rows = servers_store.silent_servers_open(store, "beta", T + 10)
    servers_store.heartbeat(store, "alpha", T + 20, 1)  # alpha spoke between the look and the mark
    assert not servers_store.mark_orphaned(store, rows[0]["id"], by="beta", now=T + 21, heard_before=T + 10)
    assert core.get_attempt(store, "alpha-call")["state"] == "placed"


def test_a_single_server_without_an_id_dials_as_before(tmp_path):
    store = _store(tmp_path / "s.db", 3)
    h = _hopper(store, "x", Clock(T))
    h.server_id = None
    assert asyncio.run(h.tick()) == 3
    assert {r["server_id"] for r in core.open_attempts(store)} == {None}
    assert store.query_one("SELECT count(*) AS n FROM servers")["n"] == 0


# -- a restart settles its own calls from its own CDR ---------------------------------------------------------
def test_a_restarted_server_settles_its_own_calls_and_nobody_elses(tmp_path):
    from dialer.calls.daemon import Dialer
    from dialer.telephony.pbx import PbxConnection
    from tests.test_durability_recovery import FakeAMI as ReconcileAMI
    from tests.test_durability_recovery import _write_cdr, _write_cel

    store = _store(tmp_path / "s.db", 3)
    servers_store.register(store, "alpha", host="h1", pid=1, now=T, line_limit=4)
    for debtor, server in (("D00", "alpha"), ("D01", "beta"), ("D02", "alpha")):
        assert _take(store, debtor, server, call_id=f"{server}-{debtor}").allowed
    # beta marked alpha's D02 call unknown while alpha was silent; alpha's CDR still knows how it ended
    assert servers_store.mark_orphaned(store, "alpha-D02", by="beta", now=T + 700, heard_before=T + 1)
    cdr = tmp_path / "pbx" / "log" / "cdr-csv" / "Master.csv"
    _write_cdr(cdr, [("alpha-D00", "NO ANSWER", ""), ("alpha-D02", "BUSY", "")])
    _write_cel(cdr.parent.parent / "cel-custom" / "Master.csv", [("alpha-D00", 19, False), ("alpha-D02", 17, False)])
    pbx = PbxConnection(ami_port=0, ami_user="x", ami_secret="x", agi_port=0, agi_token="t", cdr_path=str(cdr))

    async def restart():
        dialer = Dialer(store, pbx, RULES, [CAMP], clock=Clock(T + 800), tts=object(), server_id="alpha")
        dialer.ami = ReconcileAMI(set())
        found = await dialer.reconcile()
        for _ in range(200):
            if not dialer._recovering:
                break
            await asyncio.sleep(0.05)
        await dialer.stop()
        return found

    assert asyncio.run(restart()) == 2
    got = {c: core.get_attempt(store, c) for c in ("alpha-D00", "beta-D01", "alpha-D02")}
    assert (got["alpha-D00"]["state"], got["alpha-D00"]["outcome"]) == ("ended", "no_answer")
    assert (got["alpha-D02"]["state"], got["alpha-D02"]["outcome"]) == ("ended", "busy")
    assert got["beta-D01"]["state"] == "placed" and got["beta-D01"]["outcome"] is None  # beta's live call
    assert core.open_attempts(store, "alpha") == []
