"""Options are declared once (``Option`` attributes of ``Settings``): registration, the
precedence of their sources and the typed values they resolve to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_cekura.errors import ConfigError
from pytest_cekura.options import OPTIONS, Option, Settings, resolve
from pytest_cekura.secret import Secret


def settings(
    tmp_path: Path,
    cli: dict[str, Any] | None = None,
    ini: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Resolve from plain dicts keyed by flag (cli) and ini key (ini), as pytest would give."""
    given_cli, given_ini = cli or {}, ini or {}

    def ini_value(opt: Option[Any]) -> Any:
        return given_ini.get(opt.ini, (not opt.switch) if opt.switch is not None else None)

    return resolve(
        cli=lambda opt: given_cli.get(opt.flag),
        ini=ini_value,
        env=env or {},
        ini_dir=tmp_path,
    )


def test_every_option_has_its_own_flag_ini_key_and_attribute() -> None:
    assert len(OPTIONS) == 38
    for attribute in ("flag", "ini", "dest", "name"):
        values = [getattr(opt, attribute) for opt in OPTIONS]
        assert len(set(values)) == len(values), attribute
    assert all(
        opt.flag.startswith("--cekura-") and opt.ini.startswith("cekura_") for opt in OPTIONS
    )
    assert Settings.preflight.ini == "cekura_preflight"  # the flag turns it off
    assert Settings.preflight.dest == "cekura_no_preflight"


def test_defaults_are_typed_values(tmp_path: Path) -> None:
    resolved = settings(tmp_path)
    assert resolved.base_url == "https://api.cekura.ai"
    assert resolved.provider == "livekit"
    assert resolved.preflight is True
    assert resolved.dry_run is False
    assert resolved.timeout == 3600.0
    assert resolved.poll_interval == 5.0
    assert resolved.agent is None
    assert resolved.api_key is None
    assert resolved.livekit_data == {}


def test_the_emulator_changes_the_polling_defaults(tmp_path: Path) -> None:
    resolved = settings(tmp_path, cli={"--cekura-emulator": True})
    assert (resolved.emulator, resolved.poll_interval, resolved.timeout) == (True, 0.1, 60.0)


def test_command_line_then_environment_then_ini_then_default(tmp_path: Path) -> None:
    env = {"CEKURA_AGENT_ID": "2"}
    ini = {"cekura_agent": "3"}
    assert settings(tmp_path, cli={"--cekura-agent": "1"}, ini=ini, env=env).agent == 1
    assert settings(tmp_path, ini=ini, env=env).agent == 2
    assert settings(tmp_path, ini=ini).agent == 3
    assert settings(tmp_path).agent is None
    # A blank environment variable counts as unset.
    assert settings(tmp_path, ini=ini, env={"CEKURA_AGENT_ID": "  "}).agent == 3


def test_errors_name_the_source_the_value_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^environment variable CEKURA_AGENT_ID='x' is"):
        settings(tmp_path, ini={"cekura_agent": "3"}, env={"CEKURA_AGENT_ID": "x"})
    with pytest.raises(ConfigError, match=r"^ini key cekura_timeout='0' is invalid"):
        settings(tmp_path, ini={"cekura_timeout": "0"})


def test_ini_paths_are_relative_to_the_ini_file(tmp_path: Path) -> None:
    (tmp_path / "base.json").write_text("{}")
    resolved = settings(tmp_path, ini={"cekura_compare": "base.json"})
    assert resolved.compare_path == tmp_path / "base.json"


def test_livekit_options_make_the_sessions_livekit_data(tmp_path: Path) -> None:
    resolved = settings(
        tmp_path,
        cli={"--cekura-livekit-config": '{"locale": "de-DE"}'},
        env={"CEKURA_LIVEKIT_AGENT_NAME": "pr-17", "CEKURA_LIVEKIT_URL": "wss://lk.example"},
    )
    assert resolved.livekit_data == {
        "agent_name": "pr-17",
        "url": "wss://lk.example",
        "config": {"locale": "de-DE"},
    }
    assert resolved.marker_defaults().livekit_data == resolved.livekit_data


def test_settings_are_read_only_and_never_show_the_key(tmp_path: Path) -> None:
    resolved = settings(tmp_path, env={"CEKURA_API_KEY": "sk-not-shown-123"})
    assert resolved.api_key == Secret("sk-not-shown-123")
    with pytest.raises(AttributeError, match="read-only"):
        resolved.timeout = 1.0
    with pytest.raises(AttributeError, match="read-only"):
        resolved.api_key = None
    assert "sk-not-shown-123" not in repr(resolved)
    assert "timeout=3600.0" in repr(resolved)


def test_help_lists_every_option_and_the_choices_stay_ours(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert all(opt.flag in out for opt in OPTIONS)
    # choices= is on the command line, but a bad value still gets the message that names
    # its source (as for the environment and the ini file), not argparse's.
    assert Settings.order.choices == ("collection", "finish")
    bad = pytester.runpytest("--cekura-order=fastest")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(
        ["*--cekura-order='fastest' is invalid: use one of collection, finish"]
    )
    assert "invalid choice" not in bad.stderr.str()
