"""Live progress while runs are started and while a test waits for them: text updated in
place after pytest's current result line on a terminal, a plain line now and then in CI
logs, nothing under ``-q``.

Progress is written around pytest's output capture, never into it: written while a test's
output is captured, it would be invisible on the terminal and show up in that test's
"Captured stdout" section instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from .errors import ConfigError

#: Show nothing for short waits: most emulator runs and finished runs need no progress line.
DELAY = 1.0
#: Seconds between plain lines when the output is not a terminal (CI logs).
PLAIN_INTERVAL = 15.0
#: Environment variables overriding the two above (seconds), e.g. for a CI log that should
#: show progress more or less often.
ENV_DELAY = "CEKURA_PROGRESS_DELAY"
ENV_INTERVAL = "CEKURA_PROGRESS_INTERVAL"
#: Below this many free columns after pytest's current line, a terminal shows no progress
#: rather than wrap (a wrapped line could not be erased in place).
MIN_COLUMNS = 16


def progress_line(counts: Mapping[str, int]) -> str:
    total = sum(counts.get(k, 0) for k in ("done", "running", "queued"))  # failed is in done
    parts = [f"{counts.get('done', 0)}/{total} runs done"]
    parts += [f"{counts[k]} {k}" for k in ("running", "queued", "failed") if counts.get(k)]
    return "cekura: " + ", ".join(parts)


def seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ConfigError(
            f"pytest-cekura: {name}={raw!r} is not a number of seconds: "
            "set it to a number such as 15, or unset it"
        )
    return value


class Output(Protocol):
    """Where progress goes: ``update``/``clear`` on a terminal, ``line`` otherwise."""

    isatty: bool

    def update(self, text: str) -> None: ...

    def clear(self) -> None: ...

    def line(self, text: str) -> None: ...


class TerminalOutput:
    """pytest's terminal, with capture suspended while writing.

    On a terminal the text goes after pytest's current line (``test_x.py ..`` or a ``-v``
    test id) and is erased with backspaces, so that line, the reporter's idea of its width
    and the ``[100%]`` placed from it stay as they were. A plain line ends pytest's current
    line and then writes it again, so the results that follow still continue it.
    """

    def __init__(self, reporter: Any, capman: Any) -> None:
        self._reporter = reporter
        self._capman = capman
        self.isatty = bool(reporter.isatty())
        self._shown = 0  # characters written after pytest's line, to erase
        self._held = ""  # pytest's current line, ended for plain lines, to write again

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        if self._capman is None:
            yield
        else:
            with self._capman.global_and_fixture_disabled():
                yield

    def _raw(self, text: str) -> None:
        # Straight to the file: through the reporter's writer, backspaces would corrupt the
        # width it keeps of the current line.
        file = getattr(self._reporter._tw, "_file", sys.stdout)
        with self._uncaptured():
            file.write(text)
            file.flush()

    def update(self, text: str) -> None:
        writer = self._reporter._tw
        used = writer.width_of_current_line
        text = f" {text}" if used else text
        room = writer.fullwidth - used - 1
        text = text[:room] if room >= MIN_COLUMNS else ""
        self._raw(self._erasing(len(text)) + text)
        self._shown = len(text)

    def _erasing(self, keep: int) -> str:
        """Back over what was shown, blanking what the next text will not cover."""
        extra = max(self._shown - keep, 0)
        back = "\b" * self._shown
        return back + " " * extra + "\b" * extra if extra else back

    def clear(self) -> None:
        if self._shown:
            self._raw(self._erasing(0))
            self._shown = 0
        if self._held:
            # pytest's line, taken down for plain lines, goes back up for its results to go on.
            with self._uncaptured():
                self._reporter._tw.write(self._held, flush=True)
            self._held = ""

    def line(self, text: str) -> None:
        writer = self._reporter._tw
        current = str(getattr(writer, "_current_line", ""))
        with self._uncaptured():
            writer.write(("\n" if current else "") + text + "\n", flush=True)
        self._held = self._held or current


class Progress:
    """Turns what is being waited for into output: after ``delay`` seconds, updated in place
    on a terminal, else a plain line then one every ``interval`` seconds."""

    def __init__(
        self,
        output: Output,
        *,
        clock: Callable[[], float] = time.monotonic,
        delay: float = DELAY,
        interval: float = PLAIN_INTERVAL,
    ) -> None:
        self._output = output
        self._clock = clock
        self._delay = delay
        self._interval = interval
        self._started = 0.0
        self._next_plain = 0.0
        self._shown = ""

    def start(self) -> None:
        self._started = self._clock()
        self._next_plain = self._started + self._delay
        self._shown = ""

    def tick(self, counts: Mapping[str, int]) -> None:
        """A test's wait: the session's runs so far."""
        self.say(lambda elapsed: f"{progress_line(counts)} ({elapsed:.0f}s)")

    def say(self, describe: Callable[[float], str]) -> None:
        """Show ``describe(seconds waited)`` if it is time to; it is called only then."""
        now = self._clock()
        elapsed = now - self._started
        if elapsed < self._delay:
            return
        if self._output.isatty:
            line = describe(elapsed)
            if line != self._shown:
                self._output.update(line)
                self._shown = line
        elif now >= self._next_plain:
            self._output.line(describe(elapsed))
            # Steady: from the schedule, not from when a tick happened to come.
            while self._next_plain <= now:
                self._next_plain += max(self._interval, 0.001)

    def finish(self) -> None:
        self._output.clear()
        self._shown = ""


def terminal_progress(config: Any) -> Progress | None:
    """Progress on pytest's terminal, or None where none is shown (-q, no terminal)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0:
        return None
    output = TerminalOutput(reporter, config.pluginmanager.get_plugin("capturemanager"))
    return Progress(
        output,
        delay=seconds_from_env(ENV_DELAY, DELAY),
        interval=seconds_from_env(ENV_INTERVAL, PLAIN_INTERVAL),
    )
