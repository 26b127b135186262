"""Every Python and shell example in README.md and docs/*.md runs, on the emulator.

The harness reads each fenced ``python``, ``sh`` and ``console`` block. A block that cannot
run offline is marked in the markdown, on the line before its fence, with
``<!-- example: skip <reason> -->``; every other block is run:

* a Python block defining tests (or starting ``# conftest.py``) is a test module: all of one
  page's modules run in one pytest run against the emulator, each in its own directory (a
  ``# conftest.py`` block shares its directory with the blocks after it), and every test
  must pass unless the marker says otherwise, e.g. ``<!-- example: expect passed=1 failed=1 -->``;
* any other Python block is a script, run as is;
* a shell block's ``pytest`` commands run against the emulator (``--cekura-emulator``) in a
  small project laid out like the docs' (``tests/``, ``tests/voice/cekura_smoke.toml``), and
  must not end in a usage error, an internal error or failed tests; ``export NAME=value`` sets
  the environment of the commands after it, ``pip install`` is taken as done.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "sh", "console")
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[a-z]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
MARK = re.compile(r"<!--\s*example:\s*(?P<what>.*?)\s*-->\s*$")
#: The docs' scenarios as the examples expect them: conftest_examples' catalogue, plus
#: scenario 40, whose calls cannot be run (the docs' example of an errored run).
CATALOGUE = (ROOT / "conftest_examples" / "cekura-catalogue.toml").read_text(encoding="utf-8") + (
    '\n[[scenario]]\nid = 40\nname = "Agent never joins"\noutcome = "error"\n'
)
EMULATOR = ("--cekura-emulator", "--cekura-emulator-time-scale=0.005", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    body: str
    mark: str  # what the <!-- example: ... --> before the fence says, "" if none

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        return self.mark.removeprefix("skip").strip() if self.mark.startswith("skip") else None

    @property
    def is_test_module(self) -> bool:
        return bool(re.search(r"^\s*(def test_|class Test|# conftest\.py)", self.body, re.M))


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match["lang"] not in LANGUAGES:
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        body = "\n".join(
            row[len(match["indent"]) :] if row.startswith(match["indent"]) else row
            for row in match["body"].splitlines()
        )
        found.append(Example(page, line, match["lang"], body, mark["what"] if mark else ""))
    return found


ALL = [example for page in PAGES for example in examples(page)]


def test_every_mark_is_a_known_one_with_a_reason() -> None:
    assert len(ALL) > 40  # the parser found the docs' examples
    for example in ALL:
        if example.mark:
            assert re.fullmatch(r"skip \S.*|expect( \w+=\d+)+", example.mark), example.where


# --- Python test modules: one pytest run per page -------------------------------------------


def module_pages() -> list[Path]:
    return [p for p in PAGES if any(e.is_test_module and not e.skip_reason for e in examples(p))]


@pytest.mark.parametrize("page", module_pages(), ids=lambda p: p.name)
def test_python_test_examples_pass_on_the_emulator(pytester: pytest.Pytester, page: Path) -> None:
    check_test_modules(pytester, page)


def check_test_modules(pytester: pytest.Pytester, page: Path) -> None:
    """Run the page's test-module examples; an AssertionError names the first one that failed."""
    pytester.makefile(".toml", **{"cekura-catalogue": CATALOGUE})
    expected: dict[str, Counter[str]] = {}
    directory = None
    for example in examples(page):
        if example.lang != "python" or example.skip_reason or not example.is_test_module:
            continue
        first = example.body.lstrip().split("\n", 1)[0]
        named = re.match(r"#\s*(\w+\.py)\b", first)
        if directory is None or not named or named[1] == "conftest.py":
            directory = pytester.mkdir(f"example_l{example.line}")
            expected[directory.name] = Counter()
        name = named[1] if named else f"test_l{example.line}.py"
        (directory / name).write_text(example.body, encoding="utf-8")
        counts = Counter(dict(re.findall(r"(\w+)=(\d+)", example.mark)))
        if counts:
            expected[directory.name] += Counter({k: int(v) for k, v in counts.items()})
        else:  # every test passes (a parametrized one counts once here)
            expected[directory.name]["passed"] += len(
                re.findall(r"^\s*def test_", example.body, re.M)
            )
    result = pytester.runpytest_subprocess(
        *EMULATOR,
        "--cekura-emulator-catalogue=cekura-catalogue.toml",
        "--import-mode=importlib",
        "-rA",
        "-p",
        "no:randomly",
        *expected,
    )
    output = result.stdout.str()
    assert "INTERNALERROR" not in output, output
    seen: dict[str, Counter[str]] = {name: Counter() for name in expected}
    for word, nodeid in re.findall(
        r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+?)(?:::| - |$)", output, re.M
    ):
        key = {"PASSED": "passed", "FAILED": "failed", "ERROR": "errors", "SKIPPED": "skipped"}
        seen[nodeid.split("/", 1)[0]][key[word]] += 1
    for name, counts in expected.items():
        where = f"{page.name}:{name.removeprefix('example_l')}: {seen[name]}\n{output}"
        if counts.keys() <= {"passed"}:
            assert seen[name].keys() <= {"passed"}, where
            assert seen[name]["passed"] >= counts["passed"], where
        else:
            assert seen[name] == counts, where


