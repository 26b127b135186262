"""The CI recipes of docs/ci.md work as written (issue #17 item 7).

Each YAML recipe is read from the page; its commands (GitHub ``run:`` steps, GitLab
``script:`` lines) run, in order, against the emulator in a project laid out like the docs'
(``tests/voice``), with the stand-in LiveKit worker for ``python agent.py start``. What the
recipe then uploads, comments or reports must exist, and the workflow properties the docs
promise (label trigger, one run per pull request, secrets, JUnit report) are checked on the
YAML itself. Only the poll interval is changed, so a run takes a second, not five.
"""

from __future__ import annotations

import glob
import itertools
import re
import shlex
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import SENTINEL_KEY, Suite
from pytest_cekura.report_merge import main as merge_main

CI_PAGE = Path(__file__).resolve().parent.parent / "docs" / "ci.md"
#: Stands in for ``python agent.py start``: registers as livekit-agents 1.6+ does.
WORKER = shlex.join([sys.executable, str(Path(__file__).with_name("stand_in_worker.py"))])
YAML_BLOCK = re.compile(r"^```yaml\n(?P<body>.*?)^```", re.M | re.S)
CATALOGUE = '[[agent]]\nid = 42\nname = "Pharmacy agent"\nlivekit_agent_name = "pharmacy-agent"\n'
#: What the GitHub expressions stand for in these runs.
EXPRESSIONS = {
    "github.event.pull_request.number": "12",
    "secrets.CEKURA_API_KEY": SENTINEL_KEY,
    "vars.CEKURA_AGENT_ID": "42",
}
STEP_SUMMARY_TABLE = "| Test | Verdict | Runs passed | Reason |"


@dataclass(frozen=True)
class Recipe:
    line: int
    yaml: Any

    @property
    def gitlab(self) -> bool:
        return any(isinstance(n, dict) and "script" in n for n in walk(self.yaml))


def recipes() -> list[Recipe]:
    text = CI_PAGE.read_text(encoding="utf-8")
    found = []
    for match in YAML_BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        # A fragment of a workflow is indented as in the whole file.
        found.append(Recipe(line, yaml.safe_load(textwrap.dedent(match["body"]))))
    return found


RECIPES = recipes()


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


def commands(recipe: Recipe) -> Iterator[tuple[str, dict[str, str]]]:
    """Each command with the environment its step gives, in the order of the file."""
    for node in walk(recipe.yaml):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("run"), str):
            yield node["run"], {k: str(v) for k, v in (node.get("env") or {}).items()}
        if isinstance(node.get("script"), list):
            variables = {k: str(v) for k, v in (node.get("variables") or {}).items()}
            for line in node["script"]:
                yield line, variables


def matrix(recipe: Recipe) -> list[dict[str, str]]:
    """Every combination of the recipe's GitHub matrix ([{}] without one)."""
    for node in walk(recipe.yaml):
        if isinstance(node, dict) and isinstance(node.get("matrix"), dict):
            axes = node["matrix"]
            if "include" in axes:
                return [{k: str(v) for k, v in combo.items()} for combo in axes["include"]]
            names = list(axes)
            values = itertools.product(*(axes[name] for name in names))
            return [dict(zip(names, map(str, combo), strict=True)) for combo in values]
    return [{}]


