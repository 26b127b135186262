"""Bad input gets one clear error that names the thing and the fix."""

from __future__ import annotations

import pytest

from conftest import Suite


@pytest.mark.parametrize(
    ("marker_args", "message"),
    [
        ("", "no scenario ids given; pass at least one"),
        ("0", "scenario id 0 is invalid"),
        ("-4", "scenario id -4 is invalid"),
        ("'30'", "scenario id '30' is invalid"),
        ("True", "scenario id True is invalid"),
        ("30, 30", "scenario id 30 is listed twice; use frequency="),
        ("30, frequency=0", "frequency=0 is invalid; use an integer from 1 to 100"),
        ("30, frequency=101", "frequency=101 is invalid"),
        ("30, frequency=2.5", "frequency=2.5 is invalid"),
        ("30, min_success_rate=1.5", "min_success_rate=1.5 is invalid; use a fraction from 0.0"),
        ("30, min_success_rate='high'", "min_success_rate='high' is invalid"),
        (
            "30, provider='zoom'",
            "provider='zoom' is not supported; use one of: livekit, livekit_v1",
        ),
        ("30, agent=-1", "agent=-1 is invalid; use the positive integer id of an agent in Cekura"),
        ("30, personality='calm'", "personality='calm' is invalid"),
        ("30, provider='voice'", "provider='voice' needs an agent: pass agent= on the marker"),
        ("30, provider='websocket'", "provider='websocket' needs websocket_url: pass scenario_f"),
        ("30, provider='vapi', agent=1", "provider='vapi' needs vapi_assistant_id: pass request_f"),
        ("30, publish_data_message=object()", "publish_data_message=<object object at"),
        ("30, scenario_fields='x'", "scenario_fields='x' is invalid; use a dict of request field"),
        ("30, request_fields={'frequency': 5}", "request_fields may not set frequency: use the"),
        ("30, test_profile=-1", "test_profile=-1 is invalid"),
        ("30, frequncy=2", "unknown argument frequncy=2 (did you mean frequency=?"),
        # Was INTERNALERROR TypeError: unhashable type: 'list' (issue #14, item 14).
        ("30, provider=['livekit']", "provider=['livekit'] is invalid; give one provider name"),
        ("30, provider={'livekit': 1}", "provider={'livekit': 1} is invalid; give one provider"),
        # The API's integers are 64-bit signed: these were sent silently.
        ("2**63", "scenario id 9223372036854775808 is too large: Cekura's ids are 64-bit"),
        ("30, agent=10**20", "agent=100000000000000000000 is too large: Cekura's ids are 64"),
        ("30, test_profile=10**20", "test_profile=100000000000000000000 is too large"),
        ("30, personality=2**63", "personality=9223372036854775808 is too large"),
        ("30, concurrency_limit=0", "concurrency_limit=0 is invalid; use a positive whole"),
        ("30, concurrency_limit=2**63", "concurrency_limit=9223372036854775808 is invalid"),
        ("30, mock_tool_names='lookup'", "mock_tool_names='lookup' is invalid; use a list of"),
        ("30, mock_tool_names=['']", "mock_tool_names=[''] is invalid: '' is not a tool name"),
        (
            "30, livekit_data={'api_key': 'APIxyz'}",
            "livekit_data may not contain api_key: Cekura never accepts LiveKit credentials",
        ),
        ("30, livekit_data={'agentname': 'a'}", "livekit_data has unknown key 'agentname'; use"),
        ("30, livekit_data=['a']", "livekit_data=['a'] is invalid; use a dict with any of"),
        ("30, livekit_data={'config': 'x'}", "livekit_data config='x' is invalid; use a dict"),
        ("30, livekit_data={'agent_name': ''}", "livekit_data agent_name='' is invalid; use a"),
        (
            "30, livekit_data={'url': 'wss://key:secret@lk.example'}",
            "livekit_data url=(not shown) contains credentials; give the server URL alone",
        ),
        ("30, livekit_data={'url': 'http://[::1'}", "livekit_data url='http://[::1' is not a"),
        (
            "30, provider='voice', agent=1, livekit_data={'agent_name': 'a'}",
            "livekit_data= is not accepted by provider='voice'; providers that take it: livekit",
        ),
        (
            "30, provider='email', agent=1, concurrency_limit=2",
            "concurrency_limit= is not accepted by provider='email'; providers that take it",
        ),
        (
            "30, request_fields={'livekit_data': {}}",
            "request_fields may not set livekit_data: use the marker's own arguments",
        ),
        (
            "30, request_fields={'x': float('nan')}",
            "request_fields={'x': nan} cannot be sent to Cekura; use JSON data",
        ),
    ],
)
def test_bad_marker_argument_errors_that_test_alone(
    suite: Suite, marker_args: str, message: str
) -> None:
    suite.pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.cekura_scenario({marker_args})
        def test_bad(): pass

        @pytest.mark.cekura_scenario(40)
        def test_good(): pass
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    # "[" opens a character class in fnmatch patterns: "[[]" matches it literally.
    pattern = message.replace("[", "[[]")
    result.stdout.fnmatch_lines([f"*@pytest.mark.cekura_scenario: {pattern}*"])
    out = result.stdout.str()
    assert out.count("ERROR at setup of") == 1  # one error, for the bad test alone
    assert "Traceback" not in out
    assert "INTERNALERROR" not in out + result.stderr.str()
    assert "secret@" not in out  # a URL's credentials are never repeated
    assert suite.posts() == 1  # the good test's group only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cekura-poll-interval=-1"], "--cekura-poll-interval='-1' is invalid: use a positive"),
        (["--cekura-timeout=soon"], "--cekura-timeout='soon' is invalid: use a positive number"),
        (["--cekura-url=api.cekura.ai"], "--cekura-url='api.cekura.ai' is not a valid URL"),
        (["-o", "cekura_timeout=0"], "ini key cekura_timeout='0' is invalid"),
        (
            ["--cekura-dashboard-url=https://x/{bad}"],
            "use only the fields {project_id}, {result_id} and {run_id}",
        ),
        (["--cekura-emulator-catalogue=missing.toml"], "'missing.toml': no such file"),
        (["--cekura-order=fastest"], "use one of collection, finish"),
        # "²".isdigit() is True but int("²") raises: was INTERNALERROR ValueError.
        (["-o", "cekura_max_runs=²"], "ini key cekura_max_runs='²' is invalid: use a positive"),
        (["--cekura-agent=10**20"], "--cekura-agent='10**20' is invalid: use a positive whole"),
        (
            ["--cekura-agent=100000000000000000000"],
            "--cekura-agent='100000000000000000000' is too large: Cekura's ids are 64-bit",
        ),
        (
            ["--cekura-concurrency-limit=0"],
            "--cekura-concurrency-limit='0' is invalid: use a positive whole number",
        ),
        (
            ["--cekura-mock-tool-names=,"],
            "--cekura-mock-tool-names=',' is invalid: give tool names separated by commas",
        ),
        (
            ["--cekura-livekit-url=wss://k:s@lk.example"],
            "--cekura-livekit-url=(not shown) contains credentials; give the server URL alone",
        ),
        (
            ["--cekura-livekit-config=[1]"],
            "--cekura-livekit-config='[1]': cannot read it (FileNotFoundError); give a JSON",
        ),
        (
            ["--cekura-livekit-config={locale}"],
            "--cekura-livekit-config is not valid JSON (Expecting property name",
        ),
    ],
)
def test_bad_setting_is_one_usage_error(suite: Suite, args: list[str], message: str) -> None:
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count(message) == 1
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # Was INTERNALERROR ValueError: invalid literal for int() (issue #14, item 14).
        (
            "CEKURA_AGENT_ID",
            "²",
            "environment variable CEKURA_AGENT_ID='²' is invalid: use a positive whole number",
        ),
        (
            "CEKURA_AGENT_ID",
            "9223372036854775808",
            "environment variable CEKURA_AGENT_ID='9223372036854775808' is too large: Cekura's "
            "ids are 64-bit integers (at most 9223372036854775807); use the id of your agent",
        ),
        # Was INTERNALERROR ValueError: Invalid IPv6 URL.
        (
            "CEKURA_API_URL",
            "http://[::1",
            "environment variable CEKURA_API_URL='http://[::1' is not a valid URL: use "
            "http(s)://host[:port]",
        ),
        ("CEKURA_API_URL", "http://host:99999", "CEKURA_API_URL='http://host:99999' is not a"),
        (
            "CEKURA_CONCURRENCY_LIMIT",
            "²",
            "environment variable CEKURA_CONCURRENCY_LIMIT='²' is invalid: use a positive whole",
        ),
        (
            "CEKURA_LIVEKIT_URL",
            "lk.example",
            "environment variable CEKURA_LIVEKIT_URL='lk.example' is not a valid URL; use the "
            "LiveKit server URL",
        ),
    ],
)
def test_bad_environment_variable_is_one_usage_error(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count(message) == 1, err
    assert "INTERNALERROR" not in result.stdout.str() + err


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        # pytest's own message ("invalid truth value 'maybe'") named no key.
        (
            "cekura_preflight = maybe",
            "ini key cekura_preflight is invalid (invalid truth value 'maybe'): use true or "
            "false (or --cekura-no-preflight on the command line)",
        ),
        ("cekura_max_runs = ²", "ini key cekura_max_runs='²' is invalid: use a positive whole"),
        ("cekura_agent = 1e3", "ini key cekura_agent='1e3' is invalid: use a positive whole"),
        (
            "cekura_livekit_config = missing.json",
            "ini key cekura_livekit_config='missing.json': cannot read it",
        ),
    ],
)
def test_bad_ini_value_is_one_usage_error_naming_the_key(
    suite: Suite, ini: str, message: str
) -> None:
    suite.pytester.makeini(f"[pytest]\n{ini}\n")
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count(message) == 1, err
    assert "INTERNALERROR" not in result.stdout.str() + err


