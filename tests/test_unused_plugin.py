"""An installed plugin that no test uses costs next to nothing (docs/performance.md, target 4).

A session without a Cekura test imports neither pydantic nor httpx, nor the modules that serve
only Cekura tests or options left off (the client, the models, gates and metrics, the HTML
report, share links, the local worker, report merging, TOML suite models, Tests as Code).

Each session runs in a fresh interpreter (this test process has imported all of it already),
with every installed plugin enabled, as a user has them. A spy on ``import`` statements,
installed before pytest starts, blames pydantic or httpx on pytest-cekura only when one of
its modules is on the stack of the import: another plugin importing them (pytest-html could,
one day) is not ours to answer for, and an import of ours is caught even if another plugin
loaded the package first.
"""

from __future__ import annotations

import json
import sys

import pytest

#: Runs pytest with ``sys.argv[2:]`` and writes to ``sys.argv[1]`` which module of ours first
#: imported pydantic and httpx (the innermost one on the stack), and our modules loaded.
SPY = r"""
import builtins, json, sys

WATCHED = ("pydantic", "httpx")
blamed = {}
real_import = builtins.__import__


def spy(name, globals=None, locals=None, fromlist=(), level=0):
    package = name.partition(".")[0]
    if level == 0 and package in WATCHED and package not in blamed:
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__") or ""
            if module.partition(".")[0] == "pytest_cekura":
                blamed[package] = module
                break
            frame = frame.f_back
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = spy
import pytest

code = pytest.main(sys.argv[2:])
ours = sorted(m for m in sys.modules if m.partition(".")[0] == "pytest_cekura")
with open(sys.argv[1], "w") as out:
    json.dump({"exit": int(code), "blamed": blamed, "ours": ours}, out)
"""

#: What the plugin imports at start-up, all of it light (standard library and pytest only).
#: A module added here must not import pydantic or httpx, even indirectly, and should be
#: needed by every session: whatever serves only a Cekura test or an option is imported
#: where it is used.
STARTUP = {
    "pytest_cekura",
    "pytest_cekura.errors",
    "pytest_cekura.hookspec",
    "pytest_cekura.interrupts",
    "pytest_cekura.livekit_data",
    "pytest_cekura.markers",
    "pytest_cekura.option",
    "pytest_cekura.options",
    "pytest_cekura.order",
    "pytest_cekura.outputs",
    "pytest_cekura.plugin",
    "pytest_cekura.pluginstate",
    "pytest_cekura.progress",
    "pytest_cekura.providers",
    "pytest_cekura.secret",
    "pytest_cekura.suites",
    "pytest_cekura.testhooks",
    "pytest_cekura.testsuite_json",
    "pytest_cekura.values",
    "pytest_cekura.xdist",
    "pytest_cekura.xdist_messages",
}


def spied_session(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    out = pytester.path / "spy.json"
    result = pytester.run(sys.executable, "-c", SPY, str(out), "-p", "no:cacheprovider", *args)
    assert out.is_file(), result.stdout.str() + result.stderr.str()
    report: dict[str, object] = json.loads(out.read_text())
    assert report["exit"] == 0, result.stdout.str()
    assert "pytest_cekura.plugin" in report["ours"]  # type: ignore[operator]
    return report


@pytest.mark.parametrize(
    ("args", "also"),
    [
        ((), set()),
        # pytest-html writing a report: the extras hooks are registered, and still nothing heavy.
        (("--html", "page.html"), {"pytest_cekura.html_hooks"}),
    ],
    ids=["plain", "pytest-html"],
)
def test_a_session_without_cekura_tests_imports_neither_pydantic_nor_httpx(
    pytester: pytest.Pytester, args: tuple[str, ...], also: set[str]
) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    report = spied_session(pytester, *args)
    assert report["blamed"] == {}, (
        "a session with no Cekura test imported these packages through these modules of "
        f"pytest-cekura: {report['blamed']}; import them where a Cekura test needs them"
    )
    loaded = set(report["ours"])  # type: ignore[call-overload]
    assert loaded - STARTUP - also == set(), "imported at start-up: make these imports lazy"


def test_the_spy_blames_a_module_of_ours_that_imports_pydantic(pytester: pytest.Pytester) -> None:
    # The control: the same session, with a conftest loading the models as a Cekura test would.
    pytester.makeconftest("import pytest_cekura.models\n")
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    report = spied_session(pytester)
    assert report["blamed"] == {"pydantic": "pytest_cekura.models"}
