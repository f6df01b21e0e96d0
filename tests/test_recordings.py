"""Recordings without Asterisk: sealing leg files into the audit log, retention and `dialer recordings prune`,
audited playback/export, and `dialer audit verify` telling a pruned file from a deleted or changed one.
(The PBX writing the files: tests/test_e2e_recordings.py.)"""
from __future__ import annotations

import json
import wave
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main
from dialer.qa.recordings import is_closed, seal_now
from dialer.qa.rules import rules_from_text
from dialer.store import Store, core
from dialer.store import recordings as rec_store
from dialer.store.audit import audit_entries, verify
from tests.engines import both_engines

pytestmark = both_engines

REPO = Path(__file__).resolve().parent.parent
DAY = 86400.0
T0 = 1_700_000_000.0
CAMPAIGN = """\
name: m1
profile: cn
locale: zh-CN
institution: 华信银行
callback_number: "+864001234567"
caller_id: "+8610555000"
dial_mode: progressive
line_limit: 2
segments:
  - {name: early, dpd: M1, script: dtmf_verify}
"""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _wav(path: Path, seconds: float = 1.0) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x01\x00" * int(8000 * seconds))


@pytest.fixture
def recorded(tmp_path):
    from dialer.campaign.config import load_campaign_text

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    db = tmp_path / "d.db"
    store = Store(db)
    core.upsert_campaign(store, load_campaign_text(CAMPAIGN, "m1.yaml", scripts_dir=scripts,
                                                   rules_file=tmp_path / "none.yaml"), now=T0)
    core.import_debtors(store, [{"debtor_id": "D1", "name": "D1", "phones": "+8613800000001", "account_id": "A-D1",
                                 "amount_owed": "5200", "days_past_due": "15", "customer_type": "first"}], "m1", now=T0)
    rec = tmp_path / "rec"
    rec.mkdir()
    for call, t in (("c-old", T0), ("c-new", T0 + 1000 * DAY)):
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=call, debtor_id="D1", account_id="A-D1", campaign="m1",
                                phone="+8613800000001", placed_at=t)
        core.update_attempt(store, call, at=t + 30, state="ended", answered_at=t + 2, ended_at=t + 30, agent="wang")
        for leg in ("callee", "heard", "mix", "collector", "collector-heard", "collector-mix"):
            _wav(rec / f"{call}-{leg}.wav")
    (rec / "c-old-heardx.wav").write_bytes(b"not a leg")
    return store, rec, db


def test_sealing_writes_each_leg_with_its_call_facts_and_hash(recorded):
    store, rec, _ = recorded
    assert seal_now(store, rec, "c-old", at=T0 + 40) == ["callee", "heard", "mix", "collector",
                                                          "collector-heard", "collector-mix"]
    assert seal_now(store, rec, "c-old", at=T0 + 41) == []  # sealed once
    rows = rec_store.recordings_for(store, "c-old")
    assert {r["campaign"] for r in rows} == {"m1"} and {r["agent"] for r in rows} == {"wang"}
    assert {r["profile"] for r in rows} == {"cn"} and rows[0]["started_at"] == T0 and rows[0]["seconds"] == 1.0
    entries = audit_entries(store, kind="qa.recording", subject="c-old")
    assert [e["payload"]["leg"] for e in entries] == [r["leg"] for r in rows]
    assert verify(store).ok


def test_an_open_file_is_not_sealed(recorded):
    store, rec, _ = recorded
    p = rec / "c-new-callee.wav"
    data = bytearray(p.read_bytes())
    data[4:8] = (0).to_bytes(4, "little")  # MixMonitor has not written the sizes yet
    p.write_bytes(bytes(data))
    assert not is_closed(p)
    assert "callee" not in seal_now(store, rec, "c-new")


def test_verify_fails_on_one_changed_byte_and_on_a_deleted_file(recorded):
    store, rec, _ = recorded
    seal_now(store, rec, "c-old")
    p = rec / "c-old-callee.wav"
    data = bytearray(p.read_bytes())
    data[100] ^= 1
    p.write_bytes(bytes(data))
    res = verify(store)
    assert not res.ok and res.problems == [f"recording of call c-old changed: {p.resolve()} (audit entry 7)"]
    data[100] ^= 1
    p.write_bytes(bytes(data))
    assert verify(store).ok
    (rec / "c-old-mix.wav").unlink()
    res = verify(store)
    assert not res.ok and "deleted without a prune entry" in res.problems[0] and "c-old-mix.wav" in res.problems[0]


