"""Scenario suites written in TOML (cekura_*.toml) collect, run and report like marked tests."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import PLAYBOOK, Suite
from pytest_cekura.suites import SuiteError, load_suite

# A user's conftest may import the hook as well: registering it a second time must not
# collect anything twice (see test_wired_twice_collects_once).
WIRING = "from pytest_cekura.suites import pytest_collect_file  # noqa: F401\n"


#: The same three tests twice: as marked Python tests, and as a TOML suite.
MARKED = """
import pytest

@pytest.mark.cekura_scenario(30, frequency=2)
def test_refill(): pass

@pytest.mark.cekura_scenario(30, 31, frequency=2)
def test_billing(): pass

@pytest.mark.cekura_scenario(30, 32, frequency=2)
def test_unlucky(): pass
"""
SUITE = """
# Same scenarios and frequency as test_marked.py: all six tests share one POST.
[[test]]
name = "refill"
scenarios = [30]
frequency = 2

[[test]]
name = "billing"
scenarios = [30, 31]
frequency = 2

[[test]]
name = "unlucky"
scenarios = [30, 32]
frequency = 2
"""


@pytest.fixture
def catalogued(make_suite: Callable[[str], Suite]) -> Suite:
    return make_suite(PLAYBOOK)


@pytest.fixture
def wired(suite: Suite) -> Suite:
    return suite


def write(suite: Suite, name: str, toml: str) -> Path:
    path = suite.pytester.path / name
    path.write_text(textwrap.dedent(toml).lstrip("\n"), encoding="utf-8")
    return path


def glob(pattern: str) -> str:
    """A whole-line regex for ``pattern`` where only ``*`` is special (messages hold [[test]])."""
    return ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def junit_cases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def test_entries_pass_fail_and_error_exactly_like_marked_tests(
    catalogued: Suite, tmp_path: Path
) -> None:
    catalogued.pytester.makepyfile(test_marked=MARKED)
    write(catalogued, "cekura_suite.toml", SUITE)
    junit = tmp_path / "junit.xml"
    result = catalogued.run(f"--junitxml={junit}")
    result.assert_outcomes(passed=2, failed=2, errors=2)
    assert catalogued.posts() == 1  # one group: the .py tests and the entries share it
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of cekura: unlucky*",
            "*Cekura could not decide this test: 2 of 4 runs succeeded and 2 could not be run*",
            "*FAILURES*",
            "*cekura: billing*",
            "Cekura: 2 of 4 runs succeeded (50%); this test needs 100%.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= cekura =*",
            "PASSED  cekura_suite.toml::refill · scenarios 30 · runs 2/2 (100%), needs 100%",
            "FAILED  cekura_suite.toml::billing · scenarios 30,31 · runs 2/4 (50%), needs 100%",
            "ERROR   cekura_suite.toml::unlucky · scenarios 30,32 · runs 2/4 (50%), needs 100%",
            "PASSED  test_marked.py::test_refill · *",
            "cekura: 6 test(s) (2 error, 2 failed, 2 passed) over 6 run(s); "
            "API requests: 1 POST start runs, *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "FAILED cekura_suite.toml::billing - Failed: Cekura: 2 of 4 runs succeeded*",
            "FAILED test_marked.py::test_billing - Failed: Cekura: 2 of 4 runs succeeded*",
            "ERROR cekura_suite.toml::unlucky - Failed: Cekura could not decide this test*",
        ]
    )
    # No traceback: the report is all a QA person needs, and there is no Python of theirs.
    assert "Traceback" not in result.stdout.str()
    assert "suites.py" not in result.stdout.str()

    cases = junit_cases(junit)
    assert {"cekura_suite.toml::refill", "cekura_suite.toml::billing"} <= set(cases)
    for name, tag in (("billing", "failure"), ("unlucky", "error")):
        toml_case = cases[f"cekura_suite.toml::{name}"].find(tag)
        py_case = cases[f"test_marked::test_{name}"].find(tag)
        assert toml_case is not None
        assert py_case is not None
        # They share the runs, so the reports must be identical, message and text.
        assert toml_case.get("message") == py_case.get("message")
        assert toml_case.text == py_case.text
    props = cases["cekura_suite.toml::refill"].iter("property")
    names = [p.get("name") for p in props]
    assert names[:2] == ["cekura_result_id", "cekura_success_rate"]
    assert names.count("cekura_run") == 2


def test_every_key_reaches_the_request_like_the_marker_argument(catalogued: Suite) -> None:
    catalogued.pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.cekura_scenario(
            30, frequency=2, min_success_rate=0.5, provider="livekit", agent=42,
            test_profile=7, personality=3, publish_data_message={"locale": "de-DE"},
        )
        def test_german(): pass
        """
    )
    write(
        catalogued,
        "cekura_options.toml",
        """
        [[test]]
        name = "german refill"
        scenarios = [30, 31]
        frequency = 2
        min_success_rate = 0.5
        provider = "livekit"
        agent = 42
        test_profile = 7
        personality = 3
        publish_data_message = { locale = "de-DE" }

        [[test]]
        name = "english refill"
        scenarios = [30]
        frequency = 2
        agent = 42
        test_profile = 7
        personality = 3
        publish_data_message = { locale = "en-US" }
        """,
    )
    result = catalogued.run()
    result.assert_outcomes(passed=3)
    # Same options as the marked test: one POST; another publish_data_message: a second one.
    assert catalogued.posts() == 2
    by_locale = sorted(
        (run["publish_data_message"]["locale"], run["scenario"]) for run in catalogued.emulator.runs
    )
    german = [("de-DE", 30), ("de-DE", 30), ("de-DE", 31), ("de-DE", 31)]
    assert by_locale == [*german, ("en-US", 30), ("en-US", 30)]
    profile = json.loads(catalogued.emulator.runs[0]["job_metadata"])["test_profile_data"]
    assert profile["name"] == "Jane"
    result.stdout.fnmatch_lines(
        ["PASSED  cekura_options.toml::german refill · scenarios 30,31 · runs 2/4 (50%), needs 50%"]
    )


