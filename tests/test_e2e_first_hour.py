"""A new operator's first hour through real Asterisk (issue 17): the Chinese demo end to end, a script
preview whose behaviour entry makes a real call follow the previewed path, two harnesses on the same
ports, and a SIGKILLed demo that leaves nothing `asterisk down` or a rerun cannot stop."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.lexicon import debt_mentions
from dialer.cli import main
from dialer.cli.demo import default_demo_time, run_demo
from dialer.telephony.harness import Harness, HarnessState, Ports, first_busy_port, port_holder

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
PY = [sys.executable, "-m", "dialer.cli"]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_zh_demo_every_outcome_as_the_behaviours_imply(tmp_path):
    lines: list[str] = []
    report = run_demo(tmp_path / "demo", default_demo_time("Asia/Shanghai"), lang="zh", echo=lines.append,
                      max_seconds=200)
    by = {d["debtor_id"]: d for d in report["debtors"]}
    got = {k: (d["disposition"] or ("transferred" if d["agent"] else d["outcome"])) for k, d in by.items()}
    assert got == {"Z001": "promise", "Z002": "busy", "Z003": "no_answer", "Z004": "verification_failed",
                   "Z005": "transferred", "Z006": "machine", "Z007": "no_response", "Z008": "third_party",
                   "Z009": "wrong_number", "Z010": "unallocated"}, got
    # callees who do not verify hear nothing about a debt (the bot's text, and the carrier-side recording
    # is as long as what the bot played)
    for k in ("Z004", "Z006", "Z007", "Z008", "Z009"):
        said = by[k]["bot_said"]
        assert said and not any(debt_mentions(t, "zh") for t in said), (k, said)
        assert not any(amount in t for t in said for amount in ("15200", "46800", "9999", "120000", "1880", "2100"))
    assert any("3200元" in t for t in by["Z001"]["bot_said"])
    assert by["Z001"]["promises"] and report["audit_chain_ok"]
    assert report["screen_pops"] and report["screen_pops"][0]["debtor_id"] == "Z005"
    # the printed report is Chinese
    from dialer.cli.demo import print_report
    out: list[str] = []
    print_report(report, echo=out.append)
    text = "\n".join(lines + out)
    assert "承诺还款" in text and "空号" in text and "机器人：您好，我是示例消费金融的智能语音助手小安。" in text
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    assert han > 500, han
    # the unallocated number is a fact with a history, resettable
    res = CliRunner().invoke(main, ["debtors", "phone-status", "+8613800000010", "--db",
                                    str(tmp_path / "demo" / "dialer.db")])
    assert "unallocated since" in res.output and "call " in res.output


def test_preview_behaviour_makes_the_real_call_follow_the_same_path(tmp_path):
    db = tmp_path / "d.db"
    run = lambda *a: CliRunner().invoke(main, list(a))  # noqa: E731
    assert run("campaign", "load", str(REPO / "campaigns" / "zh_demo.yaml"), "--db", str(db)).exit_code == 0
    assert run("debtors", "import", str(REPO / "campaigns" / "examples" / "zh_debtors.csv"), "--campaign", "zh_demo",
               "--db", str(db)).exit_code == 0
    beh = tmp_path / "b.yaml"
    res = run("script", "preview", "m1_reminder", "--debtor", "Z008", "--answers", "2,1", "--db", str(db),
              "--behaviour-out", str(beh), "--json")
    assert res.exit_code == 0, res.output
    preview = json.loads(res.output)
    said = [t["text"] for t in preview["turns"] if t["speaker"] == "agent"]
    assert preview["outcome"] == "third_party"
    harness = Harness(tmp_path / "run", agents=0, behaviours=beh)
    harness.up()
    try:
        proc = subprocess.run(PY + ["asterisk", "call", "+8613800000008", "--script", "m1_reminder", "--debtor", "Z008",
                                    "--db", str(db), "--run-dir", str(tmp_path / "run"), "--json"],
                              capture_output=True, text=True, timeout=120, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    finally:
        harness.down()
    assert proc.returncode == 0, proc.stderr
    call = json.loads(proc.stdout)
    real = [t["text"] for t in call["turns"] if t.get("speaker") == "agent"]
    keys = [t["text"] for t in call["turns"] if t.get("speaker") == "callee"]
    assert real == said, (real, said)
    assert keys == ["2", "1"] and call["bot_end"] == "third_party" and call["outcome"] == "answered"
    assert call["heard"] and Path(call["heard"]).exists()


def test_two_harnesses_on_the_same_ports_the_second_fails_cleanly(tmp_path):
    first = Harness(tmp_path / "one", agents=1)
    first.up()
    try:
        base = first.state.ports["base"]
        res = subprocess.run(PY + ["asterisk", "up", "--run-dir", str(tmp_path / "two"), "--base-port", str(base),
                                   "--agents", "1"], capture_output=True, text=True, timeout=60, cwd=REPO,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert res.returncode == 1, res.stdout + res.stderr
        err = res.stderr.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert f"port {base + 38} (PBX AMI) is in use by pid {first.state.pbx.pid} (asterisk" in err, err
        assert not (tmp_path / "two" / "harness.json").exists()
        st = first.status()  # the first is untouched
        assert st["running"] and st["pbx"]["pid"] == first.state.pbx.pid and all(a["running"] for a in st["agents"].values())
        first.pbx.ami_login_check()
    finally:
        first.down()


def test_a_sigkilled_demo_leaves_nothing_a_rerun_or_down_cannot_stop(tmp_path):
    workdir = tmp_path / "demo"

    def start_and_kill() -> HarnessState:
        proc = subprocess.Popen(PY + ["demo", "--lang", "zh", "--workdir", str(workdir)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            for line in proc.stdout:
                if "collector phones up" in line:
                    break
            else:
                pytest.fail("the demo never came up")
            time.sleep(1.0)  # calls are being placed
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        return HarnessState.load(workdir / "run")

    old = start_and_kill()
    pids = [old.pbx.pid, old.carrier.pid, *old.sipp_pids.values()]
    assert all(_alive(p) for p in pids)  # still running: nobody stopped them
    new = start_and_kill()  # the rerun stops them first, then comes up on its own ports
    assert not any(_alive(p) for p in pids)
    pids = [new.pbx.pid, new.carrier.pid, *new.sipp_pids.values()]
    res = subprocess.run(PY + ["asterisk", "down", "--run-dir", str(workdir / "run")], capture_output=True, text=True,
                         timeout=60, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 0 and "stopped" in res.stdout
    assert not any(_alive(p) for p in pids)
    # nothing of ours keeps any of its ports: a harness could start on them again. Another test's harness
    # running in parallel may claim the block as soon as `down` releases it, so a port held by a process
    # that is not ours is no failure; one held by a process of this run directory is.
    ports = Ports(base=new.ports["base"], agi=new.ports["agi"])
    held = [(role, port, holder) for role, port in ports.needed(len(new.agents))
            if first_busy_port(port, 1) is not None and (holder := port_holder(port))
            and (str(workdir) in holder or any(holder.startswith(f"pid {p} ") for p in pids))]
    assert not held, held


def test_a_cn_trunk_with_the_sample_pjsip_local_loads_in_asterisk(tmp_path):
    h = Harness(tmp_path / "run", agents=0, trunk=("127.0.0.1", 5999), trunk_country="CN", dial_format="national",
                pjsip_extra=REPO / "asterisk-conf" / "pjsip_local.conf.sample")
    h.up()
    try:
        endpoint = h.pbx.rx("pjsip show endpoint carrier")
        assert "carrier-auth" in endpoint and "(alaw)" in endpoint, endpoint
        assert "carrier-reg" in h.pbx.rx("pjsip show registrations")
        modules = h.pbx.rx("module show like pjsip")
        for m in ("res_pjsip_outbound_authenticator_digest", "res_pjsip_registrar", "res_pjsip_nat"):
            assert m in modules  # auth towards the carrier, real phones registering, NAT
        assert h.connection.dial_plan().format == "national"
    finally:
        h.down()
