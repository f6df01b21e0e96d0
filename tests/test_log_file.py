"""The daemon's log file: JSON lines, rotated by size, private, phone numbers and ids masked."""
from __future__ import annotations

import json
import logging

from common.log import file_handler, log_event


def test_the_log_file_rotates_and_stays_masked_and_private(tmp_path):
    path = tmp_path / "log" / "dialer.jsonl"
    handler = file_handler(str(path), max_bytes=2000, backups=3)
    logger = logging.getLogger("test.logfile")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for i in range(60):
            log_event(logger, "gate.allow", call_id=f"c{i}", debtor_id="D0012345", phone="+8613800138000")
            logger.info("library text with a number 13912345678 in it")
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["dialer.jsonl", "dialer.jsonl.1", "dialer.jsonl.2", "dialer.jsonl.3"]
    assert path.parent.stat().st_mode & 0o077 == 0
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600, f
        text = f.read_text()
        assert "13800138000" not in text and "13912345678" not in text and "D0012345" not in text
        for line in text.splitlines():
            rec = json.loads(line)
            assert rec["level"] == "info" and rec["ts"].endswith("+00:00")
    last = [json.loads(x) for x in path.read_text().splitlines()]
    assert {r["event"] for r in last} <= {"gate.allow", "library"}
    assert any("+86*******8000" in r["msg"] for r in last)