def test_livekit_v2_options_reach_the_request_like_the_marker_arguments(wired: Suite) -> None:
    write(
        wired,
        "cekura_preview.toml",
        """
        [[test]]
        name = "preview worker"
        scenarios = [30]
        concurrency_limit = 2
        mock_tool_names = ["check_inventory"]
        livekit_data = { agent_name = "pharmacy-pr-12", config = { locale = "de-DE" } }

        [[test]]
        name = "production worker"
        scenarios = [31]
        """,
    )
    wired.run().assert_outcomes(passed=2)
    bodies = [r.body for r in wired.emulator.requests if "run_scenarios" in r.path]
    assert len(bodies) == 2  # livekit_data and the other options shape the request
    (preview,) = [b for b in bodies if b["scenarios"] == [{"scenario": 30}]]
    assert preview["concurrency_limit"] == 2
    assert preview["mock_tool_names"] == ["check_inventory"]
    assert preview["livekit_data"] == {
        "agent_name": "pharmacy-pr-12",
        "config": {"locale": "de-DE"},
    }
    (production,) = [b for b in bodies if b["scenarios"] == [{"scenario": 31}]]
    assert {"concurrency_limit", "mock_tool_names", "livekit_data"}.isdisjoint(production)


def test_collect_only_lists_entries_and_submits_nothing(wired: Suite) -> None:
    write(wired, "cekura_smoke.toml", SUITE)
    result = wired.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "cekura_smoke.toml::refill",
            "cekura_smoke.toml::billing",
            "cekura_smoke.toml::unlucky",
            "3 tests collected*",
        ]
    )
    assert wired.emulator.requests == []


