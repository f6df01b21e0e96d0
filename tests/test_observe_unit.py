"""The observers without Asterisk: the bus, the run's tally, the daemon's narration, metrics and the floor
view on a daemon-shaped state, and the web server's token auth and sub-application mount."""
from __future__ import annotations

import asyncio
import re
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp import web

import dialer.calls.events as ev
from common.clock import FixedClock
from dialer.calls.call import AGENT, BOT, Call
from dialer.gate.rules import load_rules
from dialer.observe import events as oe
from dialer.observe.bus import Bus
from dialer.observe.floor import FloorView
from dialer.observe.live import Observers
from dialer.observe.metrics import Metrics
from dialer.observe.narrate import Narrator, summary_lines
from dialer.observe.tally import Tally
from dialer.pacing.floor import CollectorLive
from dialer.store import Store
from dialer.web.server import TOKEN_FILE, WebServer, build_app, load_or_create_token, read_server_info

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def test_a_failing_subscriber_never_reaches_the_publisher_and_others_still_hear():
    bus = Bus()
    seen: list = []

    def broken(e):
        raise RuntimeError("observer bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append, oe.CallPlaced)
    bus.publish(oe.CallPlaced("c1", "camp", "bot", 1.0))
    bus.publish(oe.GateBlocked("camp", "cap.daily", "3 today", 2.0))  # not of the type asked for
    assert seen == [oe.CallPlaced("c1", "camp", "bot", 1.0)]


def test_the_tally_counts_what_the_summary_prints():
    t = Tally()
    for e in (oe.CallPlaced("a", "c", "bot", 0), oe.CallPlaced("b", "c", "bot", 0),
              oe.GateBlocked("c", "time.window", "21:30 local", 0), oe.GateBlocked("c", "cap.daily", "x", 0),
              oe.GateBlocked("c", "cap.daily", "x", 0),
              oe.CallSettled("a", "c", "answered", False, "promise", True, BOT, False, None, 0),
              oe.CallSettled("b", "c", "abandoned", True, None, False, AGENT, False, None, 0),
              oe.CallSettled("in-1", "c", "answered", False, None, False, BOT, True, None, 0),
              oe.Drained(1, 2), oe.CallReconciled("x", "c", "busy", "cdr+cel"), oe.CallAdopted("y", "c")):
        t(e)
    s = t.summary(still_open=0)
    assert s == {"placed": 2, "blocked": 3, "ended": 2, "reconciled": 1, "adopted": 1, "drained": 1, "hung_up": 2,
                 "open": 0, "outcomes": {"answered": 1, "abandoned": 1},
                 "blocked_by_rule": {"cap.daily": 2, "time.window": 1}}
    assert t.abandoned == 1
    assert summary_lines(t) == ["summary: 2 placed, 3 blocked (cap.daily 2, time.window 1), 2 settled "
                                "(abandoned 1, answered 1), 1 abandoned"]


def test_the_daemon_says_a_line_a_minute_or_one_per_call_with_v():
    lines: list[str] = []
    now = [0.0]
    n = Narrator(lines.append, every=60, monotonic=lambda: now[0])
    n(oe.CallPlaced("a", "c", "bot", 0))
    n(oe.GateBlocked("c", "cap.daily", "3 attempts today", 0))
    n(oe.Tick(0, live=1))
    assert lines == []
    now[0] = 61
    n(oe.Tick(0, live=1))
    assert lines == ["last 60s: placed 1, blocked 1 (cap.daily 1), settled 0, 1 live"]
    verbose: list[str] = []
    v = Narrator(verbose.append, per_call=True)
    v(oe.GateBlocked("c", "time.window", "22:05 local, window 08:00-21:00", 0))
    v(oe.CallSettled("a", "c", "answered", False, "promise", True, BOT, False, None, 0))
    v(oe.Stopping(live=2, why="stop requested"))
    assert verbose[0] == "blocked (c) by time.window: 22:05 local, window 08:00-21:00"
    assert verbose[1] == "settled a: answered, promise"
    assert verbose[-1] == "stopping (stop requested): no new calls; 2 live call(s) may finish"


def _daemon(tmp_path: Path):
    """A daemon-shaped state: what the floor view reads (calls, campaigns, collectors, rules, store, clock)."""
    store = Store(tmp_path / "d.db")
    rules = load_rules(REPO / "compliance_rules.yaml")
    camp = SimpleNamespace(name="pred", profile="us", dial_mode="predictive", line_limit=6)
    clock = FixedClock(AT)
    now = clock.timestamp()
    calls = {}
    for cid, mode, answered, human, connected in (("r1", AGENT, None, None, None), ("w1", AGENT, now - 5, now - 4, None),
                                                  ("w2", AGENT, now - 3, now - 1, None),
                                                  ("t1", AGENT, now - 30, now - 29, now - 28),
                                                  ("b1", BOT, now - 10, None, None)):
        c = Call(cid, "D" + cid, "pred", "+12125550100", None, placed_at=now - 40, mode=mode)
        c.answered_t, c.human_t, c.connected_t = answered, human, connected
        calls[cid] = c
    collectors = SimpleNamespace(names=["agent1", "agent2"], wrap_up=5.0, desired={"agent2": "paused"},
                                 live={"agent1": CollectorLive("talking", now - 28, "t1"),
                                       "agent2": CollectorLive("ready", now - 100)})
    return SimpleNamespace(calls=calls, campaigns={"pred": camp}, collectors=collectors, rules=rules, store=store,
                           clock=clock, ami=None, bus=Bus())


def test_the_floor_view_shows_lines_waits_collectors_and_counts(tmp_path):
    d = _daemon(tmp_path)
    floor = FloorView(d)
    for e in (oe.CallPlaced("x", "pred", AGENT, 0), oe.GateBlocked("pred", "cap.7in7", "7 calls", 0),
              oe.CallSettled("x", "pred", "answered", False, "promise", True, AGENT, False, "agent1", 0),
              oe.QaAlert("x", "pred", ("conduct.threat",), 0, live=True)):
        floor(e)
    snap = floor.snapshot()
    c = snap["campaigns"]["pred"]
    assert c["lines"] == {"ringing": 1, "screening": 0, "bot": 1, "waiting": 2, "talking": 1, "informing": 0}
    assert c["waiting"] == 2 and c["longest_wait"] == 4.0
    assert (c["contacts"], c["rpc"], c["promises"], c["blocked"]) == (1, 1, 1, {"cap.7in7": 1})
    assert c["abandon"]["limit"] == 0.03 and c["abandon"]["rate"] == 0.0
    assert snap["collectors"][0] == {"name": "agent1", "state": "talking", "seconds": 28.0, "call": "t1",
                                     "leaving": False}
    assert snap["collectors"][1]["state"] == "paused"
    assert snap["alerts"][0]["rules"] == ["conduct.threat"] and snap["version"] == 4
    m = Metrics(floor, d)
    m(oe.CallPlaced("x", "pred", AGENT, 0))
    m(oe.GateBlocked("pred", "cap.7in7", "7 calls", 0))
    m(oe.PaceDecision("pred", 0.002, 0, 1, 1, 0, 2, 1, 0, 3, 1, 2, 4, 2.5, "predictive"))
    m(oe.AgiSession("rejected"))
    text = m.render().decode()
    for line in ('dialer_calls_placed_total{campaign="pred",mode="agent"} 1.0',
                 'dialer_gate_blocks_total{campaign="pred",rule="cap.7in7"} 1.0',
                 'dialer_pacing_decision_seconds_count{campaign="pred"} 1.0',
                 'dialer_agi_sessions_total{result="rejected"} 1.0',
                 'dialer_abandon_ratio{campaign="pred"} 0.0', 'dialer_lines{campaign="pred",state="waiting"} 2.0',
                 'dialer_collectors{state="talking"} 1.0', 'dialer_ami_reconnects_total 0.0'):
        assert line in text, line


def test_the_web_server_needs_its_token_and_mounts_sub_apps(tmp_path):
    async def scenario():
        async def hello(request):
            return web.json_response({"hello": "lender"})

        api = web.Application()
        api.router.add_get("/ping", hello)
        token = load_or_create_token(tmp_path)
        assert load_or_create_token(tmp_path) == token  # kept, not regenerated
        assert stat.S_IMODE(os.stat(tmp_path / TOKEN_FILE).st_mode) == 0o600

        async def root(request):
            return web.Response(text="root")

        server = WebServer(build_app(token, [("GET", "/", root)], subapps={"/api/": api}), port=0, run_dir=tmp_path)
        await server.start()
        try:
            assert server.host == "127.0.0.1"
            info = read_server_info(tmp_path)
            assert info["port"] == server.port and info["token"] == token
            base = server.url
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # keeps IP cookies
                for path in ("", "api/ping", f"?token=wrong{token}"):
                    async with s.get(base + path) as r:
                        assert r.status == 401, path
                        assert "access token" in await r.text()
                async with s.get(base + "api/ping", headers={"Authorization": f"Bearer {token}"}) as r:
                    assert r.status == 200 and await r.json() == {"hello": "lender"}
                async with s.get(base + f"?token={token}") as r:  # a browser: the token once, then the cookie
                    assert r.status == 200 and await r.text() == "root"
                async with s.get(base + "api/ping") as r:
                    assert r.status == 200
        finally:
            await server.stop()
        assert not (tmp_path / "web.json").exists()

    asyncio.run(scenario())


def test_observers_serve_the_floor_and_metrics_of_a_daemon(tmp_path):
    async def scenario():
        d = _daemon(tmp_path)
        obs = Observers(d, web_on=True, port=0, run_dir=tmp_path)
        await obs.start()
        try:
            d.bus.publish(oe.CallPlaced("x", "pred", AGENT, 0))
            d.bus.publish(ev.DialAnswered("x"))
            hdr = {"Authorization": f"Bearer {obs.token}"}
            async with aiohttp.ClientSession() as s:
                async with s.get(obs.server.url + "floor.json", headers=hdr) as r:
                    snap = await r.json()
                async with s.get(obs.server.url + "metrics", headers=hdr) as r:
                    text = await r.text()
                async with s.get(obs.server.url + "floor/events", headers=hdr) as r:
                    first = await asyncio.wait_for(r.content.readline(), 5)
        finally:
            await obs.stop()
        assert snap["campaigns"]["pred"]["placed"] == 1 and snap["version"] == 2
        assert 'dialer_calls_placed_total{campaign="pred",mode="agent"} 1.0' in text
        assert first.startswith(b"data: {")

    asyncio.run(scenario())


def test_the_example_alert_rules_name_metrics_the_daemon_exports(tmp_path):
    import yaml

    rules = yaml.safe_load((REPO / "docs" / "observe" / "alerts.example.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names = {n for e in exprs for n in re.findall(r"\b(dialer_[a-z_]+)", e)}
    d = _daemon(tmp_path)
    floor = FloorView(d)
    m = Metrics(floor, d)
    m(oe.Tick(0, live=0))
    text = m.render().decode()
    assert {"dialer_abandon_ratio", "dialer_abandon_limit", "dialer_last_tick_timestamp_seconds"} <= names
    for name in names:
        assert re.search(rf"^{name}(\{{| )", text, re.M), name


class _FakeAmi:
    """The PBX's side of `dialer supervise` as AMI answers it (the e2e uses the real one)."""

    def __init__(self):
        self.connected = asyncio.Event()
        self.connected.set()
        self.sent: list[dict] = []

    async def command(self, cmd):
        assert cmd == "core show channels concise"
        return ("PJSIP/carrier-00000001!dialer-agent!agent!9!Up!Queue!collectors!+1212!!!3!12!b1!pred-1\n"
                "PJSIP/agent1-00000002!from-agent!!1!Up!AppQueue!(Outgoing Line)!agent1!!!3!10!b1!x2\n")

    async def send(self, action=None, timeout=10.0):
        self.sent.append(action)
        return [{"Response": "Success", "Message": "Originate successfully queued"},
                {"Response": "Success", "Event": "OriginateResponse", "Reason": "4"}]


def test_the_wallboard_supervise_button_rings_the_phone_and_audits(tmp_path):
    from dialer.store.audit import audit_entries

    async def scenario():
        d = _daemon(tmp_path)
        d.ami = _FakeAmi()
        obs = Observers(d, web_on=True, port=0, run_dir=tmp_path)
        await obs.start()
        try:
            hdr = {"Authorization": f"Bearer {obs.token}"}
            async with aiohttp.ClientSession() as s:
                async with s.post(obs.server.url + "supervise", headers=hdr,
                                  json={"mode": "listen", "collector": "agent1", "phone": "sup1"}) as r:
                    ok = (r.status, await r.json())
                async with s.post(obs.server.url + "supervise", headers=hdr,
                                  json={"mode": "listen", "collector": "agent2", "phone": "sup1"}) as r:
                    idle = (r.status, await r.json())
                async with s.post(obs.server.url + "supervise",
                                  json={"mode": "listen", "collector": "agent1", "phone": "sup1"}) as r:
                    anon = r.status
                async with s.get(obs.server.url, headers=hdr) as r:
                    page = await r.text()
        finally:
            await obs.stop()
        return d, ok, idle, anon, page

    d, ok, idle, anon, page = asyncio.run(scenario())
    assert ok[0] == 200 and ok[1]["collector_channel"] == "PJSIP/agent1-00000002"
    action = d.ami.sent[0]
    assert (action["Channel"], action["Application"], action["Data"]) == ("PJSIP/sup1", "ChanSpy",
                                                                          "PJSIP/agent1-00000002,qES")
    assert idle[0] == 409 and "agent2 is not on a call" in idle[1]["error"]
    assert anon == 401 and len(d.ami.sent) == 1
    entries = audit_entries(d.store, kind="supervise.listen")
    assert [(e["subject"], e["actor"]) for e in entries] == [("agent1", "wallboard")]
    assert 'data-mode' in page or "supervise(" in page
