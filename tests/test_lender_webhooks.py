"""Outcome webhooks from a durable outbox: each event's outbox row commits with the event itself; a receiver on
127.0.0.1 that fails its first deliveries and is down while the delivering process is killed with SIGKILL still
receives every event exactly once by idempotency key after both come back; every signature verifies."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.api.webhooks import SIGNATURE_HEADER, sign, verify
from dialer.cli import main
from dialer.store import Store, core
from dialer.store import outbox as ob
from dialer.store.gate import add_cease
from dialer.telephony.harness import claim_ports
from tests.test_lender_payments import AT, _store
from tests.engines import both_engines, db_target

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent


class Receiver:
    """The lender's endpoint: answers 503 to its first `fail_first` requests, then records each delivery."""

    def __init__(self, port: int, secret: str, fail_first: int):
        self.port, self.secret, self.fail_left = port, secret, fail_first
        self.deliveries: list[dict] = []  # every 2xx'd request, duplicates included
        self.refused = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    if outer.fail_left > 0:
                        outer.fail_left -= 1
                        outer.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    outer.deliveries.append({
                        "key": self.headers["Idempotency-Key"], "body": json.loads(body),
                        "signed": verify(outer.secret, self.headers[SIGNATURE_HEADER], body, tolerance=300)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def keys(self) -> set[str]:
        with self.lock:
            return {d["key"] for d in self.deliveries}


def _events(store: Store, tag: str, n: int) -> None:
    """n outcome events through the store's own writers (promises, dispositions, cease requests)."""
    for i in range(n):
        debtor = ("W1", "W2", "W3")[i % 3]
        if i % 3 == 0:
            core.record_promise(store, None, debtor, f"A-{debtor}", "10.00", "2026-12-20", AT.timestamp() + i)
        elif i % 3 == 1:
            call_id = f"call-{tag}-{i}"
            with store.transaction() as conn:
                core.insert_attempt(conn, call_id=call_id, debtor_id=debtor, account_id=f"A-{debtor}",
                                    campaign="en_demo", phone="+12125550101", placed_at=AT.timestamp() + i,
                                    inbound=True)
            core.update_attempt(store, call_id, state="ended", outcome="answered", disposition="hardship",
                                ended_at=AT.timestamp() + i + 30)
        else:
            add_cease(store, debtor, source=f"crm-{tag}-{i}", at=AT.timestamp() + i)


def _deliverer(db: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "dialer.cli", "webhooks", "run", "--db", db_target(db),
                             "--base-backoff", "0.2", "--max-backoff", "1"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_outbox_rows_commit_and_roll_back_with_their_event(tmp_path):
    store = _store(tmp_path, ["W1", "W2", "W3"])
    with pytest.raises(RuntimeError, match="inside the event's transaction"):
        ob.outbox_add(store.conn, "promise", {})
    with pytest.raises(ZeroDivisionError):
        with store.transaction():
            core.record_promise(store, None, "W1", "A-W1", "5", "2026-12-01", AT.timestamp())
            1 / 0
    assert core.promises_for(store) == [] and ob.outbox_events(store) == []
    _events(store, "t", 3)
    kinds = [e["kind"] for e in ob.outbox_events(store)]
    assert kinds == ["promise", "disposition", "cease"]
    # a disposition written again unchanged is not a second event
    core.update_attempt(store, "call-t-1", disposition="hardship")
    assert len(ob.outbox_events(store)) == 3
    d = ob.outbox_events(store, kind="disposition")[0]["payload"]
    assert d["disposition"] == "hardship" and d["call_id"] == "call-t-1" and d["debtor_id"] == "W2"
    store.close()


def test_signature_verifies_and_a_changed_body_does_not():
    body = b'{"id":"e1"}'
    header = sign("s3cret", body, t=1_700_000_000)
    assert verify("s3cret", header, body)
    assert not verify("s3cret", header, body + b" ")
    assert not verify("other", header, body)
    assert not verify("s3cret", header, body, tolerance=300, now=1_700_001_000)


def test_every_event_reaches_a_flaky_receiver_exactly_once_across_a_sigkill(tmp_path):
    store = _store(tmp_path, ["W1", "W2", "W3"])
    db = tmp_path / "d.db"
    ports = claim_ports(1)
    port = ports.base
    res = CliRunner().invoke(main, ["webhooks", "add", "crm", f"http://127.0.0.1:{port}/hook", "--db", str(db),
                                    "--json"])
    assert res.exit_code == 0, res.output
    secret = json.loads(res.stdout)["secret"]
    rx = Receiver(port, secret, fail_first=5)
    rx.up()
    procs: list[subprocess.Popen] = []
    try:
        _events(store, "a", 20)
        procs.append(_deliverer(db))
        _wait(lambda: len(rx.keys()) >= 8, 30, "the first deliveries")
        rx.down()                                   # the receiver goes down …
        _events(store, "b", 20)                     # … events keep coming …
        time.sleep(1.0)                             # … and the deliverer fails against a closed port
        procs[0].send_signal(signal.SIGKILL)        # … then the delivering process is killed
        procs[0].wait(timeout=10)
        _events(store, "c", 10)
        st = json.loads(CliRunner().invoke(main, ["webhooks", "status", "--db", str(db), "--json"]).stdout)
        crm = st["endpoints"][0]
        assert st["outbox_events"] == 50 and crm["pending"] > 0 and crm["oldest_pending_age_s"] is not None
        rx.up()                                     # both come back
        procs.append(_deliverer(db))
        every = {e["event_id"] for e in ob.outbox_events(store)}
        _wait(lambda: rx.keys() == every, 60, "every event delivered")
        _wait(lambda: json.loads(CliRunner().invoke(main, ["webhooks", "status", "--db", str(db), "--json"]
                                                    ).stdout)["endpoints"][0]["pending"] == 0, 10, "backlog 0")
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=20) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        rx.down()
        ports.release()
    assert len(every) == 50 and rx.refused == 5
    assert all(d["signed"] for d in rx.deliveries)
    # exactly once by idempotency key: duplicates (a delivery the killed process never recorded) carry the same key
    # and the same body, so the receiver's dedupe yields each event once
    by_key: dict[str, dict] = {}
    for d in rx.deliveries:
        assert by_key.setdefault(d["key"], d["body"]) == d["body"]
    assert set(by_key) == every
    kinds = {b["kind"] for b in by_key.values()}
    assert kinds == {"promise", "disposition", "cease"}
    store.close()
