"""Call recordings at the PBX: one file per leg (MixMonitor r()/t(), dialplan `dialer-record`), sealed into the
store and the audit log once MixMonitor has closed them, pruned by the profile's retention, and every
playback or export by a person audited. docs/RECORDINGS.md.

Legs (file `<rec dir>/<call id>-<leg>.wav`):
  callee           what the debtor said (the debtor channel's read side)
  heard            what the debtor heard: the bot, then the collector (never a whisper)
  mix              both, as one file to listen to
  collector        what the collector said (the collector channel's read side)
  collector-heard  what reached the collector's phone (the debtor, and any whisper)
  collector-mix    both, on the collector's channel
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from common.log import log_event
from common.wav import wav_info
from dialer.store import Store
from dialer.store import recordings as rec_store
from dialer.store.audit import file_sha256, write_head

log = logging.getLogger("dialer.qa.recordings")

LEGS = ("callee", "heard", "mix", "collector", "collector-heard", "collector-mix")
DEBTOR_LEGS = ("callee", "heard", "mix")
DAY = 86400.0
NO_FILES_AFTER = 2.0  # seconds after hang-up: no leg file by then means the PBX did not record the call


NOTICE_CONTEXT = "dialer-notice"  # asterisk-conf/pbx/extensions.conf


async def play_notice(ami: Any, call_id: str, channel: str, notice: str) -> str:
    """Barge the profile's recording notice (a rendered prompt, path without extension) into a collector's call
    once the collector is connected: ChanSpy `B` from a Local channel that plays it, so the debtor and the
    collector both hear it. The dialplan sends DialerNoticePlayed when it has played. Returns what was done."""
    try:
        await ami.send({
            "Action": "Originate", "Channel": f"Local/play@{NOTICE_CONTEXT}/n",
            "Application": "ChanSpy", "Data": f"{channel},qBE",
            "Variable": [f"_DIALER_NOTICE={notice}", f"_DIALER_CALL_ID={call_id}"],
            "Async": "true", "Timeout": "5000"}, timeout=5.0)
        return "barged"
    except Exception as exc:  # noqa: BLE001
        log_event(log, "recording.notice_failed", level=logging.WARNING, call=call_id, error=str(exc))
        return f"failed: {exc}"


class RecordingError(ValueError):
    """A recording operation that cannot be done (unknown call or leg, file gone, retention not over)."""


def rec_dir_for(cdr_path: str | Path) -> Path:
    """The PBX's recordings directory (the dialplan's ${REC}): <pbx run dir>/rec, next to log/cdr-csv/."""
    return Path(cdr_path).resolve().parent.parent.parent / "rec"


def leg_files(rec_dir: Path, call_id: str) -> dict[str, Path]:
    """The leg files the PBX wrote for a call (those that exist)."""
    out = {}
    for leg in LEGS:
        p = Path(rec_dir) / f"{call_id}-{leg}.wav"
        if p.exists():
            out[leg] = p
    return out


def is_closed(path: Path) -> bool:
    """MixMonitor writes a WAV's sizes when it closes the file: a RIFF size that matches the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        return False
    return len(head) == 8 and head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") == size - 8


def _leg_entry(leg: str, path: Path) -> dict[str, Any]:
    try:
        seconds = wav_info(path)[3]
    except Exception:  # noqa: BLE001 - an unreadable file is still sealed (its hash is the evidence)
        seconds = 0.0
    return {"leg": leg, "path": str(path.resolve()), "sha256": file_sha256(path), "bytes": path.stat().st_size,
            "seconds": round(float(seconds), 3)}


def hash_legs(rec_dir: Path, call_id: str, skip: set[str], closed_only: bool = True) -> list[dict[str, Any]]:
    """Each closed leg file of the call not in `skip`, hashed (no store access: safe in a worker thread)."""
    return [_leg_entry(leg, p) for leg, p in leg_files(rec_dir, call_id).items()
            if leg not in skip and (not closed_only or is_closed(p))]


def seal_now(store: Store, rec_dir: Path, call_id: str, *, at: float | None = None, actor: str = "dialer",
             closed_only: bool = True, hashed: list[dict[str, Any]] | None = None) -> list[str]:
    """Hash the call's closed leg files into the store and the audit log; returns the legs sealed now."""
    legs = hashed if hashed is not None else hash_legs(rec_dir, call_id, rec_store.sealed_legs(store, call_id),
                                                       closed_only)
    if not legs:
        return []
    rec_store.seal(store, call_id, legs, rec_store.call_facts(store, call_id), actor=actor, at=at)
    write_head(store)
    log_event(log, "recording.sealed", call=call_id, legs=",".join(e["leg"] for e in legs))
    return [e["leg"] for e in legs]


