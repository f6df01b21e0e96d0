"""The FastAGI server over real sockets: hostile or broken clients never freeze it."""
from __future__ import annotations

import asyncio
from collections import Counter
import time

from agi.channel import AGIChannel, quote
from agi.server import AGIRequest, FastAGIServer

TOKEN = "s3cret-token"


def header(path: str, **extra: str) -> bytes:
    lines = ["agi_network: yes", f"agi_network_script: {path}", "agi_request: agi://127.0.0.1/" + path,
             "agi_channel: PJSIP/test-00000001", "agi_uniqueid: 1234.5"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\n".join(lines) + "\n\n").encode()


async def fake_asterisk_call(port: int, path: str, token: str | None = TOKEN) -> list[str]:
    """Behave like Asterisk: send the header, answer each command with 200 result=0, collect commands."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header(path))
    await writer.drain()
    seen = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        if not line:
            break
        text = line.decode().strip()
        if text == 'GET FULL VARIABLE "${DB(dialer/agi_token)}"':  # the server's token challenge
            writer.write(f"200 result=1 ({token})\n".encode() if token is not None else b"200 result=0\n")
            await writer.drain()
            continue
        seen.append(text)
        writer.write(b"200 result=0\n")
        await writer.drain()
    writer.close()
    return seen


def run_server_scenario(scenario):
    async def main():
        calls: list[AGIRequest] = []

        async def handler(req: AGIRequest, ch: AGIChannel) -> None:
            calls.append(req)
            await ch.verbose('hello "world" \\ ok')
            await ch.set_variable("DIALER_NEXT", "queue")

        seen: Counter = Counter()  # what the server tells its observer (the daemon's bus) of each connection
        server = FastAGIServer({"call": handler}, token=TOKEN, port=0, header_timeout=0.5, observe=lambda r: seen.update([r]))
        server.seen = seen
        await server.start()
        try:
            return await scenario(server, calls)
        finally:
            await server.stop()

    return asyncio.run(main())


def test_partial_header_garbage_and_missing_token_leave_server_responsive():
    async def scenario(server, calls):
        port = server.port
        # 1. partial header, then disconnect (a TCP health check)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"agi_network: yes\nagi_chan")
        await w.drain()
        w.close()
        # 2. partial header that just stalls (must time out, not hang)
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        w2.write(b"agi_network: yes\n")
        await w2.drain()
        # 3. garbage
        r3, w3 = await asyncio.open_connection("127.0.0.1", port)
        w3.write(b"\x00\xffGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await w3.drain()
        # 4. oversize header line
        r4, w4 = await asyncio.open_connection("127.0.0.1", port)
        w4.write(b"agi_x: " + b"A" * 100_000 + b"\n")
        await w4.drain()
        # 5. no token, wrong token, the token in the URL (where Asterisk would log it) but not answered
        no_token = await fake_asterisk_call(port, "call?call=abc", token=None)
        bad_token = await fake_asterisk_call(port, "call?call=abc", token="nope")
        url_token = await fake_asterisk_call(port, f"call?token={TOKEN}&call=abc", token=None)
        assert url_token == []
        # a normal call works afterwards, promptly
        t0 = time.monotonic()
        good = await fake_asterisk_call(port, "call?call=c-42")
        elapsed = time.monotonic() - t0
        assert await asyncio.wait_for(r2.read(), 2) == b""  # the staller was dropped after the header timeout
        for w_ in (w2, w3, w4):
            w_.close()
        return no_token, bad_token, good, elapsed, list(calls), dict(server.seen)

    no_token, bad_token, good, elapsed, calls, stats = run_server_scenario(scenario)
    assert no_token == [] and bad_token == []  # rejected: no command ever sent
    assert [c.call_id for c in calls] == ["c-42"]
    assert good == ['VERBOSE "hello \\"world\\" \\\\ ok" "3"', 'SET VARIABLE "DIALER_NEXT" "queue"']
    assert stats["rejected"] >= 7 and stats["session"] == 1
    assert elapsed < 2.0


def test_arguments_are_escaped_and_line_breaks_refused():
    assert quote('a "b" c\\') == '"a \\"b\\" c\\\\"'
    try:
        quote("x\nHANGUP")
    except ValueError:
        pass
    else:
        raise AssertionError("a newline in an AGI argument must be refused")


def test_hangup_mid_command_raises_hangup_in_handler():
    async def scenario(server, calls):
        outcome = {}

        async def handler(req, ch):
            try:
                await ch.stream_file("prompt", "1")
            except Exception as exc:  # noqa: BLE001
                outcome["exc"] = type(exc).__name__
                raise

        server.routes["play"] = handler
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(header("play"))
        await w.drain()
        await asyncio.wait_for(r.readline(), 2)  # the token challenge
        w.write(f"200 result=1 ({TOKEN})\n".encode())
        await w.drain()
        await asyncio.wait_for(r.readline(), 2)
        w.write(b"HANGUP\n200 result=-1 endpos=1234\n")
        await w.drain()
        await asyncio.sleep(0.2)
        w.close()
        return outcome

    assert run_server_scenario(scenario) == {"exc": "Hangup"}


def test_a_session_for_a_call_that_is_not_live_is_refused_even_with_the_token():
    """`admit` is the daemon's check that the call is live on its PBX: a forged session that knows the
    token but names an unknown or ended call gets no command and reaches no handler."""
    async def scenario(server, calls):
        async def admit(req, ch):
            return req.call_id == "live-1"

        server.admit = admit
        forged = await fake_asterisk_call(server.port, "call?call=ended-9")
        real = await fake_asterisk_call(server.port, "call?call=live-1")
        return forged, real, [c.call_id for c in calls], dict(server.seen)

    forged, real, calls, stats = run_server_scenario(scenario)
    assert forged == [] and calls == ["live-1"] and real != []
    assert stats["session"] == 1 and stats["rejected"] == 1
