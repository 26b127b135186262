"""``--cekura-order=finish``: run each test once nothing keeps it waiting, not in collection order.

pytest runs tests one after another in collection order, so a Cekura test whose calls end in
one second waits behind every test collected before it whose calls take minutes, and so do
plain tests collected after them. In finish order, tests that need no waiting (plain tests,
and Cekura tests whose runs are done) run first, and the others as their runs end.

pytest decides which fixtures to tear down after a test from the test that runs next, so the
next test must be chosen *before* the current one runs: it is the best candidate at that
moment (a ready test, else the first left in collection order). A test that becomes ready
meanwhile runs one test later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

ORDERS = ("collection", "finish")


def finish_order(
    items: Sequence[T], ready: Callable[[T], bool], wait: Callable[[], None]
) -> Iterator[tuple[T, T | None]]:
    """Yield ``(item, nextitem)`` pairs covering ``items`` once each, ready ones first.

    ``ready(item)`` says whether the item can run without waiting; ``wait()`` blocks until
    something may have become ready (it must return at once when nothing ever will, e.g.
    past the session's deadline, when ``ready`` is true for every item).
    """
    remaining = list(items)
    if not remaining:
        return
    while not any(ready(item) for item in remaining):
        wait()
    current: T | None = _take(remaining, ready)
    while current is not None:
        upcoming = _take(remaining, ready) if remaining else None
        yield current, upcoming
        current = upcoming


def _take(remaining: list[T], ready: Callable[[T], bool]) -> T:
    """Remove and return the first ready item, else the first item."""
    index = next((i for i, item in enumerate(remaining) if ready(item)), 0)
    return remaining.pop(index)