def expand(text: str, combo: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name.startswith("matrix."):
            return combo[name.removeprefix("matrix.")]
        return EXPRESSIONS.get(name, "x")  # other secrets (LiveKit's) are not read here

    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", value, text)


def uploaded_paths(recipe: Recipe) -> list[str]:
    """What the recipe uploads, comments or reports: it must exist after the commands."""
    paths: list[str] = []
    for node in walk(recipe.yaml):
        if not isinstance(node, dict):
            continue
        uses = str(node.get("uses", ""))
        if uses.startswith(("actions/upload-artifact", "marocchino/sticky-pull-request-comment")):
            paths += [line.strip() for line in str(node["with"]["path"]).splitlines()]
        if "artifacts" in node:
            paths += node["artifacts"].get("paths", [])
            paths += [str(p) for p in node["artifacts"].get("reports", {}).values()]
    # A matrix job uploads one file per combination.
    combos = matrix(recipe)
    return [expand(path, combo) for path in paths for combo in combos] if paths else []


def option(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word == name:
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


@pytest.fixture
def project(make_suite: Callable[[str], Suite]) -> Suite:
    """``tests/voice`` of the docs: two modules, so ``-k "not booking"`` and a node id split it."""
    suite = make_suite(CATALOGUE)
    voice = suite.pytester.path / "tests" / "voice"
    voice.mkdir(parents=True)
    header = "import pytest\n\n"
    for module, tests in (("booking", (30, 31)), ("refunds", (32, 33))):
        body = "".join(
            f"@pytest.mark.cekura_scenario({scenario}, agent=42)\n"
            f"def test_{module}_{scenario}(): pass\n\n"
            for scenario in tests
        )
        (voice / f"test_{module}.py").write_text(header + body)
    return suite


def run_recipe(suite: Suite, recipe: Recipe, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the recipe's commands; the number of pytest sessions started."""
    step_summary = suite.pytester.path / "github-step-summary.md"
    if not recipe.gitlab:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    sessions = 0
    for command, env in commands(recipe):
        for combo in matrix(recipe) if "matrix." in command else [{}]:
            words = shlex.split(expand(command, combo))
            if words[:2] == ["pip", "install"] or words[:1] == ["cat"]:
                continue  # installed already / shows a file
            for name, raw in env.items():
                monkeypatch.setenv(name, expand(raw, combo))
            monkeypatch.setenv("CEKURA_API_KEY", SENTINEL_KEY)  # the recipe's secret
            if words[:4] == ["python", "-m", "pytest_cekura.report", "merge"]:
                shards = [
                    found
                    for word in words[4:]
                    for found in sorted(glob.glob(word, root_dir=suite.pytester.path)) or [word]
                ]
                assert merge_main(["merge", *shards]) == 0, command
                continue
            assert words[0] == "pytest", f"ci.md:{recipe.line}: cannot run {command!r}"
            args = [WORKER if w == "python agent.py start" else w for w in words[1:]]
            # Not Suite.run: the cache provider stays on, where the worker log is uploaded from.
            result = suite.pytester.runpytest(*args, "--cekura-poll-interval=0.02")
            assert result.ret == 0, f"ci.md:{recipe.line}: {command}\n{result.stdout.str()}"
            for name in ("--junitxml", "--cekura-report", "--cekura-summary-md"):
                written = option(args, name)
                assert written is None or (suite.pytester.path / written).is_file(), name
            sessions += 1
    return sessions


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: f"ci.md:{r.line}")
def test_recipe_runs_as_written_against_the_emulator(
    project: Suite, recipe: Recipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_recipe(project, recipe, monkeypatch) >= 1
    here = project.pytester.path
    for path in uploaded_paths(recipe):
        assert (here / path).is_file(), f"ci.md:{recipe.line} uploads {path}: never written"
    if recipe.gitlab:
        [command] = [c for c, _ in commands(recipe) if c.startswith("pytest")]
        junit = option(shlex.split(command), "--junitxml")
        assert junit is not None
        assert junit in uploaded_paths(recipe)
        assert "cekura_result_id" in (here / junit).read_text()
    else:
        assert STEP_SUMMARY_TABLE in (here / "github-step-summary.md").read_text()
    # Every test of the suite ran exactly once, whatever the split.
    submitted = [item["scenario"] for r in project.emulator.requests if r.method == "POST"
                 for item in (r.body or {}).get("scenarios", [])]  # fmt: skip
    assert sorted(submitted) == [30, 31, 32, 33] * (len(submitted) // 4)
    if any("--cekura-agent-cmd" in c for c, _ in commands(recipe)):
        names = {run["livekit_agent_name"] for run in project.emulator.runs}
        assert len(names) == 1
        assert re.fullmatch(r"pharmacy-pr-12-pytest-[0-9a-f]{8}", names.pop())


def workflow_trigger(workflow: dict[Any, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def test_the_livekit_workflow_has_what_the_docs_promise() -> None:
    [recipe] = [r for r in RECIPES if "--cekura-agent-cmd" in str(r.yaml)]
    workflow = recipe.yaml
    assert "labeled" in workflow_trigger(workflow)["pull_request"]["types"]
    assert "pull_request.number" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert workflow["permissions"]["pull-requests"] == "write"
    job = workflow["jobs"]["cekura"]
    assert "labels.*.name, 'cekura'" in job["if"]
    assert "head.repo.full_name == github.repository" in job["if"]  # forks get no secrets
    steps = job["steps"]
    [run] = [step for step in steps if "--cekura-agent-cmd" in step.get("run", "")]
    assert all(
        value.startswith("${{ secrets.")
        for name, value in run["env"].items()
        if name in ("CEKURA_API_KEY", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
    )
    comment = next(s for s in steps if "sticky-pull-request-comment" in s.get("uses", ""))
    assert comment["with"]["path"] == option(shlex.split(run["run"]), "--cekura-summary-md")
    log = next(s for s in steps if "agent-worker.log" in str(s.get("with", {}).get("path")))
    assert log["if"] == "failure()"
