"""Attach the observers to a running daemon's bus: the narration, the floor view, Prometheus metrics and the
web server with the wallboard (and any sub-application mounted next to it). `dialer run` does this; the daemon
itself only publishes (calls/daemon.py: `bus`, `publish`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from dialer.observe.floor import FloorView
from dialer.observe.metrics import Metrics
from dialer.observe.narrate import Narrator
from dialer.observe.wallboard import Wallboard
from dialer.web.server import DEFAULT_BIND, DEFAULT_PORT, WebServer, build_app, load_or_create_token


class Observers:
    def __init__(self, daemon: Any, *, write: Callable[[str], None] | None = None, per_call: bool = False,
                 every: float = 60.0, web_on: bool = True, bind: str = DEFAULT_BIND, port: int = DEFAULT_PORT,
                 run_dir: Path | None = None, subapps: dict[str, web.Application] | None = None,
                 metrics: bool = True):
        bus = daemon.bus
        self.unsubscribe: list[Callable[[], None]] = []
        self.narrator = Narrator(write, per_call=per_call, every=every) if write is not None else None
        if self.narrator is not None:
            self.unsubscribe.append(bus.subscribe(self.narrator))
        self.floor = FloorView(daemon)
        self.unsubscribe.append(bus.subscribe(self.floor))
        self.metrics = Metrics(self.floor, daemon) if metrics else None
        if self.metrics is not None:
            self.unsubscribe.append(bus.subscribe(self.metrics))
        self.wallboard: Wallboard | None = None
        self.server: WebServer | None = None
        self.token: str | None = None
        if web_on:
            if run_dir is None:
                raise ValueError("the web server keeps its token in the run directory: give run_dir")
            self.token = load_or_create_token(run_dir)
            self.wallboard = Wallboard(self.floor, self.metrics)
            self.unsubscribe.append(bus.subscribe(self.wallboard))
            app = build_app(self.token, self.wallboard.routes(), subapps=subapps)
            app.on_shutdown.append(self.wallboard.on_shutdown)
            self.server = WebServer(app, host=bind, port=port, run_dir=run_dir)

    @property
    def url(self) -> str | None:
        """The wallboard's URL with the token (what the operator opens)."""
        return None if self.server is None else f"{self.server.url}?token={self.token}"

    async def start(self) -> None:
        if self.server is not None:
            await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        for u in self.unsubscribe:
            u()
