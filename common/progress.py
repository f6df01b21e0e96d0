"""Progress of long CLI work (imports, QA batches, transcription, training, simulations): a `rich` bar on
stderr when stderr is a terminal, nothing at all otherwise (a pipe, a log file, a test's capture), so
scripts that read stdout or `--json` are never disturbed.

    with progress("importing debtors", total=len(rows)) as bar:
        for r in rows:
            ...
            bar.advance()
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class _Quiet:
    def advance(self, n: int = 1) -> None:
        pass

    def total(self, n: int | None) -> None:
        pass


class _Bar:
    def __init__(self, prog, task):
        self._prog, self._task = prog, task

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)

    def total(self, n: int | None) -> None:
        self._prog.update(self._task, total=n)


def on_terminal(stream=None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(label: str, total: int | None = None, stream=None) -> Iterator[_Bar | _Quiet]:
    """A bar for `label` (items done of `total`, rate, time left) while the block runs."""
    stream = stream if stream is not None else sys.stderr
    if not on_terminal(stream):
        yield _Quiet()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=Console(file=stream), transient=False)
    with prog:
        yield _Bar(prog, prog.add_task(label, total=total))


def track(items: Iterable[T], label: str, total: int | None = None, stream=None) -> Iterator[T]:
    """Yield each item, advancing a bar (see `progress`)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with progress(label, total, stream) as bar:
        for item in items:
            yield item
            bar.advance()
