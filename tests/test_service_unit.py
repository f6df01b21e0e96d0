"""The systemd unit that runs the daemon as a service: systemd itself verifies it, and the environment
file it reads names every variable its command line uses."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_the_unit_verifies_and_its_environment_file_fills_its_command(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd): scripts/setup installs it"
    prefix = tmp_path / "opt" / "dialer"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    (prefix / ".venv" / "bin" / "python").symlink_to(sys.executable)
    env_file = tmp_path / "dialer.env"
    env = CliRunner().invoke(main, ["service", "env", "--prefix", str(prefix)])
    env_file.write_text(env.output)
    res = CliRunner().invoke(main, ["service", "unit", "--prefix", str(prefix), "--user", "root",
                                    "--env-file", str(env_file)])
    assert res.exit_code == 0, res.output
    unit = tmp_path / "dialer.service"
    unit.write_text(res.output)
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", res.output))
    defined = {line.split("=", 1)[0] for line in env.output.splitlines() if line and not line.startswith("#")}
    assert used <= defined, used - defined
    assert "UMask=0077" in res.output and "--log-file" in res.output


def test_the_shipped_files_are_what_the_commands_print():
    r = CliRunner()
    assert (REPO / "deploy" / "dialer.service").read_text() == r.invoke(main, ["service", "unit"]).output
    assert (REPO / "deploy" / "dialer.env").read_text() == r.invoke(main, ["service", "env"]).output
