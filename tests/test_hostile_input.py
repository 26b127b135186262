"""Bad input found by a stranger's review of the session's new options: each is one message
naming the file or option and the fix, and nothing is paid for."""

from __future__ import annotations

from conftest import Suite


def test_a_bad_gate_in_a_toml_suite_points_at_its_line(suite: Suite) -> None:
    """Other bad values of a TOML entry were led by ``file:line:``; a bad gate was not,
    because its message names the key as ``gates['Latency']``."""
    suite.pytester.makefile(
        ".toml",
        cekura_smoke='[[test]]\nname = "quick"\nscenarios = [30]\n'
        'gates = { Latency = "p95 <= nope" }\n',
    )
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert (
        "\ncekura_smoke.toml:4: @pytest.mark.cekura_scenario: gates['Latency'] = "
        "'p95 <= nope' compares with 'nope', which is not a number; use "
    ) in result.stdout.str()
    assert suite.posts() == 0