def test_k_m_and_node_id_select_entries_like_tests(wired: Suite) -> None:
    wired.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(40)
        def test_marked(): pass

        def test_plain(): pass
        """
    )
    write(
        wired,
        "cekura_smoke.toml",
        """
        [[test]]
        name = "refill flow"
        scenarios = [41]

        [[test]]
        name = "billing dispute"
        scenarios = [42]
        frequency = 3
        """,
    )
    wired.run("-k", "refill").assert_outcomes(passed=1, deselected=3)
    assert wired.posts() == 1
    assert {run["scenario"] for run in wired.emulator.runs} == {41}  # nothing deselected starts

    wired.run("-k", "refill and flow or billing").assert_outcomes(passed=2, deselected=2)
    wired.run("-m", "cekura_scenario").assert_outcomes(passed=3, deselected=1)
    before = wired.posts()
    wired.run("-m", "not cekura_scenario").assert_outcomes(passed=1, deselected=3)
    assert wired.posts() == before

    result = wired.run("cekura_smoke.toml::billing dispute", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cekura_smoke.toml::billing dispute PASSED*"])


def test_entry_location_is_its_header_line(wired: Suite) -> None:
    write(
        wired,
        "cekura_smoke.toml",
        """
        # Smoke checks: scenario 40 in two ways.

        [[test]]
        name = "once"
        scenarios = [40]

        [[ test ]]  # spaces are allowed in the header
        name = "twice"
        scenarios = [40]
        frequency = 2
        """,
    )
    items, _ = wired.pytester.inline_genitems()
    assert [item.location for item in items] == [
        ("cekura_smoke.toml", 2, "cekura: once"),
        ("cekura_smoke.toml", 6, "cekura: twice"),
    ]
    assert [item.nodeid for item in items] == [
        "cekura_smoke.toml::once",
        "cekura_smoke.toml::twice",
    ]


def test_inline_entries_have_no_line(tmp_path: Path) -> None:
    path = tmp_path / "cekura_inline.toml"
    path.write_text('test = [{ name = "a", scenarios = [30] }, { name = "b", scenarios = [31] }]')
    entries = load_suite(path)
    assert [(e.name, e.scenarios, e.line) for e in entries] == [
        ("a", (30,), None),
        ("b", (31,), None),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("frequency = 0", "frequency=0 is invalid; use an integer from 1 to 100"),
        ("frequency = 2.5", "frequency=2.5 is invalid"),
        ("min_success_rate = 1.5", "min_success_rate=1.5 is invalid; use a fraction from 0.0"),
        ('provider = "zoom"', "provider='zoom' is not supported; use one of: livekit, livekit_v1*"),
        ('provider = "voice"', "provider='voice' needs an agent: pass agent= on the marker*"),
        ('agent = "42"', "agent='42' is invalid; use the positive integer id of an agent*"),
        ("test_profile = -1", "test_profile=-1 is invalid*"),
        ("publish_data_message = 1979-05-27", "publish_data_message=datetime.date(1979, 5, 27)*"),
        # Was INTERNALERROR TypeError: unhashable type: 'list' (issue #14, item 14).
        ('provider = ["livekit"]', "provider=['livekit'] is invalid; give one provider name*"),
        ("agent = 100000000000000000000", "agent=100000000000000000000 is too large: Cekura's*"),
        ("personality = 9223372036854775808", "personality=9223372036854775808 is too large*"),
        ("concurrency_limit = 0", "concurrency_limit=0 is invalid; use a positive whole number*"),
        ('mock_tool_names = "lookup"', "mock_tool_names='lookup' is invalid; use a list of tool*"),
        (
            'livekit_data = { api_secret = "s3cr3t" }',
            "livekit_data may not contain api_secret: Cekura never accepts LiveKit credentials*",
        ),
        ('livekit_data = { config = "x" }', "livekit_data config='x' is invalid; use a dict*"),
    ],
)
def test_bad_value_errors_that_entry_at_setup_like_the_marker(
    wired: Suite, entry: str, message: str
) -> None:
    write(
        wired,
        "cekura_values.toml",
        f"""
        [[test]]
        name = "bad"
        scenarios = [30]
        {entry}

        [[test]]
        name = "good"
        scenarios = [40]
        """,
    )
    result = wired.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of cekura: bad*"])
    # located at the line of the key holding the bad value (line 4), not the [[test]] line
    result.stdout.re_match_lines(
        [glob(f"cekura_values.toml:4: @pytest.mark.cekura_scenario: {message}*")]
    )
    assert "Traceback" not in result.stdout.str()
    assert wired.posts() == 1  # the good entry's group only


@pytest.mark.parametrize(
    ("scenarios", "message"),
    [
        ("[]", "no scenario ids given; pass at least one*"),
        ("[0]", "scenario id 0 is invalid*"),
        ('["30"]', "scenario id '30' is invalid*"),
        ("[30, 30]", "scenario id 30 is listed twice; use frequency= to run it several times"),
    ],
)
def test_bad_scenario_ids_error_at_setup_like_the_marker(
    wired: Suite, scenarios: str, message: str
) -> None:
    write(wired, "cekura_ids.toml", f'[[test]]\nname = "bad"\nscenarios = {scenarios}\n')
    result = wired.run()
    result.assert_outcomes(errors=1)
    result.stdout.re_match_lines(
        [glob(f"cekura_ids.toml:3: @pytest.mark.cekura_scenario: {message}*")]
    )
    assert wired.posts() == 0


GOOD = '[[test]]\nname = "good"\nscenarios = [40]\n'

#: An entry whose keys sit several lines below its [[test]] line (line 3).
SPREAD = """
# header comment
[[test]]
# the refill flow, run often
name = "refill"

