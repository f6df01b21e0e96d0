"""`dialer audit verify` on a copy of the store: clean, then after an edit with the triggers dropped."""
from __future__ import annotations


from click.testing import CliRunner

from dialer.cli import main
from dialer.store import Store
from dialer.store import audit as audit_log
from dialer.store.audit import write_head
from tests.engines import both_engines, sqlite_only, tamper  # noqa: F401

pytestmark = both_engines


def test_audit_verify_passes_then_catches_an_edit(tmp_path):
    db = tmp_path / "d.db"
    store = Store(db)
    for i in range(5):
        audit_log.audit(store, "dialer", "attempt.placed", f"call-{i}", {"n": i}, 1000.0 + i)
    write_head(store)
    store.close()
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    tamper(store, ["UPDATE audit_log SET payload_json='{\"n\": 99}' WHERE seq=3"])
    bad = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert bad.exit_code == 1
    assert "3" in bad.output
