"""Live progress while a test waits for its runs: one updating line on a terminal, a plain
line now and then in CI logs, nothing under ``-q``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

#: Show nothing for short waits: most emulator runs and finished runs need no progress line.
DELAY = 1.0
#: Seconds between plain lines when the output is not a terminal (CI logs).
PLAIN_INTERVAL = 15.0


def progress_line(counts: Mapping[str, int]) -> str:
    total = sum(counts.get(k, 0) for k in ("done", "running", "queued"))  # failed is in done
    parts = [f"{counts.get('done', 0)}/{total} runs done"]
    parts += [f"{counts[k]} {k}" for k in ("running", "queued", "failed") if counts.get(k)]
    return "cekura: " + ", ".join(parts)


class Progress:
    """Turns poller counts into output through the two writers pytest's reporter offers."""

    def __init__(
        self,
        *,
        write_line: Callable[[str], None],
        rewrite: Callable[[str], None],
        isatty: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write_line = write_line
        self._rewrite = rewrite
        self._isatty = isatty
        self._clock = clock
        self._started = 0.0
        self._last_plain = 0.0
        self._shown = ""

    def start(self) -> None:
        self._started = self._last_plain = self._clock()
        self._shown = ""

    def tick(self, counts: Mapping[str, int]) -> None:
        now = self._clock()
        if now - self._started < DELAY:
            return
        line = progress_line(counts)
        if self._isatty:
            if not self._shown:
                self._write_line("")  # leave pytest's partial line ("test_x.py ..") intact
            if line != self._shown:
                self._rewrite(line)
                self._shown = line
        elif now - self._last_plain >= PLAIN_INTERVAL:
            self._write_line(line)
            self._last_plain = now

    def finish(self) -> None:
        if self._isatty and self._shown:
            self._write_line("")
        self._shown = ""
