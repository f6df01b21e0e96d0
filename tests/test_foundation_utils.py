"""Shared foundations: YAML errors with file/line/field, log masking, the clock, the store's migrations."""

import pytest

from common.clock import Clock, parse_at
from common.log import kv, mask_phone
from common.yamlfile import ConfigError, load_text
from dialer.store import Store
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines


def test_yaml_syntax_error_names_file_and_line():
    with pytest.raises(ConfigError) as err:
        load_text("name: x\nsegments: [\n", "c.yaml")
    assert err.value.file == "c.yaml" and err.value.line == 3


def test_yaml_duplicate_key_is_an_error():
    with pytest.raises(ConfigError) as err:
        load_text("a: 1\nb: 2\na: 3\n", "d.yaml")
    assert err.value.line == 3 and "duplicate key 'a'" in str(err.value)


def test_located_error_points_at_field():
    loc = load_text("name: x\nsegments:\n  - script: m1\n  - script: nope\n", "c.yaml")
    err = loc.error(("segments", 1, "script"), "unknown script id 'nope'")
    assert str(err) == "c.yaml:4: segments[1].script: unknown script id 'nope'"


def test_logs_mask_phone_numbers_and_ids():
    line = kv("dial", phone="+8613800138000", debtor_id="D000123", outcome="busy")
    assert "13800138000" not in line and "8000" in line and "D000123" not in line
    assert mask_phone("+8613800138000").endswith("8000")


def test_clock_at_runs_from_given_time():
    at = parse_at("2026-11-23T10:00:00+08:00")
    now = Clock(at).now()
    assert abs((now - at).total_seconds()) < 1.0
    with pytest.raises(ValueError):
        parse_at("2026-11-23T10:00:00")


def test_store_migrations_are_recorded_once(tmp_path):
    s = Store(tmp_path / "d.db")
    versions = {r[0] for r in s.query("SELECT version FROM schema_migrations")}
    assert s.migrate() == []  # second run applies nothing
    s.close()
    s2 = Store(tmp_path / "d.db")
    assert {r[0] for r in s2.query("SELECT version FROM schema_migrations")} == versions
    if s2.engine == "sqlite":
        assert s2.query_one("PRAGMA journal_mode")[0] == "wal"


def test_transaction_rolls_back_on_error(tmp_path):
    s = Store(tmp_path / "d.db")
    s.conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with s.transaction() as c:
            c.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert s.query_one("SELECT count(*) FROM t")[0] == 0


def test_write_private_is_owner_only_from_the_start_and_replaces_atomically(tmp_path):
    from common.files import write_private

    target = tmp_path / "secret.json"
    (tmp_path / "secret.json.tmp").write_text("left over by a crash")
    (tmp_path / "secret.json.tmp").chmod(0o644)
    write_private(target, '{"secret": "s1"}')
    assert target.read_text() == '{"secret": "s1"}'
    assert target.stat().st_mode & 0o777 == 0o600
    write_private(target, '{"secret": "s2"}')
    assert target.read_text() == '{"secret": "s2"}'
    assert not (tmp_path / "secret.json.tmp").exists()
