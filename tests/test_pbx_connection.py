"""The PBX connection file: what `dialer asterisk up` writes for `dialer run`, apart from the harness's own
bookkeeping."""
from __future__ import annotations

import stat

from dialer.telephony.harness import Harness, HarnessState, InstanceInfo
from dialer.telephony.pbx import CONNECTION_FILE, PbxConnection


def test_connection_round_trips_and_only_its_owner_reads_it(tmp_path):
    conn = PbxConnection(ami_port=15038, ami_user="dialer", ami_secret="s3cret", agi_port=15573, agi_token="tok",
                         cdr_path=str(tmp_path / "Master.csv"), members=("agent1", "agent2"))
    conn.save(tmp_path)
    assert PbxConnection.load(tmp_path) == conn
    assert stat.S_IMODE((tmp_path / CONNECTION_FILE).stat().st_mode) == 0o600


def test_harness_state_gives_the_daemon_its_connection(tmp_path):
    state = HarnessState(
        run_dir=str(tmp_path), ports={"base": 20000, "agi": 20573}, agi_token="tok",
        pbx=InstanceInfo("pbx", "pbx/asterisk.conf", 20038, "dialer", "pbx-secret", 20060, pid=1234),
        carrier=InstanceInfo("carrier", "carrier/asterisk.conf", 20138, "harness", "carrier-secret", 20160),
        agents=["agent1"], sipp_pids={"agent1": 1235})
    state.save()
    conn = Harness(tmp_path).connection
    assert conn == PbxConnection(ami_port=20038, ami_user="dialer", ami_secret="pbx-secret", agi_port=20573,
                                 agi_token="tok", cdr_path=str(tmp_path / "pbx" / "log" / "cdr-csv" / "Master.csv"),
                                 members=("agent1",))
    assert "carrier-secret" not in repr(conn) and not hasattr(conn, "sipp_pids")
