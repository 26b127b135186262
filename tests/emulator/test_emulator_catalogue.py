"""Catalogue loading: defaults, fallbacks, and one clear error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_cekura.emulator import (
    AgentEntry,
    Catalogue,
    CatalogueError,
    ScenarioEntry,
    TestProfileEntry,
    load_catalogue,
)
from pytest_cekura.errors import ConfigError

FULL = """
[[scenario]]
id = 31
name = "Billing dispute"
outcome = "fail"
duration_s = 120
agent = 4

[[scenario]]
id = 32
outcome = "flaky"
success_probability = 0.25

[[scenario]]
id = 33

[[scenario]]
id = 34
exists = false

[[agent]]
id = 42
name = "Pharmacy agent"
provider = "livekit"
livekit_url = "wss://pharmacy.livekit.cloud"
livekit_api_key = "APIxxxxxxxx"
livekit_api_secret = "secret-value"
livekit_agent_name = "pharmacy-agent"
livekit_config = { empty_timeout = 300 }

[[agent]]
id = 43
provider = "pipecat"

[[agent]]
id = 44
exists = false

[[test_profile]]
id = 7
name = "Jane"
information = { customer_name = "Jane Doe" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_full_catalogue_loads(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, FULL))
    assert catalogue.scenario(31) == ScenarioEntry(31, "Billing dispute", "fail", 120.0, None, 4)
    assert catalogue.scenario(32) == ScenarioEntry(32, "Scenario 32", "flaky", 30.0, 0.25, 1)
    assert catalogue.scenario(33) == ScenarioEntry(33, "Scenario 33")
    assert catalogue.scenario(34).exists is False
    assert (catalogue.has_scenario(33), catalogue.has_scenario(34)) == (True, False)
    assert catalogue.agent(42) == AgentEntry(
        42,
        "Pharmacy agent",
        "livekit",
        "wss://pharmacy.livekit.cloud",
        "APIxxxxxxxx",
        "secret-value",
        "pharmacy-agent",
        {"empty_timeout": 300},
    )
    # A listed agent has only the settings it lists: that is how tests model incomplete ones.
    assert catalogue.agent(43) == AgentEntry(43, "Agent 43", "pipecat")
    assert catalogue.agent(43).livekit_config == {}
    assert (catalogue.has_agent(43), catalogue.has_agent(44)) == (True, False)
    profile = catalogue.test_profile(7)
    assert profile.as_api_dict() == {
        "id": 7,
        "name": "Jane",
        "information": {"customer_name": "Jane Doe"},
    }
    assert catalogue.source == str(tmp_path / "catalogue.toml")


def test_unlisted_ids_fall_back_to_defaults() -> None:
    catalogue = Catalogue()
    assert catalogue.scenario(5) == ScenarioEntry(5, "Scenario 5", "pass", 30.0, None, 1)
    assert catalogue.test_profile(9) == TestProfileEntry(9, "Test profile 9", {})
    assert catalogue.agent(8) == AgentEntry(
        8,
        "Agent 8",
        "livekit",
        "wss://emulated.livekit.cloud",
        "APIemulated",
        "emulated-secret",
        "agent-8",
        {},
    )
    assert (catalogue.has_agent(8), catalogue.has_agent(0)) == (True, False)
    assert (catalogue.has_scenario(5), catalogue.has_scenario(0)) == (True, False)


def test_empty_file_is_an_empty_catalogue(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, "# nothing yet\n"))
    assert dict(catalogue.scenarios) == {}
    assert dict(catalogue.test_profiles) == {}
    assert dict(catalogue.agents) == {}


def test_error_is_a_config_error_and_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(tmp_path / "missing.toml")
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read the emulator catalogue")
    assert "No such file or directory" in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[scenario]]\nid = 31\nname = "unterminated\n')
    assert "TOML syntax error" in message
    assert "line 3" in message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[[scenarios]]\nid = 31\n")
    assert "unknown top-level table 'scenarios'" in message
    assert "did you mean 'scenario'?" in message
    allowed = (
        "[[scenario]], [[agent]], [[test_profile]], [[fault]], [[case]], [[metric]] and [pricing]"
    )
    assert f"allowed: {allowed}" in message


