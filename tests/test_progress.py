"""Live progress while waiting: a rewritten line on a terminal, plain lines in CI logs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Suite, wire
from pytest_cekura import progress
from pytest_cekura.emulator import Emulator
from pytest_cekura.progress import Progress, progress_line


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


def test_terminal_rewrites_one_line_after_the_delay_and_ends_it() -> None:
    written: list[str] = []
    rewritten: list[str] = []
    clock = FakeClock()
    shown = Progress(write_line=written.append, rewrite=rewritten.append, isatty=True, clock=clock)
    shown.start()
    shown.tick({"done": 0, "running": 1})
    assert written == rewritten == []  # short waits show nothing
    clock.now = 2.0
    shown.tick({"done": 0, "running": 1})
    shown.tick({"done": 0, "running": 1})  # unchanged: not rewritten again
    shown.tick({"done": 1, "running": 0})
    shown.finish()
    assert rewritten == ["cekura: 0/1 runs done, 1 running", "cekura: 1/1 runs done"]
    assert written == ["", ""]  # a fresh line to start on, and a newline to end


def test_plain_output_prints_a_line_per_interval() -> None:
    written: list[str] = []
    clock = FakeClock()
    plain = Progress(write_line=written.append, rewrite=written.append, isatty=False, clock=clock)
    plain.start()
    for second in range(0, 40, 5):
        clock.now = float(second)
        plain.tick({"done": second, "queued": 100 - second})
    assert written == ["cekura: 15/100 runs done, 85 queued", "cekura: 30/100 runs done, 70 queued"]


@pytest.fixture
def slow(
    pytester: pytest.Pytester,
    make_emulator: Callable[[str], Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> Suite:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.1)
    suite = wire(pytester, make_emulator("[[scenario]]\nid = 30\nduration_s = 600\n"), monkeypatch)
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30, frequency=2)
        def test_slow(): pass
        """
    )
    return suite


def test_ci_logs_get_plain_progress_lines(slow: Suite) -> None:
    result = slow.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cekura: 0/2 runs done, 2 running"])


def test_quiet_run_shows_no_progress(slow: Suite) -> None:
    result = slow.run("-q")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("cekura: 0/2 runs done*")
