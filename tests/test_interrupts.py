"""Ctrl-C and SIGTERM stop the session every time (``interrupts``): an interrupt lost on the
main thread (a finalizer swallowed it) is raised again by the session's waits, and one that
landed on an instruction without a line number (pytest cannot print that traceback) is
delivered again a moment later."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_cekura import interrupts
from pytest_cekura.models import Run
from pytest_cekura.poller import Poller


@pytest.fixture
def installed() -> Iterator[dict[int, Any]]:
    # The plugin may already handle this test session's own signals: start from the defaults.
    outer = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    previous = interrupts.install()
    try:
        yield previous
    finally:
        interrupts.uninstall(previous)
        for signum, handler in outer.items():
            signal.signal(signum, handler)


def test_the_handlers_replace_only_the_defaults_and_are_put_back(
    installed: dict[int, Any],
) -> None:
    assert set(installed) == {signal.SIGINT, signal.SIGTERM}
    assert signal.getsignal(signal.SIGTERM) is interrupts._handle
    interrupts.uninstall(installed)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    installed.clear()


def test_an_interrupt_swallowed_on_its_way_is_raised_by_the_next_wait(
    installed: dict[int, Any],
) -> None:
    # A finalizer running on the main thread when SIGTERM came: "Exception ignored".
    with contextlib.suppress(KeyboardInterrupt):
        interrupts._handle(signal.SIGTERM, None)
    poller = Poller(interval=10.0, deadline=time.monotonic() + 60)
    poller.track([Run(id=1, status="running")])
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="received signal 15"):
        poller.wait([1])
    assert time.monotonic() - started < 1.0
    interrupts.reported()  # pytest has it now: waits wait again
    assert poller.wait([1], give_up_at=time.monotonic() + 0.05)[1].done is False


def test_an_interrupt_on_an_instruction_without_a_line_number_comes_again(
    installed: dict[int, Any],
) -> None:
    nowhere = SimpleNamespace(f_lineno=None)  # a frame whose traceback pytest cannot print
    interrupts._handle(signal.SIGINT, nowhere)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        spin(5.0)  # bytecode running: the handler can run again


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    raise AssertionError(f"no interrupt within {seconds} s")
