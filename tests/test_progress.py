"""Live progress: updated in place on a terminal, plain lines in CI logs, never in a test's
captured output, and pytest's result lines left intact."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from conftest import FAST, SENTINEL_KEY, Suite, wire
from pytest_cekura.emulator import Emulator
from pytest_cekura.errors import ConfigError
from pytest_cekura.progress import (
    ENV_DELAY,
    ENV_INTERVAL,
    Progress,
    progress_line,
    seconds_from_env,
)


def test_progress_line_wording() -> None:
    counts = {"done": 12, "running": 3, "queued": 25, "failed": 1}
    assert progress_line(counts) == "cekura: 12/40 runs done, 3 running, 25 queued, 1 failed"
    assert progress_line({"done": 2, "running": 0, "queued": 0, "failed": 0}) == (
        "cekura: 2/2 runs done"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self, isatty: bool) -> None:
        self.isatty = isatty
        self.calls: list[tuple[str, str]] = []

    def update(self, text: str) -> None:
        self.calls.append(("update", text))

    def clear(self) -> None:
        self.calls.append(("clear", ""))

    def line(self, text: str) -> None:
        self.calls.append(("line", text))


def test_terminal_updates_in_place_after_the_delay_and_clears() -> None:
    out, clock = Recorder(isatty=True), FakeClock()
    shown = Progress(out, clock=clock, delay=1.0)
    shown.start()
    shown.tick({"done": 0, "running": 1})
    assert out.calls == []  # short waits show nothing
    clock.now = 2.2
    shown.tick({"done": 0, "running": 1})
    shown.tick({"done": 0, "running": 1})  # unchanged: not written again
    clock.now = 3.1
    shown.tick({"done": 1, "running": 0})
    shown.finish()
    assert out.calls == [
        ("update", "cekura: 0/1 runs done, 1 running (2s)"),
        ("update", "cekura: 1/1 runs done (3s)"),
        ("clear", ""),
    ]
    shown.start()
    shown.finish()  # a wait that showed nothing still lets the output tidy up
    assert out.calls[-1] == ("clear", "")


def test_plain_output_prints_a_line_after_the_delay_then_at_a_steady_interval() -> None:
    out, clock = Recorder(isatty=False), FakeClock()
    plain = Progress(out, clock=clock, delay=1.0, interval=15.0)
    plain.start()
    for second in range(0, 40, 2):
        clock.now = float(second)
        plain.tick({"done": second, "queued": 100 - second})
    plain.finish()
    assert out.calls == [
        ("line", "cekura: 2/100 runs done, 98 queued (2s)"),  # first tick past the delay
        ("line", "cekura: 16/100 runs done, 84 queued (16s)"),  # due at 16 s
        ("line", "cekura: 32/100 runs done, 68 queued (32s)"),  # due at 31 s
        ("clear", ""),
    ]


def test_a_bad_interval_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_INTERVAL, "soon")
    with pytest.raises(ConfigError, match=f"{ENV_INTERVAL}='soon' is not a number of seconds"):
        seconds_from_env(ENV_INTERVAL, 15.0)
    monkeypatch.setenv(ENV_INTERVAL, " 0.5 ")
    assert seconds_from_env(ENV_INTERVAL, 15.0) == 0.5


#: A test that waits about 2.5 s for its runs (3000 emulated seconds at time scale 0.001),
#: then fails after printing, so its report shows every captured output section.
WAITING = """
import pytest

@pytest.mark.cekura_scenario(30, frequency=2)
def test_wait():
    print("printed by the test body")
    assert False, "the body failed"

def test_after():
    pass
