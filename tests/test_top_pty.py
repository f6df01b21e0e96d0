"""`dialer top` in a pseudo-terminal: it draws the floor of a running daemon's web server and redraws when the
floor moves. The server is the real one (dialer/observe/live.py on aiohttp); the daemon's state is a
daemon-shaped object, so this needs no Asterisk (the wallboard's e2e covers the live daemon)."""
from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from dialer.calls.call import BOT, Call
from dialer.observe import events as oe
from dialer.observe.live import Observers
from tests.test_observe_unit import _daemon

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _read(fd: int, until: float) -> str:
    out = b""
    while time.monotonic() < until:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return ANSI.sub("", out.decode(errors="replace"))


def test_dialer_top_renders_in_a_terminal_and_updates(tmp_path):
    d = _daemon(tmp_path)
    loop = asyncio.new_event_loop()
    obs = Observers(d, web_on=True, port=0, run_dir=tmp_path)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(obs.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="150", LINES="60", TERM="xterm-256color")
    proc = subprocess.Popen([sys.executable, "-m", "dialer.cli", "top", "--run-dir", str(tmp_path),
                             "--interval", "0.3"], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    try:
        first = _read(master, time.monotonic() + 8)
        assert "pred — predictive (5 of 6 lines)" in first, first[-2000:]
        assert "agent1" in first and "talking" in first and "paused" in first
        assert "outcomes: none   gate blocks: none" in first and "compliance alerts: none" in first
        # the floor moves: two calls placed and settled (one a promise), a gate block, a new bot call
        for e in (oe.CallPlaced("n1", "pred", BOT, 0), oe.CallPlaced("n2", "pred", BOT, 0),
                  oe.CallSettled("n1", "pred", "answered", False, "promise", True, BOT, False, None, 0),
                  oe.GateBlocked("pred", "cap.daily", "3 today", 0), oe.QaAlert("n1", "pred", ("conduct.threat",), 0)):
            loop.call_soon_threadsafe(d.bus.publish, e)
        c = Call("n2", "Dn2", "pred", "+12125550100", None, placed_at=0, mode=BOT)
        d.calls["n2"] = c
        later = _read(master, time.monotonic() + 3)
        assert "pred — predictive (6 of 6 lines)" in later, later[-2000:]
        assert "gate blocks: cap.daily 1" in later and "outcomes: answered 1" in later
        assert "n1 (pred): conduct.threat" in later
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
        asyncio.run_coroutine_threadsafe(obs.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
