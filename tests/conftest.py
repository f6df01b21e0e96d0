"""Shared fixtures. Asterisk fixtures start real PBX + carrier instances on loopback, each on a block of
free ports it claims (dialer.telephony.harness.claim_ports), so test processes can share a machine."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    if shutil.which("asterisk") is None or shutil.which("sipp") is None:
        skip = pytest.mark.skip(reason="Asterisk/SIPp not installed: run scripts/setup")
        for item in items:
            if "asterisk" in item.keywords:
                item.add_marker(skip)
    # End-to-end files first: they take minutes, the unit files seconds, so parallel workers
    # (scripts/test) start the long ones early and the short ones fill in at the end.
    e2e_files = {item.path for item in items if "asterisk" in item.keywords}
    items.sort(key=lambda item: item.path not in e2e_files)  # stable: each file's tests stay in order


@pytest.fixture(scope="session")
def tts(tmp_path_factory):
    from agi.media.tts import TTS

    return TTS(cache_dir=tmp_path_factory.mktemp("prompts"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A running PBX + carrier + 2 SIPp collectors with the test behaviour file."""
    from dialer.telephony.harness import Harness

    h = Harness(tmp_path_factory.mktemp("run"), agents=2, behaviours=REPO / "tests" / "data" / "harness_behaviours.yaml",
                queue_timeout=20)
    h.up()
    try:
        yield h
    finally:
        h.down()


# -- the store on both engines ---------------------------------------------------------------------------
# A test module runs against SQLite and PostgreSQL with `pytestmark = pytest.mark.usefixtures("store_engine")`
# (tests/engines.py: `both_engines`, and `sqlite_only` for a test about the SQLite file itself). On the
# PostgreSQL leg every `Store(path)` the test opens (in this process or a forked one) is a fresh database of
# a throwaway server this session starts (one per xdist worker), created from a migrated template; the same
# path opens the same database again. The server not starting is an error, never a skip.
@pytest.fixture(scope="session")
def pg_cluster():
    from dialer.store import Store
    from dialer.store.pgcluster import Cluster
    from dialer.telephony.harness import claim_ports

    block = claim_ports(1)
    cluster = Cluster()
    try:
        cluster.start(block.base)
        Store(cluster.create_database("dialer_template")).close()
        yield cluster
    finally:
        cluster.stop()
        block.release()


@pytest.fixture(params=["sqlite", "postgres"])
def store_engine(request, monkeypatch):
    if request.param == "sqlite":
        yield "sqlite"
        return
    import itertools

    from dialer.store import Store, is_postgres_url

    cluster = request.getfixturevalue("pg_cluster")
    databases: dict[str, str] = {}
    opened: list[Store] = []
    names = itertools.count(1)
    original = Store.__init__
    prefix = f"t{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}_"

    def init(self, path=None, *, migrate=True):
        if path is None or is_postgres_url(path) or str(path) == ":memory:":
            original(self, path, migrate=migrate)
        else:
            key = str(Path(path).resolve())
            if key not in databases:
                databases[key] = cluster.create_database(f"{prefix}{next(names)}", template="dialer_template")
            original(self, databases[key], migrate=migrate)
            Path(path).touch()  # as SQLite would create it (commands check `--db` exists)
            self.path = Path(path)  # files kept beside the database (the audit head) stay in the test's tmp
        opened.append(self)

    def target(path):
        key = str(Path(path).resolve())
        if key not in databases:
            Store(path).close()
        return databases[key]

    import tests.engines

    monkeypatch.setattr(Store, "__init__", init)
    monkeypatch.setattr(tests.engines, "_target", target)
    yield "postgres"
    for s in opened:
        try:
            s.close()
        except Exception:
            pass
