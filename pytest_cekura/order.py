"""``--cekura-order=finish``: run each test once nothing keeps it waiting, not in collection order.

pytest runs tests one after another in collection order, so a Cekura test whose calls end in
one second waits behind every test collected before it whose calls take minutes, and so do
plain tests collected after them. In finish order, tests that need no waiting (plain tests,
and Cekura tests whose runs are done) run first, and the others as their runs end.

pytest decides which fixtures to tear down after a test from the test that runs next, so the
next test is named *before* the current one runs: the first ready test left. When none is
ready, it is never the first one left in collection order: that test would hold the main
thread for its calls, however long, while tests whose calls end meanwhile queue behind it.
Instead:

* if pytest would tear down the same fixtures whichever test comes next (the tests left all
  share as much of the current one's chain of modules and classes), any one is named, the
  current test runs at once, and the next is the first to become ready afterwards;
* otherwise the loop waits (on the poller) until a test is ready and names it before running
  the current one, which is then reported once the next one is ready.

A test whose runs end meanwhile runs one test later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
#: An item with its chain of collectors, as ``finish_order`` keeps the items left.
Entry = tuple[T, tuple[object, ...]]

ORDERS = ("collection", "finish")


def finish_order(
    items: Sequence[T],
    ready: Callable[[T], bool],
    wait: Callable[[], None],
    parents: Callable[[T], Sequence[object]],
) -> Iterator[tuple[T, T | None]]:
    """Yield ``(item, nextitem)`` pairs covering ``items`` once each, each as soon as it is ready.

    ``ready(item)`` says whether the item can run without waiting; ``wait()`` blocks briefly
    until something may have become ready (a short slice, so Ctrl-C interrupts it; it must
    return at once when nothing ever will, e.g. past the session's deadline, when ``ready``
    is true for every item). ``parents(item)`` is the item's chain of collectors (pytest's
    ``listchain()`` without the item): the fixtures kept after a test are those of the part of
    its chain the next test shares. ``nextitem`` is the item yielded next, or, named only for
    that teardown, one sharing as much of the chain as it does.
    """
    left = [(item, tuple(parents(item))) for item in items]
    current = _take_ready(left, ready, wait) if left else None
    while current is not None:
        if not left:
            yield current[0], None
            return
        index = _first_ready(left, ready)
        if index is None and _same_teardown(current[1], left):
            # Which test comes next changes nothing in this one's teardown: run it now (its
            # report need not wait for the next one) and choose the next one once it is ready.
            yield current[0], left[0][0]
            current = _take_ready(left, ready, wait)
            continue
        upcoming = left.pop(index) if index is not None else _take_ready(left, ready, wait)
        yield current[0], upcoming[0]
        current = upcoming


def _first_ready(left: list[Entry[T]], ready: Callable[[T], bool]) -> int | None:
    return next((i for i, (item, _) in enumerate(left) if ready(item)), None)


def _take_ready(
    left: list[Entry[T]], ready: Callable[[T], bool], wait: Callable[[], None]
) -> Entry[T]:
    """Remove and return the first ready item, waiting until there is one."""
    while (index := _first_ready(left, ready)) is None:
        wait()
    return left.pop(index)


def _same_teardown(chain: tuple[object, ...], left: list[Entry[T]]) -> bool:
    """Whether every item left shares as much of ``chain`` as the first one does."""
    first = _shared(chain, left[0][1])
    return all(_shared(chain, other) == first for _, other in left)


def _shared(chain: tuple[object, ...], other: tuple[object, ...]) -> int:
    """How many collectors, from the session down, ``chain`` and ``other`` have in common."""
    count = 0
    for mine, theirs in zip(chain, other, strict=False):
        if mine is not theirs:
            break
        count += 1
    return count
