"""A call's frames in order, system frames first (pipecat's `FrameProcessorQueue` idea, our own code):
an `Interruption` queued behind audio is taken before it, and `interrupt()` drops queued data frames
except `Uninterruptible` ones. `Pipeline` runs a source through a linear chain of steps."""
from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator, Callable, Iterable

from agi.media.frames import Frame, SystemFrame, Uninterruptible

Step = Callable[[Frame], Iterable[Frame]]


class FrameQueue:
    """An asyncio queue that hands out system frames before data frames, each kind in arrival order."""

    def __init__(self) -> None:
        self._q: asyncio.PriorityQueue[tuple[int, int, Frame | None]] = asyncio.PriorityQueue()
        self._n = itertools.count()

    def put(self, frame: Frame | None) -> None:
        """`None` ends the stream (after what is queued)."""
        prio = 0 if isinstance(frame, SystemFrame) else (2 if frame is None else 1)
        self._q.put_nowait((prio, next(self._n), frame))

    async def get(self) -> Frame | None:
        return (await self._q.get())[2]

    def get_nowait(self) -> Frame | None:
        return self._q.get_nowait()[2]

    def empty(self) -> bool:
        return self._q.empty()

    def interrupt(self) -> list[Frame]:
        """Drop queued data frames that may be cut; return what was dropped."""
        kept, dropped = [], []
        while not self._q.empty():
            item = self._q.get_nowait()
            f = item[2]
            if f is None or isinstance(f, (SystemFrame, Uninterruptible)):
                kept.append(item)
            else:
                dropped.append(f)
        for item in kept:
            self._q.put_nowait(item)
        return dropped

    def __len__(self) -> int:
        return self._q.qsize()


class Pipeline:
    """source → step → step → … → sink queue. Each step maps one frame to zero or more frames."""

    def __init__(self, steps: list[Step]):
        self.steps = steps
        self.out = FrameQueue()

    def push(self, frame: Frame) -> list[Frame]:
        frames = [frame]
        for step in self.steps:
            frames = [g for f in frames for g in step(f)]
        for f in frames:
            self.out.put(f)
        return frames

    async def run(self, source: AsyncIterator[Frame]) -> None:
        try:
            async for frame in source:
                self.push(frame)
        finally:
            self.out.put(None)