"""


@pytest.fixture
def waiting(
    pytester: pytest.Pytester,
    make_emulator: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> Suite:
    suite = wire(pytester, make_emulator("[[scenario]]\nid = 30\nduration_s = 2500\n"), monkeypatch)
    suite.pytester.makepyfile(test_wait=WAITING)
    monkeypatch.setenv(ENV_DELAY, "0.3")
    monkeypatch.setenv(ENV_INTERVAL, "0.5")
    return suite


def failure_section(output: str) -> str:
    return output.split("= FAILURES =", 1)[1].split("short test summary", 1)[0]


def assert_never_captured(output: str) -> None:
    section = failure_section(output)
    assert "printed by the test body" in section  # the section is there ...
    assert "Captured stdout setup" not in section  # ... and progress is not in it
    assert "runs done" not in section


def test_ci_logs_get_plain_lines_at_the_interval_outside_captured_output(waiting: Suite) -> None:
    result = waiting.run(subprocess=True)  # stdout is a pipe, as in CI
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    lines = re.findall(r"^cekura: 0/2 runs done, 2 running \((\d+)s\)$", output, re.M)
    assert len(lines) >= 2, output  # ~2.5 s wait, a line every 0.5 s after 0.3 s
    assert_never_captured(output)
    # pytest's result line for the file is taken down once, and whole again after the wait
    assert output.count("test_wait.py ") == 2
    result.stdout.re_match_lines(
        [r"^test_wait\.py $", r"^cekura: 0/2 runs done.*", r"^test_wait\.py F\.\s+\[100%\]$"]
    )


def test_ci_logs_keep_verbose_result_lines_whole(waiting: Suite) -> None:
    result = waiting.run("-v", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"^cekura: 0/2 runs done, 2 running \(\d+s\)$",
            r"^test_wait\.py::test_wait FAILED\s+\[ 50%\]$",
            r"^test_wait\.py::test_after PASSED\s+\[100%\]$",
        ]
    )


def test_quiet_run_shows_no_progress(waiting: Suite) -> None:
    result = waiting.run("-q", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    assert "runs done" not in result.stdout.str()


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def render(raw: str) -> list[str]:
    """What a terminal shows for ``raw``: backspaces move left, new text overwrites."""
    lines: list[list[str]] = [[]]
    column = 0
    for char in ANSI.sub("", raw):
        if char == "\n":
            lines.append([])
            column = 0
        elif char == "\r":
            column = 0
        elif char == "\b":
            column = max(column - 1, 0)
        else:
            line = lines[-1]
            line.extend(" " * (column + 1 - len(line)))
            line[column] = char
            column += 1
    return ["".join(line).rstrip() for line in lines]


def run_on_a_pty(suite: Suite, *args: str) -> list[tuple[float, str]]:
    """Run pytest in a subprocess whose stdout is a pseudo-terminal; what it wrote, when."""
    master, slave = os.openpty()
    env = dict(os.environ, COLUMNS="100", TERM="xterm")
    env.pop("CI", None)  # some CI services make pytest assume no terminal
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *FAST, "-p", "no:randomly", "-p", "no:xdist", *args],
        cwd=suite.pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[tuple[float, str]] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic(), data.decode("utf-8", "replace")))
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return chunks


def test_on_a_terminal_the_line_updates_in_place_and_is_never_captured(waiting: Suite) -> None:
    chunks = run_on_a_pty(waiting)
    raw = "".join(text for _, text in chunks)
    assert SENTINEL_KEY not in raw
    # Updated in place during the wait: several distinct texts, each written after
    # backspacing over the one before, none on a line of its own.
    shown = re.findall(r"cekura: 0/2 runs done, 2 running \((\d+)s\)", raw)
    assert len(set(shown)) >= 2, raw
    assert not re.search(r"^cekura: 0/2", raw, re.M)  # never a line of its own
    updates = [when for when, text in chunks if "runs done, 2 running" in text]
    assert updates[-1] - updates[0] >= 0.5  # written over time, not all at the end
    screen = render(raw)
    # The terminal ends up showing pytest's lines as if no progress had been written.
    assert not any("runs done" in line for line in screen), screen
    assert any(re.fullmatch(r"test_wait\.py F\.\s+\[100%\]", line) for line in screen), screen
    assert_never_captured("\n".join(screen))


def test_on_a_terminal_verbose_lines_stay_whole(waiting: Suite) -> None:
    raw = "".join(text for _, text in run_on_a_pty(waiting, "-v"))
    assert "runs done, 2 running" in raw
    screen = render(raw)
    assert any(re.fullmatch(r"test_wait\.py::test_wait FAILED\s+\[ 50%\]", s) for s in screen)
    assert any(re.fullmatch(r"test_wait\.py::test_after PASSED\s+\[100%\]", s) for s in screen)
    assert not any("runs done" in line for line in screen), screen


def test_slow_submission_shows_progress_the_same_way(waiting: Suite) -> None:
    waiting.emulator.inject("start", "slow", delay_s=1.5)
    result = waiting.run(subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    lines = re.findall(
        r"^cekura: starting runs: 0/1 request\(s\) answered \(\d+s\)$", result.stdout.str(), re.M
    )
    assert len(lines) >= 2  # after 0.3 s, then every 0.5 s while the POST takes 1.5 s
    result.stdout.re_match_lines([r"^cekura: starting runs: .*", r"^test_wait\.py F\.\s+\[100%\]$"])
    assert_never_captured(result.stdout.str())
