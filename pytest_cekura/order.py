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
from typing import Generic, TypeVar

T = TypeVar("T")
#: An item with its chain of collectors, as ``finish_order`` keeps the items left.
Entry = tuple[T, tuple[object, ...]]

ORDERS = ("collection", "finish")


def finish_order(
    items: Sequence[T],
    ready: Callable[[T], bool],
    wait: Callable[[], None],
    parents: Callable[[T], Sequence[object]],
    version: Callable[[], object] = object,
) -> Iterator[tuple[T, T | None]]:
    """Yield ``(item, nextitem)`` pairs covering ``items`` once each, each as soon as it is ready.

    ``ready(item)`` says whether the item can run without waiting; ``wait()`` blocks briefly
    until something may have become ready (a short slice, so Ctrl-C interrupts it; it must
    return at once when nothing ever will, e.g. past the session's deadline, when ``ready``
    is true for every item). ``parents(item)`` is the item's chain of collectors (pytest's
    ``listchain()`` without the item): the fixtures kept after a test are those of the part of
    its chain the next test shares. ``nextitem`` is the item yielded next, or, named only for
    that teardown, one sharing as much of the chain as it does.

    ``version()`` changes whenever an item that was not ready may have become ready (the
    poller's news, the deadline); while it is unchanged, an item found waiting is not asked
    again. The default (a new object each call) asks again every time.
    """
    left = _Left([(item, tuple(parents(item))) for item in items], ready, version)
    current = left.take_ready(wait) if left.entries else None
    while current is not None:
        if not left.entries:
            yield current[0], None
            return
        index = left.first_ready()
        if index is None and _same_teardown(current[1], left.entries):
            # Which test comes next changes nothing in this one's teardown: run it now (its
            # report need not wait for the next one) and choose the next one once it is ready.
            yield current[0], left.entries[0][0]
            current = left.take_ready(wait)
            continue
        upcoming = left.entries.pop(index) if index is not None else left.take_ready(wait)
        yield current[0], upcoming[0]
        current = upcoming


class _Left(Generic[T]):
    """The items left, in collection order, and how many at the front are known to wait.

    Looking for the first ready item asked every item before it each time: at 10,000 runs
    (2,000 tests, those of the longest calls at the front) that was seconds of the main
    thread's time in a session of 16 (docs/performance.md). An item found waiting keeps
    waiting until ``version()`` changes, so only the items after that prefix are asked.
    """

    def __init__(
        self, entries: list[Entry[T]], ready: Callable[[T], bool], version: Callable[[], object]
    ) -> None:
        self.entries = entries
        self._ready = ready
        self._version = version
        self._seen: object = None
        self._waiting = 0  # entries[:_waiting] were not ready at version _seen

    def first_ready(self) -> int | None:
        now = self._version()  # read first: news arriving during the scan changes it
        if now != self._seen:
            self._seen, self._waiting = now, 0
        entries, ready = self.entries, self._ready
        for index in range(self._waiting, len(entries)):
            if ready(entries[index][0]):
                return index  # entries before it still wait: the prefix stays known
            self._waiting = index + 1
        return None

    def take_ready(self, wait: Callable[[], None]) -> Entry[T]:
        """Remove and return the first ready item, waiting until there is one."""
        while (index := self.first_ready()) is None:
            wait()
        return self.entries.pop(index)


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