def test_single_table_instead_of_array(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[scenario]\nid = 31\n")
    assert "'scenario' must be an array of tables; write each entry as [[scenario]]" in message


def test_unknown_key_in_entry(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[scenario]]\nid = 31\noutcom = "fail"\n')
    assert "scenario[1] (id=31): unknown key 'outcom' (did you mean 'outcome'?)" in message
    assert (
        "allowed keys: id, name, outcome, duration_s, success_probability, agent, "
        "evaluation_delay_s, exists"
    ) in message


@pytest.mark.parametrize("value", ["0", "-3", '"31"', "true", "3.5"])
def test_id_must_be_a_positive_integer(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, f"[[scenario]]\nid = 30\n\n[[scenario]]\nid = {value}\n")
    assert "scenario[2]" in message
    assert "field 'id' has invalid value" in message
    assert "must be a positive integer" in message


@pytest.mark.parametrize("table", ["test_profile", "agent"])
def test_missing_id(tmp_path: Path, table: str) -> None:
    message = load_error(tmp_path, f'[[{table}]]\nname = "Jane"\n')
    assert f"{table}[1]: missing required field 'id'" in message


@pytest.mark.parametrize("table", ["scenario", "agent", "test_profile"])
def test_duplicate_id(tmp_path: Path, table: str) -> None:
    message = load_error(tmp_path, f"[[{table}]]\nid = 31\n\n[[{table}]]\nid = 31\n")
    assert f"{table}[2] (id=31): duplicate id 31, already used by {table}[1]" in message


def test_bad_outcome(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[scenario]]\nid = 31\noutcome = "maybe"\n')
    assert "scenario[1] (id=31): field 'outcome' has invalid value 'maybe'" in message
    assert "allowed: pass, fail, error, flaky, hang" in message


@pytest.mark.parametrize(
    ("value", "shown"),
    [("-1", "-1"), ('"2m"', "'2m'"), ("nan", "nan"), ("1e308", "1e+308"), ("inf", "inf")],
)
def test_bad_duration(tmp_path: Path, value: str, shown: str) -> None:
    message = load_error(tmp_path, f"[[scenario]]\nid = 31\nduration_s = {value}\n")
    assert f"scenario[1] (id=31): field 'duration_s' has invalid value {shown}" in message
    assert "must be a number of seconds from 0 to 2.592e+06" in message


@pytest.mark.parametrize("value", ["1e308", "3601", "-0.5"])
def test_huge_fault_delay_is_rejected_at_load(tmp_path: Path, value: str) -> None:
    """A delay_s the clock cannot wait (Event.wait(1e308) overflows) used to turn every
    matching request into a 500; it is now a clear error when the catalogue loads."""
    body = f'[[fault]]\nmatch = "bulk"\naction = "slow"\ndelay_s = {value}\n'
    message = load_error(tmp_path, body)
    assert "field 'delay_s' has invalid value" in message
    assert "must be a number of seconds from 0 to 3600" in message


def test_flaky_without_success_probability(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[scenario]]\nid = 31\noutcome = "flaky"\n')
    assert "scenario[1] (id=31): outcome \"flaky\" needs field 'success_probability'" in message
    assert "between 0 and 1" in message


@pytest.mark.parametrize("value", ["1.5", "-0.1", '"half"'])
def test_flaky_with_out_of_range_probability(tmp_path: Path, value: str) -> None:
    text = f'[[scenario]]\nid = 31\noutcome = "flaky"\nsuccess_probability = {value}\n'
    message = load_error(tmp_path, text)
    assert "field 'success_probability' has invalid value" in message
    assert "must be a number between 0 and 1" in message


def test_success_probability_on_non_flaky_outcome(tmp_path: Path) -> None:
    text = '[[scenario]]\nid = 31\noutcome = "pass"\nsuccess_probability = 0.5\n'
    message = load_error(tmp_path, text)
    assert "scenario[1] (id=31): field 'success_probability' has invalid value 0.5" in message
    assert "only allowed with outcome = \"flaky\" (outcome is 'pass')" in message


def test_information_must_be_a_table(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[test_profile]]\nid = 7\ninformation = "Jane"\n')
    assert "test_profile[1] (id=7): field 'information' has invalid value 'Jane'" in message


# ------------------------------------------------------------- exists and agents


@pytest.mark.parametrize("table", ["scenario", "agent"])
@pytest.mark.parametrize(("value", "shown"), [('"no"', "'no'"), ("0", "0")])
def test_exists_must_be_a_boolean(tmp_path: Path, table: str, value: str, shown: str) -> None:
    message = load_error(tmp_path, f"[[{table}]]\nid = 31\nexists = {value}\n")
    assert f"{table}[1] (id=31): field 'exists' has invalid value {shown}" in message
    assert "must be true or false (a TOML boolean, without quotes)" in message


def test_unknown_key_in_agent(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[agent]]\nid = 42\nlivekit_secret = "x"\n')
    assert "agent[1] (id=42): unknown key 'livekit_secret'" in message
    assert "(did you mean 'livekit_api_secret'?)" in message
    assert (
        "allowed keys: id, name, provider, livekit_url, livekit_api_key, livekit_api_secret, "
        "livekit_agent_name, livekit_config, livekit_credentials, project, exists"
    ) in message


def test_bad_provider(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[[agent]]\nid = 42\nprovider = "livekt"\n')
    assert "agent[1] (id=42): field 'provider' has invalid value 'livekt'" in message
    assert "allowed: livekit, pipecat, vapi, retell, elevenlabs, websocket, sip, email" in message
    assert "(did you mean 'livekit'?)" in message


@pytest.mark.parametrize("url", ["pharmacy.livekit.cloud", "ftp://pharmacy.livekit.cloud"])
def test_livekit_url_needs_a_livekit_scheme(tmp_path: Path, url: str) -> None:
    message = load_error(tmp_path, f'[[agent]]\nid = 42\nlivekit_url = "{url}"\n')
    assert f"agent[1] (id=42): field 'livekit_url' has invalid value '{url}'" in message
    assert "must start with wss://, ws://, https://, http://" in message


@pytest.mark.parametrize(
    "field", ["livekit_url", "livekit_api_key", "livekit_api_secret", "livekit_agent_name"]
)
@pytest.mark.parametrize(("value", "shown"), [('""', "''"), ("42", "42")])
def test_livekit_settings_are_non_empty_strings(
    tmp_path: Path, field: str, value: str, shown: str
) -> None:
    message = load_error(tmp_path, f"[[agent]]\nid = 42\n{field} = {value}\n")
    assert f"agent[1] (id=42): field '{field}' has invalid value {shown}" in message
    assert "must be a non-empty string, e.g. " in message
    assert f"leave {field} out to model a missing setting" in message


def test_livekit_config_must_be_a_table(tmp_path: Path) -> None:
    text = "[[agent]]\nid = 42\nlivekit_config = '{\"empty_timeout\": 300}'\n"
    message = load_error(tmp_path, text)
    assert "agent[1] (id=42): field 'livekit_config' has invalid value" in message
    assert "use an inline table, e.g. { empty_timeout = 300 }" in message


def test_scenario_of_a_deleted_agent(tmp_path: Path) -> None:
    text = "[[scenario]]\nid = 31\nagent = 7\n\n[[agent]]\nid = 7\nexists = false\n"
    message = load_error(tmp_path, text)
    assert "scenario[1] (id=31): field 'agent' has invalid value 7" in message
    assert "agent 7 has exists = false, so no scenario can belong to it" in message


def test_default_agent_cannot_be_deleted(tmp_path: Path) -> None:
    text = "[[agent]]\nid = 5\n\n[[agent]]\nid = 1\nexists = false\n"
    message = load_error(tmp_path, text)
    assert "agent[2] (id=1): field 'exists' has invalid value False" in message
    assert "agent 1 owns every scenario the catalogue does not list" in message