frequency = 2
"min_success_rate" = 0.5
livekit_data.agent_name = "a"
scenarios = [30]
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("freqency = 3", ":10: test[1]", "unknown key 'freqency' (did you mean 'frequency'?)*"),
        ("  'agnet' = 3", ":10: test[1]", "unknown key 'agnet' (did you mean 'agent'?)*"),
        ("[test.livekit_dat]\nurl = 'x'", ":10: test[1]", "unknown key 'livekit_dat'*"),
    ],
)
def test_collection_error_points_at_the_bad_keys_line(
    wired: Suite, extra: str, where: str, message: str
) -> None:
    write(wired, "cekura_spread.toml", SPREAD.format(extra=extra))
    result = wired.run()
    result.stdout.re_match_lines([glob(f'cekura_spread.toml{where} ("refill"): {message}')])


def test_bad_name_scenarios_and_duplicates_point_at_their_key(tmp_path: Path) -> None:
    path = tmp_path / "cekura_lines.toml"
    body = '[[test]]\nname = "a"\nscenarios = [30]\n\n[[test]]\n# again\n\nname = "a"\n'
    path.write_text(body + "scenarios = [31]\n")
    with pytest.raises(SuiteError, match=r'^x:8: test\[2\] \("a"\): name "a" is already used'):
        load_suite(path, source="x")
    path.write_text('[[test]]\nname = "a"\n\n\nscenarios = 30\n')
    with pytest.raises(SuiteError, match=r'^x:5: test\[1\] \("a"\): scenarios = 30 is invalid'):
        load_suite(path, source="x")
    path.write_text('[[test]]\nscenarios = [30]\n# a comment\nname = ""\n')
    with pytest.raises(SuiteError, match=r'^x:4: test\[1\] \(""\): name = "" is'):
        load_suite(path, source="x")


def test_entries_know_where_each_key_is(tmp_path: Path) -> None:
    path = tmp_path / "cekura_spread.toml"
    path.write_text(SPREAD.format(extra="[test.request_fields]\nx = 1"))
    (entry,) = load_suite(path)
    assert entry.line == 2
    assert entry.key_lines == {
        "name": 4,
        "frequency": 6,
        "min_success_rate": 7,
        "livekit_data": 8,
        "scenarios": 9,
        "request_fields": 10,
    }


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[test]]\nname = "refill\nscenarios = [30]\n',
            "cekura_bad.toml: TOML syntax error: * (at line 2, column *); fix the syntax there",
        ),
        (
            '[[tests]]\nname = "refill"\nscenarios = [30]\n',
            "cekura_bad.toml: unknown top-level table 'tests' (did you mean 'test'?); "
            "a suite file holds only [[test]] entries",
        ),
        (
            "[[scenario]]\nid = 30\noutcome = 'pass'\n",
            "cekura_bad.toml: unknown top-level table 'scenario': this looks like an emulator "
            "catalogue; give it a name that does not match cekura_*.toml*",
        ),
        (
            'frequency = 2\n[[test]]\nname = "refill"\nscenarios = [30]\n',
            "cekura_bad.toml: key 'frequency' is outside any entry; move it below a [[test]] line*",
        ),
        (
            '[test]\nname = "refill"\nscenarios = [30]\n',
            "cekura_bad.toml: [test] is a single table; write [[test]] (double brackets)*",
        ),
        (
            GOOD + '\n[[test]]\nname = "refill flow"\nscenarios = [30]\nfrequncy = 2\n',
            "cekura_bad.toml:8: test[2] (\"refill flow\"): unknown key 'frequncy' "
            "(did you mean 'frequency'?); known keys: name, scenarios, frequency, *",
        ),
        (
            "[[test]]\nscenarios = [30]\n",
            "cekura_bad.toml:1: test[1]: missing required key 'name'; add name = \"...\"*",
        ),
        (
            '[[test]]\nname = "refill flow"\n',
            "cekura_bad.toml:1: test[1] (\"refill flow\"): missing required key 'scenarios'; "
            "add scenarios = [<id>, ...]*",
        ),
        (
            '[[test]]\nname = "refill flow"\nscenarios = 30\n',
            'cekura_bad.toml:3: test[1] ("refill flow"): scenarios = 30 is invalid; use a list '
            "of scenario ids, e.g. scenarios = [30]",
        ),
        (
            "[[test]]\nname = 5\nscenarios = [30]\n",
            "cekura_bad.toml:2: test[1]: name = 5 is invalid; use a non-empty string*",
        ),
        (
            '[[test]]\nname = "a::b"\nscenarios = [30]\n',
            'cekura_bad.toml:2: test[1] ("a::b"): name = "a::b" is invalid; leave out \'::\'*',
        ),
        (
            '[[test]]\nname = "refill"\nscenarios = [30]\n\n'
            '[[test]]\nname = "refill"\nscenarios = [31]\n',
            'cekura_bad.toml:6: test[2] ("refill"): name "refill" is already used by '
            'test[1] ("refill") (line 1); give every entry of a file its own name*',
        ),
        (
            'test = [{ name = "a", scenarios = [30] }, 3]\n',
            "cekura_bad.toml: test[2]: 3 is not a table of keys; write each entry as a [[test]]*",
        ),
    ],
)
def test_bad_file_is_one_collection_error_and_spares_the_others(
    wired: Suite, toml: str, message: str
) -> None:
    write(wired, "cekura_bad.toml", toml)
    write(wired, "cekura_good.toml", GOOD)
    wired.pytester.makepyfile(
        "import pytest\n\n@pytest.mark.cekura_scenario(40)\ndef test_a(): pass\n"
    )
    result = wired.run("--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting cekura_bad.toml*"])
    result.stdout.re_match_lines([glob(message)])
    out = result.stdout.str()
    assert "Traceback" not in out
    assert out.count("ERROR collecting") == 1
    assert wired.posts() == 1


