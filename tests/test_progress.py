"""Long CLI work shows progress on a terminal and prints nothing extra into a pipe."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CSV_HEAD = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
            "timezone,customer_type,lang,contacts\n")


def _csv(tmp_path: Path, n: int = 400) -> Path:
    f = tmp_path / "many.csv"
    f.write_text(CSV_HEAD + "".join(f"P{i:05d},Pat {i},+1212555{i:04d},1234,1980,ACC-P{i:05d},100.00,USD,10,"
                                    f"2026-11-13,America/New_York,first,en,\n" for i in range(n)))
    return f


def _cmd(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dialer.cli", *args, "--db", str(db)]


def _load(db: Path) -> None:
    subprocess.run(_cmd(db, "campaign", "load", str(REPO / "campaigns" / "en_demo.yaml")), cwd=REPO, check=True,
                   capture_output=True, timeout=60)


def test_an_import_shows_a_bar_on_a_terminal(tmp_path):
    db, f = tmp_path / "d.db", _csv(tmp_path)
    _load(db)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(_cmd(db, "debtors", "import", str(f), "--campaign", "en_demo"), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "COLUMNS": "120"})
        os.close(slave)
        out, chunks = proc.communicate(timeout=120)[0], []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    term = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, term
    assert "checking many.csv" in term and "writing debtors" in term and "400/400" in term, term[-2000:]
    assert "checking" not in out.decode()  # stdout stays clean for scripts


def test_an_import_into_a_pipe_prints_no_progress(tmp_path):
    db, f = tmp_path / "d.db", _csv(tmp_path)
    _load(db)
    res = subprocess.run(_cmd(db, "debtors", "import", str(f), "--campaign", "en_demo"), cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "checking" not in res.stderr and "writing debtors" not in res.stderr and "━" not in res.stderr