async def seal_when_closed(store: Store, rec_dir: Path, call_id: str, *, at: Callable[[], float] | None = None,
                           timeout: float = 20.0, poll: float = 0.1) -> list[str]:
    """After hang-up: wait until MixMonitor has closed every leg file of the call, then seal them.
    What is still open at the timeout is left for `dialer recordings seal` (and logged)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        files = leg_files(rec_dir, call_id)
        if files and all(is_closed(p) for p in files.values()):
            break
        if not files and time.monotonic() > t0 + NO_FILES_AFTER:
            return []  # MixMonitor creates the files when the call starts: this call was not recorded
        if time.monotonic() > deadline:
            log_event(log, "recording.unsealed", level=logging.WARNING, call=call_id,
                      open=",".join(leg for leg, p in files.items() if not is_closed(p)) or "none")
            break
        await asyncio.sleep(poll)
    # hashing in a worker thread; the store (one connection) is written on the event loop's thread
    hashed = await asyncio.to_thread(hash_legs, rec_dir, call_id, rec_store.sealed_legs(store, call_id))
    return seal_now(store, rec_dir, call_id, at=at() if at else None, hashed=hashed)


def seal_pending(store: Store, rec_dir: Path, *, at: float | None = None, actor: str = "operator",
                 since: float | None = None) -> dict[str, list[str]]:
    """Seal every ended call whose leg files were never sealed (a daemon stopped between hang-up and
    sealing); files still open are left for the next run."""
    out = {}
    for call_id in rec_store.ended_calls_without_recordings(store, since=since):
        legs = seal_now(store, rec_dir, call_id, at=at, actor=actor)
        if legs:
            out[call_id] = legs
    return out


class Recorder:
    """The daemon's side: `hung_up(call_id)` seals the call's files once closed; `drain()` at stop."""

    def __init__(self, store: Store, rec_dir: Path, clock_now: Callable[[], float]):
        self.store, self.rec_dir, self.now = store, Path(rec_dir), clock_now
        self.tasks: set[asyncio.Task] = set()

    def hung_up(self, call_id: str) -> None:
        task = asyncio.ensure_future(self._seal(call_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _seal(self, call_id: str) -> None:
        try:
            await seal_when_closed(self.store, self.rec_dir, call_id, at=self.now)
        except Exception:  # noqa: BLE001 - sealing must never stop the dialer; `recordings seal` catches up
            log.exception("sealing the recordings of call %s failed", call_id)

    async def drain(self, timeout: float = 25.0) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    async def start(self) -> dict[str, list[str]]:
        """Seal what a previous process left unsealed (calls of the last two days), before any new call."""
        now = self.now()
        return seal_pending(self.store, self.rec_dir, at=now, actor="dialer", since=now - 2 * DAY)


# -- retention ------------------------------------------------------------------------------------

def due_for_pruning(store: Store, retention_of: Callable[[str | None], int | None], now: float) -> list[dict[str, Any]]:
    """Leg files whose call is older than its profile's retention (None: kept until deleted by hand)."""
    out = []
    for r in rec_store.list_recordings(store):
        days = retention_of(r["profile"])
        if days is None or r["started_at"] is None:
            continue
        if r["started_at"] + days * DAY <= now:
            out.append(r | {"retention_days": days})
    return out


def prune(store: Store, retention_of: Callable[[str | None], int | None], now: float, *, actor: str = "operator",
          dry_run: bool = False) -> list[dict[str, Any]]:
    """Delete the leg files retention no longer covers: each deletion is written to the audit log first
    (so `dialer audit verify` reports it as pruned, not deleted), then the file goes."""
    due = due_for_pruning(store, retention_of, now)
    if dry_run:
        return due
    for r in due:
        rec_store.mark_pruned(store, r, retention_days=r["retention_days"], reason="retention", actor=actor, at=now)
        try:
            os.unlink(r["path"])
        except FileNotFoundError:
            pass
    if due:
        write_head(store)
    return due


# -- access by a person ---------------------------------------------------------------------------

def leg_for_access(store: Store, call_id: str, leg: str) -> dict[str, Any]:
    rows = {r["leg"]: r for r in rec_store.recordings_for(store, call_id)}
    if not rows:
        raise RecordingError(f"call {call_id}: no recording (an unknown call, or not sealed yet: dialer recordings seal)")
    if leg not in rows:
        raise RecordingError(f"call {call_id}: no leg {leg!r} (legs: {', '.join(rows)})")
    r = rows[leg]
    if r["pruned_at"] is not None:
        raise RecordingError(f"call {call_id} leg {leg}: pruned by retention on "
                             f"{time.strftime('%Y-%m-%d', time.gmtime(r['pruned_at']))}")
    if not Path(r["path"]).exists():
        raise RecordingError(f"call {call_id} leg {leg}: file missing ({r['path']}); run dialer audit verify")
    return r


def export_leg(store: Store, call_id: str, leg: str, to: Path, *, actor: str) -> Path:
    """Copy one leg out (audited: who, when, which call, where to)."""
    r = leg_for_access(store, call_id, leg)
    to = Path(to)
    if to.is_dir():
        to = to / Path(r["path"]).name
    rec_store.record_access(store, call_id, "exported", leg, r["path"], actor=actor, to=str(to.resolve()))
    write_head(store)
    shutil.copyfile(r["path"], to)
    os.chmod(to, 0o600)
    return to


def play_leg(store: Store, call_id: str, leg: str, *, actor: str) -> Path:
    """Audit a playback and return the file to play."""
    r = leg_for_access(store, call_id, leg)
    rec_store.record_access(store, call_id, "played", leg, r["path"], actor=actor)
    write_head(store)
    return Path(r["path"])