def test_bad_file_does_not_hide_the_other_files_tests(wired: Suite) -> None:
    write(wired, "cekura_bad.toml", "[[test]]\nname = \n")
    write(wired, "cekura_good.toml", GOOD)
    wired.pytester.makepyfile("def test_plain(): pass")
    # As for a broken test module: the others are still collected, and pytest stops before
    # running anything unless asked to continue.
    result = wired.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["cekura_good.toml::good", "test_bad_file_does_not_hide_the_other_files_tests.py::*"]
    )
    result.stdout.fnmatch_lines(["*2 tests collected, 1 error*"])
    result = wired.run()
    result.stdout.fnmatch_lines(["*ERROR collecting cekura_bad.toml*", "*Interrupted: 1 error*"])


def test_collection_error_that_stops_the_run_starts_no_calls(wired: Suite) -> None:
    write(wired, "cekura_bad.toml", "[[test]]\nname = \n")
    write(wired, "cekura_good.toml", GOOD)
    wired.run().stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])
    assert wired.posts() == 0  # nothing will run, so nothing may cost credits


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cekura_latin1.toml"
    path.write_bytes(b'[[test]]\nname = "caf\xe9"\nscenarios = [30]\n')
    with pytest.raises(SuiteError, match=r"not UTF-8 text \(byte 20\); save the suite as UTF-8"):
        load_suite(path)


def test_other_toml_files_are_not_collected(wired: Suite) -> None:
    write(wired, "cekura-catalogue.toml", "[[scenario]]\nid = 30\n")  # the catalogue's name
    write(wired, "pyproject.toml", "[tool.other]\nx = 1\n")
    write(wired, "suite_cekura.toml", GOOD)
    result = wired.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*no tests collected*"])


def test_wired_twice_collects_once(wired: Suite) -> None:
    # The plugin registers the hook while a conftest still imports it: one item per entry.
    wired.pytester.makepyfile(also_wired=WIRING)
    write(wired, "cekura_smoke.toml", GOOD)
    wired.pytester.syspathinsert()
    result = wired.run("-p", "also_wired")
    result.assert_outcomes(passed=1)
    assert wired.posts() == 1


def test_workers_run_entries_and_submit_once(wired: Suite) -> None:
    write(wired, "cekura_smoke.toml", SUITE.replace("32", "33"))
    wired.pytester.makepyfile(MARKED.replace("32", "33"))
    result = wired.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=6)
    assert wired.posts() == 1
    result.stdout.fnmatch_lines(
        ["cekura: 6 test(s) (6 passed) over 6 run(s); API requests: 1 POST*"]
    )
