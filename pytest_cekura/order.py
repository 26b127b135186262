"""``--cekura-order=finish``: run each test once nothing keeps it waiting, not in collection order.

pytest runs tests one after another in collection order, so a Cekura test whose calls end in
one second waits behind every test collected before it whose calls take minutes, and so do
plain tests collected after them. In finish order, tests that need no waiting (plain tests,
and Cekura tests whose runs are done) run first, and the others as their runs end.

pytest decides which fixtures to tear down after a test from the test that runs next, so the
next test must be chosen *before* the current one runs: it is the first ready test left, and
when none is ready the loop waits (on the poller) until one is, before running the current
one. It never commits to a test that is still waiting: a test named that way would hold the
main thread for its calls, however long, while tests whose calls end meanwhile queue behind
it. The price is that the current test is reported once the next one is ready, not before;
a test whose runs end meanwhile runs one test later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

ORDERS = ("collection", "finish")


def finish_order(
    items: Sequence[T], ready: Callable[[T], bool], wait: Callable[[], None]
) -> Iterator[tuple[T, T | None]]:
    """Yield ``(item, nextitem)`` pairs covering ``items`` once each, each as soon as it is ready.

    ``ready(item)`` says whether the item can run without waiting; ``wait()`` blocks briefly
    until something may have become ready (a short slice, so Ctrl-C interrupts it; it must
    return at once when nothing ever will, e.g. past the session's deadline, when ``ready``
    is true for every item). Both items of a pair were ready when it was yielded.
    """
    remaining = list(items)
    current = _take_ready(remaining, ready, wait) if remaining else None
    while current is not None:
        upcoming = _take_ready(remaining, ready, wait) if remaining else None
        yield current, upcoming
        current = upcoming


def _take_ready(remaining: list[T], ready: Callable[[T], bool], wait: Callable[[], None]) -> T:
    """Remove and return the first ready item, waiting until there is one."""
    while (index := next((i for i, item in enumerate(remaining) if ready(item)), None)) is None:
        wait()
    return remaining.pop(index)
