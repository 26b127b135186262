"""Ctrl-C and SIGTERM (a cancelled CI job), delivered so that they stop the session every time.

A signal handler's ``KeyboardInterrupt`` is raised wherever the main thread happens to be, and
two places lose it:

* a finalizer (``__del__``, a weakref callback) the garbage collector runs on the main thread:
  Python prints the interrupt as "Exception ignored" and carries on, and the session goes on
  waiting for its calls (seen in CI: SIGTERM while a test waited, the session still waiting
  20 s later);
* an instruction without a line number (a function's first): pytest cannot print that
  traceback and reports an internal error (exit 1), not an interrupted session (exit 2).

So the session's handler notes the signal before raising; where the frame has no line number
it asks for the signal again a moment later instead; and the session's waits raise an
interrupt that was noted but never reached pytest (``raise_pending``). An interrupt that
CPython's threading internals turned into another error is given back (``interrupt_kept``).
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

#: The signal noted and not yet reported by pytest (``reported``), if any.
_pending: int | None = None
#: How long before a signal that landed on an instruction without a line number is sent again.
RETRY_DELAY = 0.01


def install() -> dict[int, Any]:
    """Handle SIGINT and SIGTERM in this (the main) thread, where each is at its default;
    returns the handlers to put back (``uninstall``)."""
    global _pending
    _pending = None
    previous: dict[int, Any] = {}
    for signum, default in (
        (signal.SIGINT, signal.default_int_handler),
        (signal.SIGTERM, signal.SIG_DFL),
    ):
        if signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, _handle)
    return previous


def uninstall(previous: dict[int, Any]) -> None:
    global _pending
    _pending = None
    for signum, handler in previous.items():
        if signal.getsignal(signum) is _handle:
            signal.signal(signum, handler)


def _handle(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = signum
    if frame is not None and frame.f_lineno is None:
        # Raised here, the traceback could not be printed: have the signal come again.
        timer = threading.Timer(RETRY_DELAY, _thread.interrupt_main, (signum,))
        timer.daemon = True
        timer.start()
        return
    raise _interrupt(signum)


def _interrupt(signum: int) -> KeyboardInterrupt:
    return (
        KeyboardInterrupt()
        if signum == signal.SIGINT
        else KeyboardInterrupt(f"received signal {signum}")
    )


def raise_pending() -> None:
    """Raise the interrupt noted and lost on the way to pytest, if there is one (called by the
    session's waits, on the main thread)."""
    if _pending is not None:
        raise _interrupt(_pending)


def reported() -> None:
    """pytest has the interrupt (``pytest_keyboard_interrupt``): nothing is pending."""
    global _pending
    _pending = None


@contextlib.contextmanager
def interrupt_kept() -> Iterator[None]:
    """Let a Ctrl-C or SIGTERM that hit the main thread inside CPython's threading internals
    through as the interrupt it is.

    The signal handler's ``KeyboardInterrupt`` can land while ``Thread.start`` or
    ``Condition.wait`` holds a lock half released; the interrupt then surfaces as
    "RuntimeError: release unlocked lock" with the interrupt as its context, which pytest
    reports as an INTERNALERROR (exit 3) instead of an interrupted session (exit 2).
    """
    try:
        yield
    except RuntimeError as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise exc.__context__ from None
        raise
