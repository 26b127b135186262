"""--cekura-order=finish: tests run as nothing keeps them waiting, fixtures intact."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Suite
from pytest_cekura.order import finish_order

#: At the tests' time scale a 2,000 s call takes 2 s and a 10 s call 10 ms.
TIMED = """
[[scenario]]
id = 40
name = "Long call"
duration_s = 2000

[[scenario]]
id = 41
name = "Short call"
duration_s = 10

[[scenario]]
id = 42
name = "Half-second call"
duration_s = 500

[[scenario]]
id = 43
name = "One-second call"
duration_s = 1000
"""
#: Module- and class-scoped fixtures; the conftest records the order of events.
CONFTEST = """
import pytest

EVENTS = []

@pytest.fixture(scope="module")
def module_resource(request):
    EVENTS.append(f"setup {request.module.__name__}")
    yield
    EVENTS.append(f"teardown {request.module.__name__}")

@pytest.fixture(scope="class")
def class_resource(request):
    EVENTS.append(f"setup {request.cls.__name__}")
    yield
    EVENTS.append(f"teardown {request.cls.__name__}")

@pytest.fixture
def events():
    return EVENTS

def pytest_runtest_call(item):
    EVENTS.append(f"run {item.name}")

def pytest_sessionfinish(session):
    print("\\nEVENTS:", " | ".join(EVENTS))
"""
LONG_THEN_SHORT = {
    "test_a": """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_long(module_resource):
            pass
    """,
    "test_b": """
        import pytest

        @pytest.mark.cekura_scenario(41)
        def test_short(module_resource):
            pass
    """,
}


@pytest.fixture
def timed(make_suite: Callable[[str], Suite]) -> Suite:
    suite = make_suite(TIMED)
    suite.pytester.makeconftest(CONFTEST)
    return suite


def events(result: pytest.RunResult) -> list[str]:
    line = next(line for line in result.outlines if line.startswith("EVENTS:"))
    return line.removeprefix("EVENTS: ").split(" | ")


def test_finish_order_runs_the_short_call_first_with_fixtures_intact(timed: Suite) -> None:
    timed.pytester.makepyfile(**LONG_THEN_SHORT)
    result = timed.run("--cekura-order=finish", "-s")
    result.assert_outcomes(passed=2)
    assert events(result) == [
        "setup test_b",
        "run test_short",
        "teardown test_b",
        "setup test_a",
        "run test_long",
        "teardown test_a",
    ]
    assert timed.posts() == 1


def test_collection_order_is_the_default(timed: Suite) -> None:
    timed.pytester.makepyfile(**LONG_THEN_SHORT)
    result = timed.run("-s")
    result.assert_outcomes(passed=2)
    assert [e for e in events(result) if e.startswith("run")] == ["run test_long", "run test_short"]


def test_plain_tests_run_while_the_calls_are_going(timed: Suite) -> None:
    timed.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_long():
            pass

        def test_plain():
            pass
        """
    )
    result = timed.run("--cekura-order=finish", "-s")
    result.assert_outcomes(passed=2)
    assert [e for e in events(result) if e.startswith("run")] == ["run test_plain", "run test_long"]


