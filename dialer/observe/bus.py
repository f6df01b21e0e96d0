"""The daemon's event bus: in-process, synchronous publish / subscribe of small frozen dataclasses (the typed
call events of calls/events.py and the facts of observe/events.py). `publish(event)` calls each subscriber
interested in the event's class, in the order they subscribed; a subscriber that raises is logged once and
never stops the caller (a broken wallboard must not stop a call)."""
from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger("dialer.observe.bus")

Subscriber = Callable[[Any], None]


class Bus:
    def __init__(self) -> None:
        self._subs: list[tuple[tuple[type, ...] | None, Subscriber]] = []
        self._failed: set[int] = set()
        self.published = 0

    def subscribe(self, fn: Subscriber, *types: type) -> Callable[[], None]:
        """Call `fn(event)` for each event published (only of `types`, when given). Returns the unsubscribe."""
        entry = (types or None, fn)
        self._subs.append(entry)

        def unsubscribe() -> None:
            if entry in self._subs:
                self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: Any) -> None:
        self.published += 1
        for types, fn in list(self._subs):
            if types is not None and not isinstance(event, types):
                continue
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - an observer's bug never reaches the call that published
                if id(fn) not in self._failed:
                    self._failed.add(id(fn))
                    log.exception("bus subscriber %r failed on %s (logged once)", fn, type(event).__name__)
