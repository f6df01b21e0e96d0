"""The caller's audio in real time: a UDP socket of this process receives the RTP that Asterisk's ChanSpy
sends to a UnicastRTP channel (started through the `AudioTap` port, AMI in `dialer/telephony/`), and
turns it into 20 ms `AudioIn` frames of 16-bit 8 kHz PCM.

Measured on Asterisk 16.28 (docs/ARCHITECTURE.md): ~38 ms behind the caller, setup < 1 ms. A frame's time
is the call clock at the first packet plus the RTP timestamp since then, so a late packet keeps its place
and a lost one becomes 20 ms of silence (the VAD's timing stays the caller's timing).
"""
from __future__ import annotations

import asyncio
import logging
import struct
from typing import AsyncIterator, Callable

import numpy as np

from agi.media.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, AudioIn
from agi.ports import AudioTap
from common.log import log_event

log = logging.getLogger("agi.media.tap")

MAX_GAP_FRAMES = 50  # a jump of more than 1 s in the RTP timestamp starts a new timeline instead of filling


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    value = magnitude - 0x84
    return np.where(sign != 0, -value, value).astype("<i2")


ULAW = _ulaw_table()
SILENCE = bytes(FRAME_BYTES)


def ulaw_to_pcm(payload: bytes) -> bytes:
    """G.711 µ-law → 16-bit little-endian PCM."""
    return ULAW[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """16-bit PCM → G.711 µ-law (for tests and the carrier side; nearest table entry)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    order = np.argsort(ULAW.astype(np.int32))
    sorted_vals = ULAW.astype(np.int32)[order]
    idx = np.clip(np.searchsorted(sorted_vals, x), 1, 255)
    left, right = sorted_vals[idx - 1], sorted_vals[idx]
    pick = np.where(np.abs(x - left) <= np.abs(right - x), idx - 1, idx)
    return order[pick].astype(np.uint8).tobytes()


def parse_rtp(packet: bytes) -> tuple[int, int, int, bytes] | None:
    """(payload type, sequence, timestamp, payload) of an RTP packet, or None if it is not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    cc = packet[0] & 0x0F
    has_ext = packet[0] & 0x10
    pt = packet[1] & 0x7F
    seq, ts = struct.unpack("!HI", packet[2:8])
    offset = 12 + 4 * cc
    if has_ext:
        if len(packet) < offset + 4:
            return None
        (words,) = struct.unpack("!H", packet[offset + 2:offset + 4])
        offset += 4 + 4 * words
    payload = packet[offset:]
    if packet[0] & 0x20 and payload:  # padding
        payload = payload[:-payload[-1]]
    return pt, seq, ts, payload


RESYNC_S = 0.3  # a frame timed this far behind the call clock on arrival re-anchors the tap's timeline
TAP_DELAY_S = 0.04  # the tap runs ~38 ms behind the caller (docs/ARCHITECTURE.md)


class RtpReceiver(asyncio.DatagramProtocol):
    """RTP µ-law (PT 0) or slin (PT 10/11 are not used here) → 20 ms frames on a queue."""

    def __init__(self, now: Callable[[], float], max_queue: int = 500, resync: bool = False):
        self.resync, self.resyncs = resync, 0  # resync: re-anchor when the RTP clock falls behind `now`
        self.now = now
        self.queue: asyncio.Queue[AudioIn | None] = asyncio.Queue(max_queue)
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.packets = self.dropped = self.filled = 0
        self._t0: float | None = None
        self._ts0 = 0
        self._next_ts: int | None = None
        self._buf = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parsed = parse_rtp(data)
        if parsed is None or self.closed:
            return
        pt, _seq, ts, payload = parsed
        if pt != 0:  # only PCMU is requested (UnicastRTP/…/c(ulaw))
            return
        if self.peer is None:
            self.peer = addr
        elif addr != self.peer:
            return  # one sender per call
        self.packets += 1
        if self._t0 is None or self._next_ts is None:
            self._t0, self._ts0, self._next_ts = self.now(), ts, ts
        gap = (ts - self._next_ts) & 0xFFFFFFFF
        if gap >= 0x80000000:
            return  # late or duplicate: its time has passed
        if gap:
            frames = gap // FRAME_SAMPLES
            if frames > MAX_GAP_FRAMES:
                self._t0, self._ts0 = self.now(), ts  # a new timeline (e.g. a long hold)
            else:
                for _ in range(frames):
                    self._emit(SILENCE, self._next_ts)
                    self._next_ts = (self._next_ts + FRAME_SAMPLES) & 0xFFFFFFFF
                    self.filled += 1
            self._next_ts = ts
        self._buf += ulaw_to_pcm(payload)
        while len(self._buf) >= FRAME_BYTES:
            self._emit(self._buf[:FRAME_BYTES], self._next_ts)
            self._buf = self._buf[FRAME_BYTES:]
            self._next_ts = (self._next_ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def _emit(self, pcm: bytes, ts: int) -> None:
        assert self._t0 is not None
        at = self._t0 + ((ts - self._ts0) & 0xFFFFFFFF) / SAMPLE_RATE
        lag = self.now() - at if self.resync else 0.0
        if lag > RESYNC_S:
            # The RTP clock fell behind the call's: ChanSpy sent fewer samples than time passed (measured: 0.6 s
            # in 8 s with nine calls on two cores). Left alone, the caller's speech would be timed before the
            # bot started listening and dropped as speech over a prompt; re-anchor to now (minus the tap delay).
            self._t0 += lag - TAP_DELAY_S
            at = self._t0 + ((ts - self._ts0) & 0xFFFFFFFF) / SAMPLE_RATE
            self.resyncs += 1
        try:
            self.queue.put_nowait(AudioIn(pcm, round(at, 3)))
        except asyncio.QueueFull:
            self.dropped += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass


class CallAudio:
    """One call's tap: a UDP socket on 127.0.0.1, the `AudioTap` port asked to stream the caller into it,
    and the frames as an async iterator. `close()` stops the tap, closes the socket and ends the iterator;
    it is safe to call twice."""

    def __init__(self, tap: AudioTap, call_id: str, channel: str, now: Callable[[], float],
                 host: str = "127.0.0.1"):
        self.tap, self.call_id, self.channel, self.host = tap, call_id, channel, host
        self.receiver = RtpReceiver(now, resync=True)
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._started = False

    async def start(self) -> "CallAudio":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self.receiver, local_addr=(self.host, 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        try:
            await self.tap.start(self.call_id, self.channel, self.host, self.port)
            self._started = True
        except BaseException:
            await self.close()
            raise
        log_event(log, "tap.start", call_id=self.call_id, port=self.port)
        return self

    async def frames(self) -> AsyncIterator[AudioIn]:
        while True:
            frame = await self.receiver.queue.get()
            if frame is None:
                return
            yield frame

    async def close(self) -> None:
        if self._started:
            self._started = False
            try:
                await self.tap.stop(self.call_id)
            except Exception as exc:  # noqa: BLE001 - the call is over either way; the spy ends with it (E)
                log_event(log, "tap.stop_failed", level=logging.WARNING, call_id=self.call_id, error=str(exc))
        self.receiver.close()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            r = self.receiver
            log_event(log, "tap.closed", call_id=self.call_id, packets=r.packets, filled=r.filled, dropped=r.dropped)

    @property
    def open(self) -> bool:
        return self._transport is not None