def test_finish_order_stops_at_the_first_failure_with_x(timed: Suite) -> None:
    timed.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_long():
            pass

        def test_plain():
            assert False
        """
    )
    result = timed.run("--cekura-order=finish", "-x")
    result.assert_outcomes(failed=1)


def test_short_tests_run_before_a_long_one_collected_first_when_none_is_ready(
    timed: Suite,
) -> None:
    # When the first short test is ready the others are not: the loop waits for the next
    # one to be ready rather than committing to the long test, collected first.
    timed.pytester.makepyfile(
        test_a=LONG_THEN_SHORT["test_a"],
        test_b="""
        import pytest

        @pytest.mark.usefixtures("module_resource", "class_resource")
        class TestShort:
            @pytest.mark.cekura_scenario(43)
            def test_one_second(self):
                pass

            @pytest.mark.cekura_scenario(41)
            def test_short(self):
                pass

            @pytest.mark.cekura_scenario(42)
            def test_half_second(self):
                pass
        """,
    )
    result = timed.run("--cekura-order=finish", "-s")
    result.assert_outcomes(passed=4)
    assert events(result) == [
        "setup test_b",
        "setup TestShort",
        "run test_short",
        "run test_half_second",
        "run test_one_second",
        "teardown TestShort",
        "teardown test_b",
        "setup test_a",
        "run test_long",
        "teardown test_a",
    ]
    assert timed.posts() == 1


def test_a_ready_test_is_not_held_when_the_next_one_does_not_change_its_teardown(
    timed: Suite,
) -> None:
    # One module: whichever test runs next, the same fixtures are kept after the short one,
    # so it runs as soon as it is ready, not once the long one is.
    timed.pytester.makepyfile(
        test_one_module="""
        import time

        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_long(module_resource, events):
            events.append(f"at {time.monotonic()}")

        @pytest.mark.cekura_scenario(41)
        def test_short(module_resource, events):
            events.append(f"at {time.monotonic()}")
        """
    )
    result = timed.run("--cekura-order=finish", "-s")
    result.assert_outcomes(passed=2)
    setup, run_short, short_at, run_long, long_at, teardown = events(result)
    assert (setup, run_short, run_long, teardown) == (
        "setup test_one_module",
        "run test_short",
        "run test_long",
        "teardown test_one_module",
    )
    # The long call lasts 2 s, the short one 10 ms: the short test ran well before.
    assert float(long_at.removeprefix("at ")) - float(short_at.removeprefix("at ")) > 1.0


def test_scheduler_takes_ready_items_first_and_waits_for_the_next_one() -> None:
    ready = {"plain"}
    waits: list[str] = []

    def wait() -> None:
        waits.append("waited")
        ready.add("short" if "short" not in ready else "long")

    # "plain" shares its module with "long", not with "short": its teardown depends on which
    # runs next, so with nothing else ready the next one is the first to become ready
    # ("short"), never the first left in collection order ("long").
    modules = {"long": ("session", "a"), "plain": ("session", "a"), "short": ("session", "b")}
    parents = modules.__getitem__
    pairs = list(finish_order(["long", "short", "plain"], ready.__contains__, wait, parents))
    assert pairs == [("plain", "short"), ("short", "long"), ("long", None)]
    assert waits == ["waited", "waited"]
    # Nothing ready: wait until something is, and start with it.
    waits.clear()
    ready.clear()
    pairs = list(finish_order(["long", "short"], ready.__contains__, wait, parents))
    assert pairs == [("short", "long"), ("long", None)]
    assert waits == ["waited", "waited"]


def test_scheduler_runs_a_ready_item_at_once_when_the_next_one_changes_nothing() -> None:
    ready = {"plain"}
    log: list[str] = []

    def wait() -> None:
        log.append("waited")
        ready.add("short" if "short" not in ready else "long")

    # All three in one module: "long" is named for "plain"'s teardown (the same whichever
    # runs next), "plain" runs before anything else is ready, and "short" runs next.
    module = ("session", "a")
    order = finish_order(["long", "short", "plain"], ready.__contains__, wait, lambda _: module)
    for item, nextitem in order:
        log.append(f"{item} before {nextitem}")
    assert log == ["plain before long", "waited", "short before long", "waited", "long before None"]


def test_scheduler_asks_a_waiting_item_again_only_once_there_is_news() -> None:
    """With 2,000 tests, asking every waiting test each time a ready one was sought cost
    seconds: an item found waiting is asked again only once ``version()`` changed."""
    items = [f"long{i}" for i in range(50)] + [f"short{i}" for i in range(50)]
    ready = {f"short{i}" for i in range(50)}
    asked: list[str] = []
    news = [0]

    def is_ready(item: str) -> bool:
        asked.append(item)
        return item in ready

    def wait() -> None:
        news[0] += 1
        ready.update(items)

    pairs = list(finish_order(items, is_ready, wait, lambda _: ("s",), lambda: news[0]))
    assert [item for item, _ in pairs] == items[50:] + items[:50]
    # Each long item is asked once before the news (not once per short item), then once
    # more after it; each short item once.
    assert sorted(asked) == sorted(items[:50] * 2 + items[50:])
    assert news == [1]


def test_finish_order_stops_waiting_at_the_deadline(make_suite: Callable[[str], Suite]) -> None:
    suite = make_suite('[[scenario]]\nid = 33\noutcome = "hang"\n')
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(33)
        def test_stuck():
            pass
        """
    )
    result = suite.run("--cekura-order=finish", "--cekura-timeout=0.5")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*not finished by the deadline*"])
