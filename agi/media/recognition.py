"""The shared recognition service of a process: one decoder pool fed by a queue of endpointed utterances from
every call, each with its own deadline, earliest deadline first.

- **One model per language per process.** `asr.recognizer_for` caches it; Whisper is loaded with
  `inter_threads` = the pool size, so the pool's threads decode on one set of weights (CTranslate2 shares them
  on CPU: two decoders cost ~30 MB more than one, not a second model).
- **The pool follows the machine**: `pool_size()` = the cores this process may use (`DIALER_ASR_WORKERS`
  overrides). More decoders than cores only queue on the CPU.
- **Deadlines.** `await service.run(lang, fn, deadline=…)` runs `fn(recognizer)` on a pool thread. A job still
  queued when its deadline passes is never decoded; a caller whose deadline passes stops waiting and gets
  `DeadlineMissed` — the call then takes its graceful path ("sorry, could you repeat that?"), it never hangs.
- **Backpressure.** `load()` is what pacing reads (`dialer/pacing/bots.py`): workers, decode time and queue
  wait (moving averages), queue depth, deadlines missed lately. When the pool cannot keep up, the pacer
  places fewer bot calls instead of letting every call's latency grow.
- `slow_s` (tests and benchmarks only; `DIALER_ASR_SLOW_S` for the shared service) adds that many seconds of
  sleep to every decode: a slowed decoder. `DIALER_ASR_DEADLINE_S` sets the shared service's deadline.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from common.log import log_event

log = logging.getLogger("agi.media.recognition")

DEFAULT_DEADLINE_S = 3.0  # from the end of the caller's turn to a decoded answer; past it: "sorry, again?"
# Mandarin is decoded by Whisper base (about 3x tiny.en's work), sometimes twice (the echo check of answers.hear)
LANG_DEADLINE_S = {"zh": 5.0}
EWMA = 0.2  # weight of the newest decode in the moving averages
RECENT_S = 60.0  # a missed deadline counts against the pool's load for this long (or 20 utterances)


class DeadlineMissed(Exception):
    """The utterance was not decoded before its deadline (the pool is overloaded or the decoder slow)."""


def pool_size() -> int:
    """Decoder threads for this process: the cores it may run on (DIALER_ASR_WORKERS overrides)."""
    env = os.environ.get("DIALER_ASR_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"DIALER_ASR_WORKERS={env!r}: expected a whole number of decoder threads") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class PoolLoad:
    """What the pool looks like now; pacing's input for bot calls."""

    workers: int
    queued: int  # utterances waiting for a decoder
    running: int  # utterances being decoded
    decode_s: float | None  # moving average of one decode (None until the first)
    wait_s: float  # moving average of the time an utterance waited in the queue
    served: int  # utterances decoded since start
    missed: int  # utterances past their deadline since start
    missed_recent: int  # of the last 20 utterances, how many missed their deadline in the last minute
    deadline_s: float  # the default per-utterance deadline


@dataclass(order=True)
class _Job:
    deadline: float
    seq: int
    fn: Callable[[Any], Any] = None  # type: ignore[assignment]
    lang: str = ""
    future: Future = None  # type: ignore[assignment]
    queued_at: float = 0.0


