"""The daemon's web server. One aiohttp application in the daemon's event loop serves the wallboard, /metrics
and whatever sub-applications are mounted (the lender API at /api/).

- Bind: 127.0.0.1 by default (`--web-bind` to change it; anything else is the operator's choice, said in a
  warning).
- Auth: every request carries the access token — `Authorization: Bearer TOKEN`, or `?token=TOKEN` once (a
  browser then keeps it in an HttpOnly, SameSite=Strict cookie). Without it: 401, nothing else. The token is
  generated on first start and kept in `<run dir>/web.token` (0600); `<run dir>/web.json` says where the
  server listens (no secret) for `dialer top`.
- Sub-applications: `build_app(token, routes, subapps={"/api/": app})` mounts each `web.Application` with
  `add_subapp(prefix, app)`; the token middleware of the root application covers them too, so a sub-app adds
  no auth of its own (it may add its own middlewares for everything else)."""
from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web

from common.log import log_event

log = logging.getLogger("dialer.web")

TOKEN_FILE = "web.token"
INFO_FILE = "web.json"
COOKIE = "dialer_token"
DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 0  # any free port; the one chosen is in <run dir>/web.json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]  # (method, path, handler)

TOKEN_KEY = web.AppKey("token", str)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_token(run_dir: Path) -> str:
    """The web access token of this run directory: read from `web.token`, generated (and kept, 0600) if absent."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return token
    token = secrets.token_urlsafe(24)
    _write_private(path, token + "\n")
    return token


def read_server_info(run_dir: Path) -> dict[str, Any]:
    """Where the daemon's web server listens (`web.json`) with the token (`web.token`), for `dialer top`."""
    info = json.loads((run_dir / INFO_FILE).read_text())
    info["token"] = (run_dir / TOKEN_FILE).read_text().strip()
    return info


def _presented(request: web.Request) -> tuple[str | None, bool]:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip(), False
    q = request.query.get("token")
    if q:
        return q, True
    return request.cookies.get(COOKIE), False


@web.middleware
async def token_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.config_dict[TOKEN_KEY]  # the root app's, also for a sub-app's routes
    given, from_query = _presented(request)
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return web.Response(status=401, text="401: missing or wrong access token. Open the URL `dialer run` "
                            "printed, or send 'Authorization: Bearer <token>' (the token is in <run dir>/web.token)\n",
                            headers={"WWW-Authenticate": "Bearer"})
    resp = await handler(request)
    if from_query and isinstance(resp, web.Response) and not resp.prepared:
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    return resp


def build_app(token: str, routes: Iterable[Route] = (), *,
              subapps: dict[str, web.Application] | None = None) -> web.Application:
    """The root application: token auth on everything, `routes` at the root, each sub-app under its prefix."""
    app = web.Application(middlewares=[token_auth])
    app[TOKEN_KEY] = token
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    for prefix, sub in (subapps or {}).items():
        app.add_subapp(prefix.rstrip("/") or "/", sub)
    return app


class WebServer:
    """Start / stop one aiohttp application inside the running event loop (the daemon's)."""

    def __init__(self, app: web.Application, *, host: str = DEFAULT_BIND, port: int = DEFAULT_PORT,
                 run_dir: Path | None = None):
        self.app = app
        self.host = host
        self.port = port
        self.run_dir = run_dir
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(f"the web server cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                          "choose another with --web-port (0: any free port) or --no-web") from exc
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            log_event(log, "web.public_bind", level=logging.WARNING, host=self.host, port=self.port)
        if self.run_dir is not None:
            _write_private(self.run_dir / INFO_FILE, json.dumps({"host": self.host, "port": self.port,
                                                                 "url": self.url, "pid": os.getpid()}))
        log_event(log, "web.listen", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.run_dir is not None:
            try:
                (self.run_dir / INFO_FILE).unlink()
            except FileNotFoundError:
                pass