def test_bad_url_from_environment_names_the_variable(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEKURA_API_URL", "ftp://example")
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment variable CEKURA_API_URL='ftp://example' is not*"])


def test_command_line_beats_environment_beats_ini(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.pytester.makeini("[pytest]\ncekura_url = http://127.0.0.1:9/ini\n")
    suite.pytester.makepyfile(
        """
        def test_url(cekura_client):
            print("URL", cekura_client.base_url)
        """
    )
    monkeypatch.setenv("CEKURA_API_URL", "http://127.0.0.1:9/env")
    suite.run("-s", "--cekura-url=http://127.0.0.1:9/cli").stdout.fnmatch_lines(["*URL */cli"])
    suite.run("-s").stdout.fnmatch_lines(["*URL */env"])
    monkeypatch.delenv("CEKURA_API_URL")
    suite.run("-s").stdout.fnmatch_lines(["*URL */ini"])


def test_bad_catalogue_is_one_error(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEKURA_API_KEY")
    suite.pytester.makefile(".toml", catalogue='[[scenario]]\nid = 30\noutcome = "maybe"\n')
    suite.pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cekura_scenario(30)
        def test_a(): pass

        @pytest.mark.cekura_scenario(31)
        def test_b(): pass
        """
    )
    result = suite.run("--cekura-emulator", "--cekura-emulator-catalogue=catalogue.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count("catalogue.toml") >= 1
    assert err.count("'maybe'") == 1
    assert "field 'outcome' has invalid value 'maybe'; allowed: pass, fail, error, " in err


def test_help_groups_every_option_under_cekura(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    section = out.split("Cekura voice-agent scenarios:")[1].split("\n\n")[0]
    for flag in ("--cekura-url", "--cekura-agent", "--cekura-dry-run", "--cekura-emulator"):
        assert flag in section
    result.stdout.fnmatch_lines(["*cekura_preflight (bool):*", "*cekura_timeout (string):*"])


def test_bad_catalogue_is_reported_even_without_cekura_tests(suite: Suite) -> None:
    suite.pytester.makefile(".toml", catalogue='[[scenario]]\nid = "thirty"\n')
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run("--cekura-emulator", "--cekura-emulator-catalogue=catalogue.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'thirty'" in result.stderr.str()
