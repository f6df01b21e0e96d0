"""Webhook delivery from the durable outbox (dialer/store/outbox.py): POST each event to every endpoint that wants
it, signed with HMAC-SHA256, retried with capped exponential backoff, at least once; the event id is the
idempotency key (header `Idempotency-Key`). Runs in `dialer webhooks run`, or inside the daemon (`Deliverer.run`).

Signature header: `X-Dialer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp

from common.log import log_event
from dialer.store import Store, StoreUnavailable
from dialer.store import outbox as ob

log = logging.getLogger("dialer.webhooks")
SIGNATURE_HEADER = "X-Dialer-Signature"


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    ts = int(time.time()) if t is None else int(t)
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float | None = None,
           now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC over "<t>." + body and compare in constant time; with
    `tolerance`, refuse a timestamp further than that from now (replays)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    want = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts.get("v1", ""))


def body_of(event: dict[str, Any]) -> bytes:
    created = datetime.fromtimestamp(event["created_at"], timezone.utc).isoformat()
    return json.dumps({"id": event["event_id"], "kind": event["kind"], "subject": event["subject"],
                       "created_at": created, "data": json.loads(event["payload_json"])},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class DeliveryStats:
    delivered: int = 0
    failed: int = 0
    delays: list[float] | None = None  # created → delivered, seconds (kept when asked, for the bench)


class Deliverer:
    """Delivers the outbox to the registered endpoints; safe to kill at any moment (at least once)."""

    def __init__(self, store: Store, *, batch: int = 100, concurrency: int = 8, timeout: float = 10.0,
                 base_backoff: float = 1.0, max_backoff: float = 300.0, poll: float = 0.2,
                 clock: Callable[[], float] = time.time, keep_delays: bool = False):
        self.store = store
        self.batch, self.concurrency, self.timeout = batch, concurrency, timeout
        self.base_backoff, self.max_backoff, self.poll = base_backoff, max_backoff, poll
        self.clock = clock
        self.stats = DeliveryStats(delays=[] if keep_delays else None)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: base·2^(attempts-1), capped, ±20 % jitter."""
        raw = min(self.max_backoff, self.base_backoff * (2 ** max(0, attempts - 1)))
        return raw * random.uniform(0.8, 1.2)

    async def step(self, session: aiohttp.ClientSession) -> int:
        """One pass: fan out new events, POST what is due for each endpoint; returns deliveries made."""
        ob.fan_out(self.store)
        done = 0
        sem = asyncio.Semaphore(self.concurrency)
        for ep in ob.endpoints(self.store):
            due = ob.due_deliveries(self.store, ep["name"], self.clock(), self.batch, lease=self.timeout + 5)
            if not due:
                continue

            async def one(ev: dict[str, Any]) -> tuple[dict[str, Any], int | None, str | None]:
                body = body_of(ev)
                headers = {"Content-Type": "application/json", "Idempotency-Key": ev["event_id"],
                           "X-Dialer-Event": ev["kind"], "X-Dialer-Delivery-Attempt": str(ev["attempts"] + 1),
                           SIGNATURE_HEADER: sign(ep["secret"], body)}
                async with sem:
                    try:
                        async with session.post(ep["url"], data=body, headers=headers,
                                                timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                            await resp.read()
                            return ev, resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                        return ev, None, f"{type(exc).__name__}: {exc}"

            results = await asyncio.gather(*(one(ev) for ev in due))
            now = self.clock()
            ok = [(ev["outbox_id"], st, now) for ev, st, err in results if err is None]
            bad = [(ev["outbox_id"], st, err or "", now + self.backoff(ev["attempts"] + 1))
                   for ev, st, err in results if err is not None]
            if ok:
                ob.mark_delivered(self.store, ep["name"], ok)
                if self.stats.delays is not None:
                    self.stats.delays += [now - ev["created_at"] for ev, _, err in results if err is None]
            if bad:
                ob.mark_failed(self.store, ep["name"], bad)
                log_event(log, "webhook.retry", level=logging.WARNING, endpoint=ep["name"], failed=len(bad),
                          error=bad[0][2])
            self.stats.delivered += len(ok)
            self.stats.failed += len(bad)
            done += len(ok)
        return done

    def idle(self) -> bool:
        """Nothing left to deliver (every event fanned out and delivered)."""
        st = ob.status(self.store, self.clock())
        return all(e["pending"] == 0 for e in st["endpoints"] if e["active"])

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> DeliveryStats:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    n = await self.step(session)
                    if until_idle and self.idle():
                        break
                    nxt = None if n else ob.next_due_at(self.store)
                except StoreUnavailable:  # the database is away (a PostgreSQL restart): try again after a poll
                    n, nxt = 0, None
                if n:
                    continue
                wait = self.poll if nxt is None else max(0.0, min(self.poll, nxt - self.clock()))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
                except asyncio.TimeoutError:
                    pass
        return self.stats
