"""Two copies of the end-to-end suite on one machine: two pytest sessions of an end-to-end module started
at once, each with its own run directories and its own block of free ports, both place and complete
their calls through their own PBX and carrier without disturbing each other."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
CASE = "tests/test_e2e_ami.py"  # a PBX crash and restart in one copy must not touch the other


def test_two_copies_of_an_end_to_end_module_run_at_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    copies = [
        subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "--basetemp", str(tmp_path / f"copy{i}"), CASE],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in (1, 2)
    ]
    try:
        outputs = [c.communicate(timeout=120)[0] for c in copies]
    finally:
        for c in copies:  # a copy that overran is stopped by its PID, not left behind
            if c.poll() is None:
                c.kill()
                c.wait()
    for copy, out in zip(copies, outputs):
        assert copy.returncode == 0, out[-3000:]
        assert "2 passed" in out, out[-3000:]
    bases = {json.loads(f.read_text())["ports"]["base"] for f in tmp_path.glob("copy*/**/harness.json")}
    assert len(bases) == 2, "each copy takes its own ports"
