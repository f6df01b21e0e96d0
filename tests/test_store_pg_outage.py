"""The store across a PostgreSQL outage (the session's throwaway server stopped and started by its PID): a
statement waits for the server and goes on; a transaction the outage cut off kept nothing and runs again;
take_attempt records each attempt exactly once, also when the connection is lost during COMMIT (in doubt);
the wait is bounded (StoreUnavailable). PostgreSQL only: SQLite, a file, has no server to lose."""
from __future__ import annotations

import threading

import pytest

from dialer.store import Store, StoreUnavailable, core
from dialer.store.audit import audit_entries, verify
from dialer.store.pg import PgConn
from tests.test_compliance_gate import NOW, PHONE, RULES, seed, take


@pytest.fixture
def pg(pg_cluster):
    url = pg_cluster.create_database(f"outage{id(pg_cluster) % 10**6}_{threading.get_ident() % 10**6}"
                                     f"_{len(_made)}", template="dialer_template")
    _made.append(url)
    store = Store(url)
    seed(store)
    yield pg_cluster, store
    if pg_cluster.proc is None:  # a test that failed while the server was down: bring it back for the others
        pg_cluster.start_server()
    store.close()


_made: list[str] = []


def _back_after(cluster, seconds: float) -> threading.Thread:
    """Start the stopped server again after `seconds` (in a thread: the test's own call is waiting)."""
    t = threading.Timer(seconds, cluster.start_server)
    t.start()
    return t


def test_a_statement_waits_for_the_restarted_server_and_goes_on(pg):
    cluster, store = pg
    assert store.query_one("SELECT count(*) FROM debtors")[0] == 1
    cluster.stop_server()
    t = _back_after(cluster, 1.5)
    assert store.query_one("SELECT count(*) FROM debtors")[0] == 1   # waited, reconnected, answered
    t.join()
    assert store.conn.outages == 1
    with store.transaction() as conn:                                  # and transactions work again
        conn.execute("UPDATE debtors SET name='M' WHERE debtor_id='d1'")
    assert store.query_one("SELECT name FROM debtors")[0] == "M"


def test_a_transaction_cut_off_keeps_nothing_and_runs_again(pg):
    cluster, store = pg
    with pytest.raises(StoreUnavailable) as err:
        with store.transaction() as conn:
            conn.execute("UPDATE debtors SET name='cut' WHERE debtor_id='d1'")
            cluster.stop_server()
            conn.execute("UPDATE debtors SET lang='en' WHERE debtor_id='d1'")
    assert not err.value.in_doubt                                      # known: it did not commit
    cluster.start_server()
    assert tuple(store.query_one("SELECT name, lang FROM debtors")) == ("N", "zh")
    # a statement after the loss inside the same transaction never runs outside it
    with pytest.raises(StoreUnavailable):
        with store.transaction() as conn:
            conn.execute("UPDATE debtors SET name='x' WHERE debtor_id='d1'")
            cluster.stop_server()
            cluster.start_server()
            conn.execute("UPDATE debtors SET lang='fr' WHERE debtor_id='d1'")
    assert tuple(store.query_one("SELECT name, lang FROM debtors")) == ("N", "zh")


def test_take_attempt_through_an_outage_records_the_attempt_once(pg):
    cluster, store = pg
    cluster.stop_server()
    t = _back_after(cluster, 1.0)
    d = take(store, "out-1")
    t.join()
    assert d.allowed
    assert [r[0] for r in store.query("SELECT id FROM attempts")] == ["out-1"]
    assert len(audit_entries(store, kind="attempt.placed")) == 1 and verify(store).ok


@pytest.mark.parametrize("committed", [True, False])
def test_take_attempt_in_doubt_is_looked_up_not_doubled(pg, monkeypatch, committed):
    """The connection is lost while COMMIT is under way: committed or not, the attempt is there once."""
    cluster, store = pg
    real = PgConn.commit
    calls = {"n": 0}

    def commit_then_lose(self):
        calls["n"] += 1
        if calls["n"] == 1:
            if committed:
                real(self)
            else:
                self.rollback()
            self._c.close()  # the connection goes; the answer to COMMIT never came
            raise self._lost(RuntimeError("server closed the connection during COMMIT"), in_doubt=True)
        return real(self)

    monkeypatch.setattr(PgConn, "commit", commit_then_lose)
    d = take(store, "doubt-1")
    assert d.allowed and d.phone == PHONE
    assert [r[0] for r in store.query("SELECT id FROM attempts")] == ["doubt-1"]
    assert len(audit_entries(store, kind="attempt.placed")) == 1 and verify(store).ok
    # the next attempt the same day is decided on the one recorded (the gate's gap rule, not a second row)
    again = take(store, "doubt-2", now=NOW)
    assert not again.allowed and store.query_one("SELECT count(*) FROM attempts")[0] == 1


