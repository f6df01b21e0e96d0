"""Shared fixtures. Asterisk fixtures start real PBX + carrier instances on loopback, each on a block of
free ports it claims (dialer.telephony.harness.claim_ports), so test processes can share a machine."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    if shutil.which("asterisk") is None or shutil.which("sipp") is None:
        skip = pytest.mark.skip(reason="Asterisk/SIPp not installed: run scripts/setup")
        for item in items:
            if "asterisk" in item.keywords:
                item.add_marker(skip)
    # End-to-end files first: they take minutes, the unit files seconds, so parallel workers
    # (scripts/test) start the long ones early and the short ones fill in at the end.
    e2e_files = {item.path for item in items if "asterisk" in item.keywords}
    items.sort(key=lambda item: item.path not in e2e_files)  # stable: each file's tests stay in order


@dataclass
class MemoryPorts:
    """In-memory call ports for the harness flow: a directory of callees and what happened on each call."""

    contexts: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    turns: dict[str, list[tuple[str, str, float, float]]] = field(default_factory=dict)
    transfers: dict[str, dict] = field(default_factory=dict)

    async def lookup(self, call_id: str):
        return self.contexts.get(call_id)

    async def record_outcome(self, call_id: str, kind: str, data: dict) -> None:
        self.outcomes.setdefault(call_id, []).append((kind, data))

    async def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float, end: float) -> None:
        self.turns.setdefault(call_id, []).append((speaker, text, start, end))

    async def transfer_context(self, call_id: str, context: dict) -> None:
        self.transfers[call_id] = context


@pytest.fixture(scope="session")
def tts(tmp_path_factory):
    from agi.media.tts import TTS

    return TTS(cache_dir=tmp_path_factory.mktemp("prompts"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A running PBX + carrier + 2 SIPp collectors with the test behaviour file."""
    from dialer.telephony.harness import Harness

    h = Harness(tmp_path_factory.mktemp("run"), agents=2, behaviours=REPO / "tests" / "data" / "harness_behaviours.yaml",
                queue_timeout=20)
    h.up()
    try:
        yield h
    finally:
        h.down()