BROKEN = """
The example as it was (issue #15):

```python
import pytest

from pytest_cekura import CekuraClient, CekuraResult


@pytest.mark.cekura_scenario(30, 31)
def test_result_summary(cekura_result: CekuraResult, cekura_client: CekuraClient) -> None:
    batch = cekura_client.get_runs([run.id for run in cekura_result.runs])
    assert {run.scenario for run in batch.runs} == {30, 31}
```
"""


def test_a_crashing_example_fails_the_harness(pytester: pytest.Pytester, tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(AssertionError) as failed:
        check_test_modules(pytester, page)
    message = str(failed.value)
    assert message.startswith("broken.md:4: Counter({'failed': 1})")
    assert "'RunSnapshot' object has no attribute 'scenario'" in message


# --- Python scripts --------------------------------------------------------------------------

SCRIPTS = [e for e in ALL if e.lang == "python" and not e.skip_reason and not e.is_test_module]


@pytest.mark.parametrize("example", SCRIPTS, ids=lambda e: e.where)
def test_python_script_examples_run(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.body, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{example.where}\n{done.stdout}\n{done.stderr}"


# --- Shell commands --------------------------------------------------------------------------

#: A project laid out as the docs' commands expect it.
PROJECT = {
    "tests/test_refill.py": (
        "import pytest\n\n\n"
        "@pytest.mark.cekura_scenario(30)\ndef test_refill_flow(): pass\n\n\n"
        "@pytest.mark.cekura_scenario(31)\ndef test_german_caller(): pass\n\n\n"
        "def test_plain(): pass\n"
    ),
    "tests/voice/cekura_smoke.toml": '[[test]]\nname = "refill flow"\nscenarios = [30]\n',
    "cekura-catalogue.toml": CATALOGUE,
    "pytest.ini": "[pytest]\ncekura_emulator_catalogue = cekura-catalogue.toml\n",
}


def commands(example: Example) -> list[str]:
    lines = example.body.splitlines()
    if example.lang == "console":  # only the prompted lines, not the output shown
        lines = [row[2:] for row in _joined(lines) if row.startswith("$ ")]
        return lines
    return [row for row in _joined(lines) if row.strip() and not row.lstrip().startswith("#")]


def _joined(lines: list[str]) -> list[str]:
    joined: list[str] = []
    for row in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + row.strip()
        else:
            joined.append(row)
    return joined


SHELL = [e for e in ALL if e.lang in ("sh", "console") and not e.skip_reason]
RAN: set[tuple[object, ...]] = set()


@pytest.mark.parametrize("example", SHELL, ids=lambda e: e.where)
def test_shell_examples_run_on_the_emulator(example: Example, tmp_path: Path) -> None:
    for path, text in PROJECT.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEKURA_", "PYTEST_"))}
    ran = 0
    for command in commands(example):
        words = shlex.split(command, comments=True)
        if words[:2] == ["pip", "install"]:
            continue  # the test environment has the packages
        if words and words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        assignments = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            assignments[name] = value
        assert words[0].endswith("pytest") if words else False, (
            f"{example.where}: cannot run {command!r} offline; mark the block "
            "<!-- example: skip <reason> -->"
        )
        # conftest_examples is the repository's example suite: the project stands in for it.
        args = [arg for arg in words[1:] if arg != "conftest_examples"]
        if "-n" in args:  # the options are what is checked: 1 worker does, on a shared machine
            args[args.index("-n") + 1] = "1"
        run = (tuple(args), tuple(sorted(assignments.items())), env.get("CEKURA_API_KEY"))
        if run in RAN and "--cekura-compare" not in args and "--cekura-baseline" not in args:
            continue  # the same command on another page: once is enough
        RAN.add(run)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args, *EMULATOR],
            cwd=tmp_path,
            env={**env, **assignments},
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = done.stdout + done.stderr
        assert "INTERNALERROR" not in output, f"{example.where}: {command}\n{output}"
        # 5: nothing selected (e.g. -m "not cekura_scenario" in a project of Cekura tests)
        assert done.returncode in (0, 5), f"{example.where}: {command}\n{output}"
        ran += 1
    assert ran or commands(example), (
        f"{example.where}: no command to run; mark the block if none can run offline"
    )
