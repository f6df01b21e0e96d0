"""Free port blocks for harnesses: claimed blocks never overlap, within a process or across processes,
and a port anything else has bound keeps its block from being chosen."""
from __future__ import annotations

import socket
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from dialer.telephony.harness import (
    PORT_SLOT,
    Harness,
    HarnessError,
    Ports,
    claim_ports,
    first_busy_port,
)

REPO = Path(__file__).resolve().parent.parent
SPAN = Ports.span(2)


def _bound_udp_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_claimed_blocks_are_free_and_never_overlap():
    blocks = [claim_ports(SPAN) for _ in range(3)]
    try:
        spans = sorted((b.base, b.base + b.size) for b in blocks)
        assert all(hi <= lo2 for (_, hi), (lo2, _) in pairwise(spans))
        assert all(b.base % PORT_SLOT == 0 for b in blocks)
    finally:
        for b in blocks:
            b.release()


def test_a_held_block_cannot_be_claimed_again_until_released():
    block = claim_ports(SPAN)
    with pytest.raises(HarnessError, match="no block"):
        claim_ports(SPAN, base=block.base)
    block.release()
    again = claim_ports(SPAN, base=block.base)
    again.release()


def test_a_port_in_use_elsewhere_rules_its_block_out():
    sock = _bound_udp_port()
    port = sock.getsockname()[1]
    base = port - port % PORT_SLOT
    try:
        # other processes (parallel workers' Asterisk, clients' ephemeral ports) may hold ports of the
        # same slot too, so the scan is asked from our port on, and the slot as a whole must be refused
        assert first_busy_port(port, PORT_SLOT - port % PORT_SLOT) == port
        with pytest.raises(HarnessError):
            claim_ports(PORT_SLOT, base=base)
    finally:
        sock.close()
    assert first_busy_port(port, 1) is None


def test_another_process_holding_a_block_keeps_it():
    holder = ("import sys\nfrom dialer.telephony.harness import Ports, claim_ports\n"
              "b = claim_ports(Ports.span(2))\nprint(b.base, flush=True)\nsys.stdin.read()")
    child = subprocess.Popen(
        [sys.executable, "-c", holder],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        base = int(child.stdout.readline())
        with pytest.raises(HarnessError):
            claim_ports(SPAN, base=base)
    finally:
        child.communicate("", timeout=10)  # the child exits; its locks go with it
    claim_ports(SPAN, base=base).release()


def test_an_explicit_base_port_in_use_is_refused_before_anything_starts(tmp_path):
    sock = _bound_udp_port()
    port = sock.getsockname()[1]
    try:
        with pytest.raises(HarnessError, match="is in use"):
            Harness(tmp_path / "run", base_port=port - 60, agents=0).up()
    finally:
        sock.close()
    assert not (tmp_path / "run" / "harness.json").exists()
