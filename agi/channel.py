"""One call's AGI session: commands with escaped arguments, parsed replies, hangup handling."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

_REPLY = re.compile(r"^(\d{3})[ -](?:result=(-?\S*)\s*)?(?:\((.*?)\))?\s*(.*)$")


class Hangup(Exception):
    """The caller hung up (or Asterisk closed the session)."""


class AGIError(RuntimeError):
    pass


@dataclass(frozen=True)
class Reply:
    code: int
    result: str
    data: str
    extra: dict[str, str]

    @property
    def endpos(self) -> int | None:
        v = self.extra.get("endpos")
        return int(v) if v and v.lstrip("-").isdigit() else None


def quote(arg: object) -> str:
    """Escape one AGI argument: quoted, backslashes and quotes escaped, no line breaks."""
    s = str(arg)
    if "\n" in s or "\r" in s or "\x00" in s:
        raise ValueError(f"AGI argument may not contain line breaks or NUL: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_reply(line: str) -> Reply:
    m = _REPLY.match(line)
    if not m:
        raise AGIError(f"unparseable AGI reply: {line!r}")
    code, result, data, rest = m.groups()
    extra = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
    return Reply(int(code), result or "", data or "", extra)


class AGIChannel:
    """Commands on one FastAGI connection. Every method raises Hangup once the caller is gone."""

    DEFAULT_COMMAND_TIMEOUT = 600.0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str],
                 command_timeout: float = DEFAULT_COMMAND_TIMEOUT):
        self.reader = reader
        self.writer = writer
        self.env = env
        self.hung_up = False
        self.command_timeout = command_timeout
        self._lock = asyncio.Lock()

    @property
    def channel_name(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    async def _readline(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), self.command_timeout)
        if not raw:
            self.hung_up = True
            raise Hangup("AGI connection closed")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def command(self, name: str, *args: object) -> Reply:
        if self.hung_up:
            raise Hangup("caller already hung up")
        line = " ".join([name, *(quote(a) for a in args)])
        async with self._lock:
            try:
                self.writer.write(line.encode("utf-8") + b"\n")
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.hung_up = True
                raise Hangup("AGI connection lost") from None
            while True:
                text = await self._readline()
                if text.startswith("HANGUP"):
                    self.hung_up = True
                    continue
                if text.startswith("520-"):  # multi-line usage text
                    while not (await self._readline()).startswith("520 "):
                        pass
                    raise AGIError(f"invalid AGI command syntax: {line}")
                reply = parse_reply(text)
                break
        if reply.code == 511:
            self.hung_up = True
            raise Hangup("channel is dead")
        if reply.code != 200:
            raise AGIError(f"{line!r} -> {text!r}")
        return reply

    # -- the commands a call flow needs -------------------------------------------------------
    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, path: str, escape_digits: str = "") -> tuple[str | None, int | None]:
        """Play a file (path without extension); returns (digit pressed or None, endpos in samples)."""
        r = await self.command("STREAM FILE", path, escape_digits)
        return self._digit_or_hangup(r), r.endpos

    async def control_stream_file(self, path: str, escape_digits: str = "",
                                  offset_ms: int = 0) -> tuple[str | None, int | None]:
        """Like stream_file, but AMI ControlPlayback can stop it (barge-in). Skipping is off (0 ms) and the
        skip keys are A/B, so '#' and '*' stay ordinary keys that end the prompt like any other.
        `offset_ms` starts that far into the file (resuming a prompt after a false interruption). Unlike
        STREAM FILE's, this command's endpos is in milliseconds (CPLAYBACKOFFSET), measured on 16.28."""
        args: list[object] = [path, escape_digits, 0, "A", "B"]
        if offset_ms > 0:
            args += ["", int(offset_ms)]  # no pause key, then the offset
        r = await self.command("CONTROL STREAM FILE", *args)
        return self._digit_or_hangup(r), r.endpos

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play a prompt and collect up to max_digits; None on timeout with no digits."""
        r = await self.command("GET DATA", path, timeout_ms, max_digits)
        if r.result == "-1":
            self.hung_up = True
            raise Hangup("hangup during GET DATA")
        return r.result or None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        r = await self.command("WAIT FOR DIGIT", timeout_ms)
        return self._digit_or_hangup(r)

    async def set_variable(self, name: str, value: object) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        r = await self.command("GET VARIABLE", name)
        return r.data if r.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        """`GET FULL VARIABLE`: an expression such as ${GLOBAL(NAME)} evaluated on the channel."""
        r = await self.command("GET FULL VARIABLE", expression)
        return r.data if r.result == "1" else None

    async def exec(self, app: str, args: str = "") -> str:
        r = await self.command("EXEC", app, args)
        if r.result == "-2":
            raise AGIError(f"no such application: {app}")
        return r.result

    async def verbose(self, message: str, level: int = 3) -> None:
        await self.command("VERBOSE", message, level)

    async def hangup(self) -> None:
        if not self.hung_up:
            try:
                await self.command("HANGUP")
            except Hangup:
                pass
            self.hung_up = True

    def _digit_or_hangup(self, r: Reply) -> str | None:
        if r.result == "-1":
            self.hung_up = True
            raise Hangup("hangup during playback")
        code = int(r.result or 0)
        return chr(code) if code > 0 else None
