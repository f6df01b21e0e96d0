"""50 voice calls in a row (10 rounds of 5 at once) leave nothing behind: no PBX channel (call or tap), no
socket or file descriptor of ours, no asyncio task."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agi.script.loader import load_by_id
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.voicelab import VoiceLab

pytestmark = pytest.mark.asterisk
SCRIPTS = Path(__file__).resolve().parent / "data" / "voice_scripts"
NUMBER = "+12125550171"


def open_fds() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


def test_fifty_calls_leave_no_channel_socket_task_or_file(tmp_path, tts):
    script = load_by_id("voice_hello_en", SCRIPTS)
    bf = behaviours_from_dict({NUMBER: {"speech": [{"at": 2.0, "say": "Hello?"}], "hangup_after": 20}})

    async def run():
        async with VoiceLab(tmp_path, bf, script, tts) as lab:
            await lab.call(NUMBER)  # warm: prompts rendered, sounds made
            await asyncio.sleep(0.3)
            fds0, tasks0 = sorted(open_fds()), len(asyncio.all_tasks())
            done = []
            for _ in range(10):
                done += await asyncio.gather(*(lab.call(NUMBER) for _ in range(5)))
            await asyncio.sleep(0.5)
            return (done, await lab.channels(), dict(lab.media.live), fds0, sorted(open_fds()), tasks0,
                    len(asyncio.all_tasks()), lab.agi.active)

    done, channels, live, fds0, fds1, tasks0, tasks1, active = asyncio.run(run())
    assert len(done) == 50 and all(c.result is not None and c.result.reason == "completed" for c in done)
    assert all(any(f["kind"] == "play" for f in c.facts) for c in done), "every call had its voice session"
    assert channels == 0 and live == {}
    assert not active
    leaked = [fd for fd in fds1 if fd not in fds0]
    assert not leaked and len(fds1) <= len(fds0), f"left open: {leaked}"
    assert tasks1 <= tasks0
