"""After a crash: settle attempts left open in the store from Asterisk's CDR (uniqueid = our call id)."""
from __future__ import annotations

import asyncio
import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from common import vocab
from common.clock import Clock
from common.log import log_event
from dialer.store import Store, core
from dialer.telephony.ami import AMIController

log = logging.getLogger("dialer.calls.recovery")

# cdr_csv column order with loguniqueid=yes, loguserfield=yes
CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
               "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield")

DISPOSITION_OUTCOME = {"ANSWERED": vocab.ANSWERED, "NO ANSWER": vocab.NO_ANSWER, "BUSY": vocab.BUSY,
                       "FAILED": vocab.FAILED, "CONGESTION": vocab.FAILED}


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
        return DISPOSITION_OUTCOME.get(self.disposition.upper(), vocab.FAILED)


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


CLOCK_TOLERANCE = 5.0  # seconds the clock may be behind the last recorded attempt (a small NTP step)


def clock_behind(store: Store, now: float, tolerance: float = CLOCK_TOLERANCE) -> str | None:
    """Why the daemon must not start with this clock, or None. A clock behind the last recorded attempt
    (an earlier `--at`, a system clock stepped back) would let the gate place a call inside a quiet period or
    a minimum gap it has already started counting."""
    last = core.latest_attempt_time(store)
    if last is None or now >= last - tolerance:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (f"the clock ({time.strftime(fmt, time.gmtime(now))}) is {last - now:.0f} s behind the last recorded "
            f"attempt ({time.strftime(fmt, time.gmtime(last))}): refusing to start; set the clock (or --at) "
            f"to after it")


async def channel_alive(ami: AMIController, call_id: str) -> bool:
    """Is a channel of this call still up in Asterisk?"""
    out = await ami.command("core show channels concise")
    # concise fields: channel!context!exten!prio!state!app!data!cid!acct!peeracct!ama!duration!bridge!uniqueid
    return any(line.strip().split("!")[-1] == call_id for line in out.splitlines())


async def reconcile(store: Store, ami: AMIController, cdr_path: Path, clock: Clock,
                    schedule: Callable[[dict[str, Any], str], None], wait_for_live: float = 90.0) -> int:
    """Settle attempts a previous process left open: outcome from the CDR, 'unknown' only when Asterisk has
    no record of the call. Calls still up in Asterisk are waited for (bounded). `schedule(attempt, outcome)`
    sets when each debtor may be called next. Returns how many were settled."""
    open_rows = core.open_attempts(store)
    deadline = time.monotonic() + wait_for_live
    for row in open_rows:
        call_id = row["id"]
        while time.monotonic() < deadline and await channel_alive(ami, call_id):
            await asyncio.sleep(0.5)
        rec = None
        for _ in range(20):  # the CDR is dispatched shortly after the channel is destroyed
            rec = read_cdr(cdr_path).get(call_id)
            if rec is not None:
                break
            await asyncio.sleep(0.25)
        now = clock.timestamp()
        if rec is None:
            core.update_attempt(store, call_id, state="unknown", outcome=vocab.UNKNOWN, ended_at=now,
                                actor="reconcile", at=now)
            outcome = vocab.UNKNOWN
        else:
            fields: dict[str, Any] = {"state": "ended", "outcome": rec.outcome, "ended_at": now}
            if rec.outcome == vocab.ANSWERED:
                fields["answered_at"] = row["placed_at"]
            core.update_attempt(store, call_id, actor="reconcile", at=now, **fields)
            outcome = rec.outcome
        core.record_call_event(store, call_id, "reconciled", now,
                               {"source": "cdr" if rec else "none", "outcome": outcome,
                                "cdr_disposition": rec.disposition if rec else None,
                                "billsec": rec.billsec if rec else None})
        schedule(row, outcome)
        log_event(log, "reconciled", call=call_id, outcome=outcome, source="cdr" if rec else "none")
    return len(open_rows)
