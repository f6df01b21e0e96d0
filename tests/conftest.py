"""Shared fixtures. Asterisk fixtures start real PBX + carrier instances on loopback (ports 26000+)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_BASE_PORT = 26000
TEST_AGI_PORT = 26573


def pytest_collection_modifyitems(config, items):
    if shutil.which("asterisk") is None or shutil.which("sipp") is None:
        skip = pytest.mark.skip(reason="Asterisk/SIPp not installed: run scripts/setup")
        for item in items:
            if "asterisk" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def tts(tmp_path_factory):
    from agi.media.tts import TTS

    return TTS(cache_dir=tmp_path_factory.mktemp("prompts"))


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A running PBX + carrier + 2 SIPp collectors with the test behaviour file."""
    from dialer.telephony.harness import Harness

    h = Harness(tmp_path_factory.mktemp("run"), base_port=TEST_BASE_PORT, agi_port=TEST_AGI_PORT, agents=2,
                behaviours=REPO / "tests" / "data" / "harness_behaviours.yaml", queue_timeout=20)
    h.up()
    try:
        yield h
    finally:
        h.down()
