"""An asyncio FastAGI server: bounded header read with a timeout, a token challenge, routes by path.

panoramisk's fast_agi spins at 100 % CPU on a partial header (docs/ARCHITECTURE.md); this one reads
the `agi_*` block with a size limit and a deadline, and drops anything malformed or unauthorised
without disturbing other calls.

The token never travels in the AGI URL (Asterisk writes the URL to its log and to the CDR's
`lastdata`), nor sits in a dialplan global (Asterisk logs every global it sets). The PBX holds it in
its AstDB (`dialer/agi_token`, put there over AMI when the harness brings the PBX up); the server's
first command on every connection is `GET FULL VARIABLE ${DB(dialer/agi_token)}`, and only a client
that answers with the token is served. Then `admit(request)`, if given, decides whether the
call is one this server should serve at all (the daemon admits only calls live on its PBX)."""
from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from agi.channel import AGIChannel, AGIError, Hangup
from common.log import RateLimited, kv, log_event

log = logging.getLogger("agi.server")

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_LINES = 200


@dataclass(frozen=True)
class AGIRequest:
    path: str
    params: dict[str, str]
    env: dict[str, str]

    @property
    def call_id(self) -> str:
        return self.params.get("call") or self.env.get("agi_uniqueid", "")


Handler = Callable[[AGIRequest, AGIChannel], Awaitable[None]]
Admit = Callable[[AGIRequest, AGIChannel], Awaitable[bool]]
TOKEN_EXPRESSION = "${DB(dialer/agi_token)}"


class BadHeader(ValueError):
    pass


async def read_header(reader: asyncio.StreamReader, timeout: float) -> dict[str, str]:
    """Read `agi_key: value` lines up to a blank line, within `timeout` seconds and MAX_HEADER_BYTES."""
    env: dict[str, str] = {}
    total = 0

    async def _read() -> None:
        nonlocal total
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                raise BadHeader("connection closed inside the AGI header") from None
            except asyncio.LimitOverrunError:
                raise BadHeader("AGI header line too long") from None
            total += len(line)
            if total > MAX_HEADER_BYTES or len(env) > MAX_HEADER_LINES:
                raise BadHeader("AGI header too large")
            text = line.decode("utf-8", "replace").strip()
            if not text:
                return
            key, sep, value = text.partition(":")
            if not sep or not key.startswith("agi_"):
                raise BadHeader(f"not an AGI header line: {text[:60]!r}")
            env[key.strip()] = value.strip()

    await asyncio.wait_for(_read(), timeout)
    if "agi_network_script" not in env and "agi_request" not in env:
        raise BadHeader("AGI header without agi_request")
    return env


def parse_request(env: dict[str, str]) -> AGIRequest:
    script = env.get("agi_network_script") or urlsplit(env.get("agi_request", "")).path.lstrip("/")
    parts = urlsplit("/" + script)
    params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return AGIRequest(path=parts.path.strip("/"), params=params, env=env)


class FastAGIServer:
    """Serves routes (`call`, `inbound`, …) to Asterisk on 127.0.0.1; rejects calls without the token."""

    def __init__(self, routes: dict[str, Handler], *, token: str, host: str = "127.0.0.1", port: int = 4573,
                 admit: Admit | None = None, observe: Callable[[str], None] | None = None,
                 header_timeout: float = 5.0):
        if not token:
            raise ValueError("FastAGI needs a token")
        self.routes = routes
        self.token = token
        self.admit = admit
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.server: asyncio.base_events.Server | None = None
        self.active: set[asyncio.Task] = set()
        # told of each connection's result (`session`, `rejected`, `error`): the daemon puts it on its bus
        self.observe = observe or (lambda result: None)
        self.rejections = RateLimited(log)  # a flood of bad connections is a summary, not a line each

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, self.host, self.port, limit=MAX_HEADER_BYTES)
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        log_event(log, "fastagi.listen", host=self.host, port=self.port)

    async def stop(self) -> None:
        self.rejections.flush()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.active):
            task.cancel()
        if self.active:
            await asyncio.gather(*self.active, return_exceptions=True)

    async def _answers_token(self, channel: AGIChannel) -> bool:
        try:
            value = await channel.get_full_variable(TOKEN_EXPRESSION)
        except (Hangup, AGIError, asyncio.TimeoutError, ConnectionError, ValueError):
            return False
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    async def _admitted(self, req: AGIRequest, channel: AGIChannel) -> bool:
        try:
            return bool(await self.admit(req, channel))  # type: ignore[misc]
        except (Hangup, AGIError, asyncio.TimeoutError, ConnectionError):
            return False

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        peer = writer.get_extra_info("peername")
        try:
            try:
                env = await read_header(reader, self.header_timeout)
            except (BadHeader, asyncio.TimeoutError, ConnectionError) as exc:
                self.observe("rejected")
                self.rejections.log("fastagi.bad_header", peer=peer, error=str(exc) or "timeout")
                return
            req = parse_request(env)
            channel = AGIChannel(reader, writer, env, command_timeout=self.header_timeout)
            if not await self._answers_token(channel):
                self.observe("rejected")
                self.rejections.log("fastagi.bad_token", peer=peer, path=req.path)
                return
            handler = self.routes.get(req.path)
            if handler is None:
                self.observe("rejected")
                self.rejections.log("fastagi.no_route", path=req.path)
                return
            if self.admit is not None and not await self._admitted(req, channel):
                self.observe("rejected")
                self.rejections.log("fastagi.not_live", peer=peer, path=req.path, call=req.call_id)
                return
            channel.command_timeout = AGIChannel.DEFAULT_COMMAND_TIMEOUT
            self.observe("session")
            try:
                await handler(req, channel)
            except Hangup:
                log_event(log, "fastagi.hangup", call=req.call_id, path=req.path)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one call's bug must not take the server down
                self.observe("error")
                log.exception(kv("fastagi.handler_failed", call=req.call_id, path=req.path))
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            if task is not None:
                self.active.discard(task)
