"""After a crash: settle attempts left open in the store from Asterisk's CDR (uniqueid = our call id)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

# cdr_csv column order with loguniqueid=yes, loguserfield=yes
CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
               "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield")

DISPOSITION_OUTCOME = {"ANSWERED": "answered", "NO ANSWER": "no_answer", "BUSY": "busy", "FAILED": "failed",
                       "CONGESTION": "failed"}


@dataclass(frozen=True)
class CdrRecord:
    uniqueid: str
    disposition: str
    start: str
    answer: str
    end: str
    duration: int
    billsec: int
    lastapp: str

    @property
    def outcome(self) -> str:
        return DISPOSITION_OUTCOME.get(self.disposition.upper(), "failed")


def read_cdr(path: Path) -> dict[str, CdrRecord]:
    """Records by uniqueid (the first record of a call is its originated leg)."""
    out: dict[str, CdrRecord] = {}
    if not path.exists():
        return out
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.reader(fh):
            if len(row) < len(CDR_COLUMNS):
                continue  # a line cut short by a crash: ignore, never guess
            rec = dict(zip(CDR_COLUMNS, row))
            uid = rec["uniqueid"]
            if uid and uid not in out:
                try:
                    out[uid] = CdrRecord(uid, rec["disposition"], rec["start"], rec["answer"], rec["end"],
                                         int(rec["duration"] or 0), int(rec["billsec"] or 0), rec["lastapp"])
                except ValueError:
                    continue
    return out