def test_the_wait_is_bounded(pg):
    cluster, store = pg
    store.conn.wait = 0.5
    cluster.stop_server()
    try:
        with pytest.raises(StoreUnavailable) as err:
            take(store, "late-1")
        assert err.value.call_id == "late-1"
        with pytest.raises(StoreUnavailable):
            core.get_attempt(store, "late-1")
        assert not store.conn.ping()
    finally:
        cluster.start_server()
    assert store.conn.ping()
    assert store.query_one("SELECT count(*) FROM attempts")[0] == 0
    assert take(store, "late-2").allowed


def test_the_daemon_pauses_dialing_until_the_server_is_back(pg, caplog):
    """Dialer._tick_or_pause with a hopper whose tick goes through the gate: the server is down longer than
    the daemon's store wait, so the tick fails, no call is placed while it is down, and the attempt in doubt
    that was recorded but never dialled ends 'failed' once the server is back."""
    import asyncio
    import time
    from types import SimpleNamespace

    from dialer.calls import daemon

    cluster, store = pg
    placed: list[float] = []

    class Hopper:
        def __init__(self):
            self.n = 0
            self.escalation = None  # no escalation plan: no SMS/letter tasks to send

        async def tick(self):
            self.n += 1
            if take(store, f"tick-{self.n}").allowed:
                placed.append(time.monotonic())

        def idle(self):
            return False

    fake = SimpleNamespace(store=store, hopper=Hopper(), calls={}, _stopping=asyncio.Event(), ports=None,
                           clock=SimpleNamespace(timestamp=lambda: NOW.timestamp()))
    fake._after_outage = lambda doubt: daemon.Dialer._after_outage(fake, doubt)
    store.conn.wait = 30.0
    # an in-doubt attempt the outage left behind: recorded, never dialled (the gate's COMMIT answer was lost)
    doubt = take(store, "doubt-x", debtor_id="d1")
    assert doubt.allowed

    async def go():
        cluster.stop_server()
        t = _back_after(cluster, daemon.STORE_WAIT + 2.0)
        real_tick = fake.hopper.tick

        async def tick_in_doubt():  # the tick's take_attempt is the one that cannot tell whether it committed
            try:
                await real_tick()
            except StoreUnavailable as exc:
                exc.call_id = "doubt-x"
                raise
        fake.hopper.tick = tick_in_doubt
        assert await daemon.Dialer._tick_or_pause(fake, True) is False     # paused, then back
        assert cluster.proc is not None                                    # it returned once the server was back
        t.join()
        assert store.conn.wait == daemon.STORE_WAIT
        assert not placed                                                  # nothing placed while it was down
        fake.hopper.tick = real_tick
        assert await daemon.Dialer._tick_or_pause(fake, True) is False     # dials on
        return placed

    asyncio.run(go())
    assert "daemon.store_lost" in caplog.text and "daemon.store_back" in caplog.text and "finished=1" in caplog.text
    assert core.get_attempt(store, "doubt-x")["state"] == "ended"
    assert core.get_attempt(store, "doubt-x")["outcome"] == "failed"


def test_after_one_full_wait_the_next_calls_fail_at_once(pg, monkeypatch):
    """Once a call has waited the whole `wait` in vain, the next ones try to connect once each (an event loop
    calling the store many times must not stand still for `wait` at every call)."""
    cluster, store = pg
    tries = []
    real = PgConn._connect

    def counting(self, timeout):
        tries.append(timeout)
        return real(self, timeout)

    monkeypatch.setattr(PgConn, "_connect", counting)
    store.conn.wait = 1.0
    cluster.stop_server()
    try:
        with pytest.raises(StoreUnavailable):
            core.get_attempt(store, "x")
        first = len(tries)
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                core.get_attempt(store, "x")
        rest = len(tries) - first
    finally:
        cluster.start_server()
    assert first >= 3 and rest == 5                 # backoff within the wait, then one try per call
    assert core.get_attempt(store, "x") is None     # back: reconnected on the next call
    assert store.conn.outages == 1