def test_prune_keeps_what_retention_covers_and_audits_each_deletion(recorded, tmp_path):
    store, rec, db = recorded
    seal_now(store, rec, "c-old")
    seal_now(store, rec, "c-new")
    runner = CliRunner()
    # 1,829 days after the old call: CN keeps 1,830 days, nothing goes
    at = _iso(T0 + 1829 * DAY)
    out = runner.invoke(main, ["recordings", "prune", "--db", str(db), "--at", at, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["pruned"] == []
    # 1,831 days after: the old call's six legs go, the newer call's stay
    at = _iso(T0 + 1831 * DAY)
    out = runner.invoke(main, ["recordings", "prune", "--db", str(db), "--at", at, "--by", "ops"])
    assert out.exit_code == 0, out.output
    assert "pruned 6 files" in out.output
    assert not list(rec.glob("c-old-*-*.wav")) and not (rec / "c-old-callee.wav").exists()
    assert (rec / "c-new-callee.wav").exists()
    pruned = audit_entries(store, kind="recording.pruned")
    assert len(pruned) == 6 and {e["actor"] for e in pruned} == {"ops"}
    assert {e["payload"]["retention_days"] for e in pruned} == {1830}
    res = verify(store)
    assert res.ok and res.pruned == 6 and res.recordings == 12, res.problems
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 0 and "6 pruned by retention" in out.output, out.output
    # a deletion outside prune is still a deletion
    (rec / "c-new-heard.wav").unlink()
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 1 and "c-new-heard.wav" in out.output and "deleted without a prune entry" in out.output


def test_playback_and_export_are_audited(recorded, tmp_path):
    store, rec, db = recorded
    seal_now(store, rec, "c-new")
    runner = CliRunner()
    dest = tmp_path / "out"
    dest.mkdir()
    out = runner.invoke(main, ["recordings", "export", "c-new", "--leg", "collector", "--to", str(dest),
                               "--db", str(db), "--by", "officer1"])
    assert out.exit_code == 0, out.output
    assert (dest / "c-new-collector.wav").read_bytes() == (rec / "c-new-collector.wav").read_bytes()
    e = audit_entries(store, kind="recording.exported")
    assert len(e) == 1 and e[0]["actor"] == "officer1" and e[0]["subject"] == "c-new"
    assert e[0]["payload"]["leg"] == "collector" and e[0]["payload"]["to"].endswith("c-new-collector.wav")
    out = runner.invoke(main, ["recordings", "export", "c-new", "--leg", "nope", "--to", str(dest), "--db", str(db)])
    assert out.exit_code == 1 and "no leg 'nope'" in out.output
    out = runner.invoke(main, ["recordings", "export", "c-old", "--to", str(dest), "--db", str(db)])
    assert out.exit_code == 1 and "not sealed yet" in out.output
    assert verify(store).ok


def test_playback_is_audited_from_both_commands(recorded, monkeypatch):
    """`dialer recordings play` and `dialer qa show --play` each write who played which call's leg, and when,
    before the file is opened (no audio player here: the command names the file instead)."""
    import dialer.cli.recordings as rec_cli

    store, rec, db = recorded
    seal_now(store, rec, "c-new")
    monkeypatch.setattr(rec_cli, "_player", lambda: None)
    runner = CliRunner()
    out = runner.invoke(main, ["recordings", "play", "c-new", "--leg", "heard", "--db", str(db), "--by", "officer1"])
    assert out.exit_code == 0 and "c-new-heard.wav" in out.output, out.output
    out = runner.invoke(main, ["qa", "show", "c-new", "--play", "collector", "--db", str(db), "--by", "officer2"])
    assert out.exit_code == 0 and "access audited" in out.output, out.output
    played = audit_entries(store, kind="recording.played")
    assert [(e["actor"], e["subject"], e["payload"]["leg"]) for e in played] == [
        ("officer1", "c-new", "heard"), ("officer2", "c-new", "collector")]
    assert all(e["at"] for e in played)
    # a leg that is not there is refused and not logged as played
    out = runner.invoke(main, ["recordings", "play", "c-new", "--leg", "nope", "--db", str(db)])
    assert out.exit_code == 1 and len(audit_entries(store, kind="recording.played")) == 2
    assert verify(store).ok


def test_retention_shape_is_validated_by_the_rules_parser():
    from dialer.qa.rules import QAConfigError

    text = (REPO / "compliance_rules.yaml").read_text()
    assert rules_from_text(text).for_jurisdiction("cn").retention_days >= 1826
    bad = text.replace("retention_days: 1830 ", "retention_days: 365 ")
    with pytest.raises(QAConfigError) as exc:
        rules_from_text(bad, "r.yaml")
    assert "retention_days" in str(exc.value) and "1826" in str(exc.value) and "r.yaml:" in str(exc.value)
    bad = text.replace("live: {conduct.threat: whisper,", "live: {conduct.threat: shout,", 1)
    with pytest.raises(QAConfigError) as exc:
        rules_from_text(bad, "r.yaml")
    assert "conduct.threat" in str(exc.value) and "alert, whisper, end" in str(exc.value)
    # absent: the legal floor
    lines = [ln for ln in text.splitlines() if "retention_days: 1830 " not in ln]
    assert rules_from_text("\n".join(lines)).for_jurisdiction("cn").retention_days == 1826


def test_a_restart_seals_what_a_stopped_daemon_left(recorded):
    from dialer.qa.recordings import seal_pending

    store, rec, _ = recorded
    with store.transaction() as conn:  # a call nobody answered has nothing to seal
        core.insert_attempt(conn, call_id="c-busy", debtor_id="D1", account_id="A-D1", campaign="m1",
                            phone="+8613800000001", placed_at=T0 + 5)
    core.update_attempt(store, "c-busy", at=T0 + 6, state="ended", ended_at=T0 + 6, outcome="busy")
    seal_now(store, rec, "c-old")
    done = seal_pending(store, rec, at=T0 + 1000 * DAY + 60)
    assert done == {"c-new": ["callee", "heard", "mix", "collector", "collector-heard", "collector-mix"]}
    assert seal_pending(store, rec) == {}


def test_list_shows_each_leg_with_its_call_facts(recorded):
    store, rec, db = recorded
    seal_now(store, rec, "c-old")
    out = CliRunner().invoke(main, ["recordings", "list", "--db", str(db)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 6 and all(ln.startswith("c-old ") and "m1" in ln and "collector=wang" in ln for ln in lines)
    rows = [json.loads(x) for x in CliRunner().invoke(main, ["recordings", "list", "--db", str(db), "--json"]).output.splitlines()]
    assert {r["leg"] for r in rows} == {"callee", "heard", "mix", "collector", "collector-heard", "collector-mix"}
