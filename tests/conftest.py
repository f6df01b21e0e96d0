"""Shared fixtures. Asterisk fixtures start real PBX + carrier instances on loopback, each on a block of
free ports it claims (dialer.telephony.harness.claim_ports), so test processes can share a machine."""
from __future__ import annotations

import shutil
from pathlib import Path

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