class RecognitionService:
    """A pool of decoder threads over one recognizer per language, earliest deadline first."""

    def __init__(self, workers: int | None = None, *, deadline_s: float = DEFAULT_DEADLINE_S,
                 loader: Callable[[str], Any] | None = None, slow_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic, lang_deadline_s: dict[str, float] | None = None):
        self.workers = workers or pool_size()
        self.deadline_s = deadline_s
        self.lang_deadline_s = dict(LANG_DEADLINE_S if lang_deadline_s is None else lang_deadline_s)
        self.slow_s = slow_s
        self._loader = loader
        self._now = monotonic
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._heap: list[_Job] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._running = 0
        self._served = 0
        self._missed = 0
        self._recent: deque[tuple[float, bool]] = deque(maxlen=20)  # (when, in time) of the last utterances
        self._decode_s: float | None = None
        self._wait_s = 0.0
        # called on a decoder thread after each decode with (lang, seconds it took, backend): the daemon's metrics
        self.on_decoded: list[Callable[[str, float, str], None]] = []

    def deadline_for(self, lang: str) -> float:
        """Seconds an utterance of `lang` may take from queueing to decoded."""
        return self.lang_deadline_s.get(lang, self.deadline_s)

    # -- models ---------------------------------------------------------------------------------------
    def model(self, lang: str) -> Any:
        """The language's recognizer, loaded once per service (on the calling thread; use `preload`)."""
        with self._load_lock:
            if lang not in self._models:
                if self._loader is not None:
                    self._models[lang] = self._loader(lang)
                else:
                    from agi.media.asr import recognizer_for

                    self._models[lang] = recognizer_for(lang, inter_threads=self.workers)
            return self._models[lang]

    async def preload(self, lang: str) -> Any:
        """Load the language's model off the event loop (once); ModelMissing when it is not installed."""
        return await asyncio.to_thread(self.model, lang)

    # -- the pool -------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._threads:
            return
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"asr-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed and not self._heap:
                    return
                job = heapq.heappop(self._heap)
                if job.future.cancelled():
                    continue  # nobody waits for it (an early hearing the caller talked on after)
                if self._now() > job.deadline:
                    self._note(False)
                    job.future.set_exception(DeadlineMissed("late in the queue"))
                    continue
                if not job.future.set_running_or_notify_cancel():
                    continue
                self._running += 1
                waited = self._now() - job.queued_at
                self._wait_s = waited if self._served == 0 else (1 - EWMA) * self._wait_s + EWMA * waited
            t0 = self._now()
            try:
                if self.slow_s:
                    time.sleep(self.slow_s)
                result = job.fn(self.model(job.lang))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting call
                with self._cv:
                    self._running -= 1
                job.future.set_exception(exc)
                continue
            took = self._now() - t0
            with self._cv:
                self._running -= 1
                self._served += 1
                self._decode_s = took if self._decode_s is None else (1 - EWMA) * self._decode_s + EWMA * took
                self._note(self._now() <= job.deadline)
            job.future.set_result(result)
            for fn in list(self.on_decoded):
                try:
                    fn(job.lang, took, str(getattr(result, "backend", "")).split(":")[0])
                except Exception:  # noqa: BLE001 - an observer never stops the decoder
                    log.exception("recognition observer failed")

    def _note(self, in_time: bool) -> None:
        self._recent.append((self._now(), in_time))
        if not in_time:
            self._missed += 1

    def submit(self, lang: str, fn: Callable[[Any], Any], *, deadline: float | None = None) -> Future:
        """Queue `fn(recognizer)`; `deadline` is a `monotonic` time (default: now + deadline_s)."""
        now = self._now()
        job = _Job(deadline if deadline is not None else now + self.deadline_for(lang), next(self._seq), fn, lang,
                   Future(), now)
        with self._cv:
            if self._closed:
                raise RuntimeError("the recognition service is closed")
            self._start()
            heapq.heappush(self._heap, job)
            self._cv.notify()
        return job.future

    async def run(self, lang: str, fn: Callable[[Any], Any], *, deadline: float | None = None) -> Any:
        """Decode on the pool and wait at most until the deadline; DeadlineMissed past it."""
        deadline = deadline if deadline is not None else self._now() + self.deadline_for(lang)
        fut = self.submit(lang, fn, deadline=deadline)
        waited = asyncio.wrap_future(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(waited), max(0.0, deadline - self._now()))
        except asyncio.CancelledError:
            waited.add_done_callback(_settled)
            fut.cancel()  # nobody waits for it any more (an early decode the caller talked on over)
            raise
        except asyncio.TimeoutError:
            waited.add_done_callback(_settled)  # its late result or DeadlineMissed is nobody's now
            if fut.cancel():  # still queued: never decoded
                with self._cv:
                    self._note(False)
            log_event(log, "asr.deadline_missed", level=logging.WARNING, lang=lang, queued=len(self._heap),
                      running=self._running)
            raise DeadlineMissed("past the utterance's deadline") from None

    def load(self) -> PoolLoad:
        now = self._now()
        with self._cv:
            queued = sum(1 for j in self._heap if not j.future.cancelled())
            return PoolLoad(self.workers, queued, self._running, self._decode_s, self._wait_s, self._served,
                            self._missed, sum(1 for at, ok in self._recent if not ok and at > now - RECENT_S),
                            self.deadline_s)

    def close(self) -> None:
        """Stop the threads once the queue is empty (jobs still queued are cancelled)."""
        with self._cv:
            self._closed = True
            for job in self._heap:
                job.future.cancel()
            self._heap.clear()
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()


def _settled(fut: "asyncio.Future[Any]") -> None:
    """Retrieve the outcome of a decode nobody waits for any more (else asyncio logs "Future exception was
    never retrieved" for every utterance that went past its deadline)."""
    if not fut.cancelled():
        fut.exception()


_service: RecognitionService | None = None
_service_lock = threading.Lock()


def shared_service() -> RecognitionService:
    """The process's recognition service (made on first use)."""
    global _service
    with _service_lock:
        if _service is None:
            slow = os.environ.get("DIALER_ASR_SLOW_S", "").strip()  # tests and benchmarks: a slowed decoder
            deadline = os.environ.get("DIALER_ASR_DEADLINE_S", "").strip()
            _service = RecognitionService(slow_s=float(slow) if slow else 0.0,
                                          deadline_s=float(deadline) if deadline else DEFAULT_DEADLINE_S,
                                          lang_deadline_s={} if deadline else None)
        return _service


__all__ = ["DEFAULT_DEADLINE_S", "DeadlineMissed", "PoolLoad", "RecognitionService", "pool_size",
           "shared_service"]
