"""A packet capture on loopback for tests (root: an AF_PACKET socket on `lo`, no tcpdump needed): every
RTP/PCMU packet with its UDP ports, so a test can hear what reached a phone."""
from __future__ import annotations

import socket
import struct
import threading
import time

from agi.media.tap import ulaw_to_pcm

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class LoopbackRtp(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets: list[tuple[float, int, int, bytes]] = []  # (time, src port, dst port, µ-law payload)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING or len(data) < 14 + 20 + 8 + 12:
                continue
            ip = data[14:]
            if ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4 UDP
                continue
            ihl = (ip[0] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
            rtp = ip[ihl + 8:]
            if len(rtp) < 12 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 0:
                continue
            cc = rtp[0] & 0x0F
            self.packets.append((time.time(), sport, dport, bytes(rtp[12 + 4 * cc:])))

    def stop(self) -> None:
        self._halt.set()
        self.join(2)
        self.sock.close()

    def flows(self) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for _, s, d, _p in self.packets:
            out[(s, d)] = out.get((s, d), 0) + 1
        return out

    def pcm_to(self, dport: int, sport: int | None = None) -> bytes:
        """16-bit 8 kHz PCM of what was sent to `dport` (from `sport`), in arrival order."""
        return b"".join(ulaw_to_pcm(p) for _, s, d, p in self.packets if d == dport and (sport is None or s == sport))
