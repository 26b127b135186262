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
    result.stdout.fnmatch_lines([f"*@pytest.mark.cekura_scenario: {message}*"])
    assert "Traceback" not in result.stdout.str()
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
            "use only the fields {result_id} and {run_id}",
        ),
        (["--cekura-emulator-catalogue=missing.toml"], "'missing.toml': no such file"),
        (["--cekura-order=fastest"], "use one of collection, finish"),
    ],
)
def test_bad_setting_is_one_usage_error(suite: Suite, args: list[str], message: str) -> None:
    suite.pytester.makepyfile("def test_plain(): pass")
    result = suite.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().count(message) == 1


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
