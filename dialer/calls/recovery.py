"""After a crash: what Asterisk and the store remember about the calls a previous process left open.

A restarted daemon settles every open attempt as a clean run would have (calls/daemon.py `reconcile`):
- a call still up in Asterisk is adopted: followed through AMI again until it ends, then settled like any
  other call (the hopper keeps dialling other debtors meanwhile);
- a call that ended while no daemon ran is settled from the facts written while it ran (the bot's outcomes,
  verification, transcript, AMD result, collector), Asterisk's CDR (disposition, answer time) and its CEL
  (the hang-up cause and dial status, which cdr_csv has no column for);
- a call Asterisk has no record of (a crash between the gate's transaction and the Originate) is `unknown`.

Also: `clock_behind`, the start-up check that the clock was not turned back."""
from __future__ import annotations

import csv
import json
import logging
import time
from calendar import timegm
from dataclasses import dataclass, replace
from pathlib import Path

from common import vocab
from dialer.store import Store, core
from dialer.telephony.ami import AMIController

log = logging.getLogger("dialer.calls.recovery")

# cdr_csv column order with loguniqueid=yes, loguserfield=yes
CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
               "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield")
# cel_custom mapping (asterisk-conf/pbx/cel_custom.conf): event type, time, channel uniqueid, extra (JSON)
CEL_COLUMNS = ("eventtype", "eventtime", "uniqueid", "extra")

DISPOSITION_OUTCOME = {"ANSWERED": vocab.ANSWERED, "NO ANSWER": vocab.NO_ANSWER, "BUSY": vocab.BUSY,
                       "FAILED": vocab.FAILED, "CONGESTION": vocab.FAILED}
CLOCK_TOLERANCE = 5.0  # seconds the clock may be behind the last recorded attempt (a small NTP step)


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
    userfield: str = ""

    @property
    def outcome(self) -> str:
        return DISPOSITION_OUTCOME.get(self.disposition.upper(), vocab.FAILED)

    @property
    def answered(self) -> bool:
        return self.disposition.upper() == "ANSWERED"

    @property
    def answer_epoch(self) -> float | None:
        """The answer time (cdr_csv writes UTC with usegmtime=yes), or None."""
        try:
            return float(timegm(time.strptime(self.answer.strip(), "%Y-%m-%d %H:%M:%S")))
        except ValueError:
            return None


@dataclass(frozen=True)
class CelRecord:
    """What the PBX's CEL logged for one channel: when it was answered, and its HANGUP with the Q.850 cause
    and the dial status, as AMI reports them. Written as each event happens, so it also tells about a call
    still up (answered while no daemon listened)."""

    uniqueid: str
    answered_at: float | None = None  # wall clock
    hung_up: bool = False
    cause: int | None = None
    dial_status: str | None = None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None


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
                                         int(rec["duration"] or 0), int(rec["billsec"] or 0), rec["lastapp"],
                                         rec["userfield"])
                except ValueError:
                    continue
    return out


def cel_path_for(cdr_path: Path) -> Path:
    """The PBX's CEL file next to its CDR: <astlogdir>/cel-custom/Master.csv."""
    return Path(cdr_path).parent.parent / "cel-custom" / "Master.csv"


def read_cel(path: Path) -> dict[str, CelRecord]:
    """Each channel's ANSWER and HANGUP by uniqueid."""
    out: dict[str, CelRecord] = {}
    if not path.exists():
        return out
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.reader(fh):
            if len(row) < len(CEL_COLUMNS):
                continue  # cut short by a crash
            rec = dict(zip(CEL_COLUMNS, row))
            uid, kind = rec["uniqueid"], rec["eventtype"].upper()
            if not uid:
                continue
            cur = out.get(uid, CelRecord(uid))
            if kind == "ANSWER" and cur.answered_at is None:
                try:
                    out[uid] = replace(cur, answered_at=float(rec["eventtime"]))
                except ValueError:
                    continue
            elif kind == "HANGUP":
                try:
                    extra = json.loads(rec["extra"] or "{}")
                except ValueError:
                    continue
                cause = extra.get("hangupcause")
                out[uid] = replace(cur, hung_up=True, dial_status=extra.get("dialstatus") or None,
                                   cause=int(cause) if str(cause).isdigit() else None)
    return out


def userfield_tags(userfield: str) -> dict[str, str]:
    """What the dialplan left in the CDR userfield after the call id: `<call id> amd=MACHINE queue=TIMEOUT`."""
    tags: dict[str, str] = {}
    for part in (userfield or "").split()[1:]:
        key, _, value = part.partition("=")
        if key and value:
            tags[key] = value.upper()
    return tags


def amd_from_userfield(userfield: str) -> str | None:
    """The AMD status the dialplan left in the CDR userfield, or None."""
    return userfield_tags(userfield).get("amd")


async def live_channels(ami: AMIController) -> dict[str, list[str]]:
    """Every channel up in Asterisk now: uniqueid → channel names."""
    out = await ami.command("core show channels concise")
    # concise fields: channel!context!exten!prio!state!app!data!cid!acct!peeracct!ama!duration!bridge!uniqueid
    chans: dict[str, list[str]] = {}
    for line in out.splitlines():
        if "!" in line:
            fields = line.strip().split("!")
            chans.setdefault(fields[-1], []).append(fields[0])
    return chans


async def live_call_ids(ami: AMIController) -> set[str]:
    """Uniqueids of every channel up in Asterisk now."""
    return set(await live_channels(ami))


async def channel_alive(ami: AMIController, call_id: str) -> bool:
    """Is a channel of this call still up in Asterisk?"""
    return call_id in await live_call_ids(ami)


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
