"""Deterministic, plausible call content for emulated runs: transcripts, metrics, outcomes.

Everything here is a pure function of the scenario, the run id and the verdict, so a run
shows the same transcript on every read and tests can assert on it. Nothing is stored.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # annotations only: the catalogue imports the fault rules, which need the state
    from pytest_cekura.emulator.catalogue import ScenarioEntry, TestProfileEntry
    from pytest_cekura.emulator.entries import MetricEntry


Verdict = Literal["pass", "fail"]

MAIN_AGENT = "Main Agent"
TESTING_AGENT = "Testing Agent"

INSTRUCTION_FOLLOWING_ID = 2
LATENCY_ID = 55
DEFAULT_PERSONALITY_ID = 1


def unit_hash(*parts: object) -> float:
    """Map ``parts`` to a stable number in [0, 1) (sha256, so it is the same on every host)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def flaky_passes(scenario_id: int, attempt: int, success_probability: float) -> bool:
    """The documented rule: ``sha256(f"{scenario_id}:{attempt}")`` mapped to [0, 1) < p.

    ``attempt`` counts the scenario's runs from 0 since the emulator started (or was reset).
    """
    return unit_hash(scenario_id, attempt) < success_probability


def format_duration(seconds: float) -> str:
    """Cekura's ``duration`` format, ``"MM:SS"`` (minutes may exceed 59 for long calls)."""
    total = max(0, round(seconds))
    return f"{total // 60:02d}:{total % 60:02d}"


def transcript_object(
    scenario: ScenarioEntry,
    run_id: int,
    profile: TestProfileEntry | None,
    verdict: Verdict,
) -> list[dict[str, Any]]:
    """4-8 alternating lines, timestamps spread over the scenario's emulated duration."""
    lines = _script(scenario, run_id, profile, verdict)
    count = len(lines)
    return [
        {
            "role": role,
            "content": text,
            # The spec's RunListTranscriptObject requires these two as well.
            "normalized_content": text,
            "comparison_spans": [],
            "timestamp": round(scenario.duration_s * (index + 0.5) / count, 1),
        }
        for index, (role, text) in enumerate(lines)
    ]


def transcript_text(lines: list[dict[str, Any]]) -> str:
    return "\n".join(f"{line['role']}: {line['content']}" for line in lines)


def _script(
    scenario: ScenarioEntry,
    run_id: int,
    profile: TestProfileEntry | None,
    verdict: Verdict,
) -> list[tuple[str, str]]:
    topic = scenario.name[:1].lower() + scenario.name[1:]
    caller = _caller_name(profile)
    opening = [
        (MAIN_AGENT, "Thank you for calling, this is Ava. How can I help you today?"),
        (TESTING_AGENT, f"Hi, I'm calling about {topic}."),
    ]
    middle = [
        (MAIN_AGENT, "I can help with that. Could I have your full name, please?"),
        (TESTING_AGENT, f"Sure, it's {caller}."),
        (MAIN_AGENT, f"Thanks, {caller.split()[0]}. Let me pull up your account."),
        (TESTING_AGENT, "Okay, take your time."),
    ]
    if verdict == "pass":
        closing = [
            (MAIN_AGENT, f"All done: {topic} is sorted, and I've sent you a confirmation."),
            (TESTING_AGENT, "Great, thank you. Goodbye!"),
        ]
    else:
        closing = [
            (MAIN_AGENT, "I'm afraid I can't do anything more about that today. Goodbye."),
            (TESTING_AGENT, "Wait, you haven't confirmed anything yet..."),
        ]
    # 4-8 lines, alternating speakers: pairs of middle lines plus an optional sign-off.
    extra = int(unit_hash("transcript", scenario.id, run_id) * 5)
    sign_off = [(MAIN_AGENT, "Thank you for calling. Have a good day.")] if extra % 2 else []
    return opening + middle[: 2 * (extra // 2)] + closing + sign_off


def _caller_name(profile: TestProfileEntry | None) -> str:
    if profile is not None:
        name = profile.information.get("customer_name")
        if isinstance(name, str) and name.strip():
            return name.strip()
    return "Alex Morgan"


def personality_name(personality_id: int) -> str:
    if personality_id == DEFAULT_PERSONALITY_ID:
        return "Normal caller"
    return f"Personality {personality_id}"


def scenario_instructions(scenario: ScenarioEntry) -> str:
    """What the simulated caller is told to do (the scenario's ``instructions``)."""
    topic = scenario.name[:1].lower() + scenario.name[1:]
    return (
        f"You are calling about {topic}. Give your full name when asked, and do not hang up "
        "until the agent has confirmed the result."
    )


def expected_outcome_prompt(scenario: ScenarioEntry) -> str:
    return (
        f'The agent resolves the caller\'s request ("{scenario.name}") and confirms '
        "the result before ending the call."
    )


def expected_outcome(scenario: ScenarioEntry, verdict: Verdict) -> dict[str, Any]:
    aligned = verdict == "pass"
    if aligned:
        explanation = [
            f'✅ Agent resolved "{scenario.name}" and confirmed the result to the caller',
            "✅ Agent ended the call politely",
        ]
    else:
        explanation = [
            f'❌ Agent did not confirm the resolution of "{scenario.name}" before ending the call',
        ]
    return {
        "score": 100 if aligned else 0,
        "explanation": explanation,
        "outcome_alignments": [
            {
                "outcome": f'"{scenario.name}" resolved and confirmed',
                "prompt_part": "confirms the result before ending the call",
                "aligned": aligned,
            }
        ],
    }


def metrics(scenario: ScenarioEntry, run_id: int, verdict: Verdict) -> list[dict[str, Any]]:
    """The built-in metrics, then the catalogue's (``metrics = [...]``); one of the catalogue's
    with a built-in's name takes its place."""
    own = [
        _catalogue_metric(metric, scenario, run_id, n) for n, metric in enumerate(scenario.metrics)
    ]
    names = {metric["name"] for metric in own}
    builtin = [_instruction_following(scenario, verdict), _latency(scenario, run_id)]
    return [metric for metric in builtin if metric["name"] not in names] + own


#: Ids of the catalogue's metrics that give none: 1000 + their position in the scenario.
CATALOGUE_METRIC_ID = 1000


def _catalogue_metric(
    metric: MetricEntry, scenario: ScenarioEntry, run_id: int, position: int
) -> dict[str, Any]:
    draw = unit_hash("metric", metric.name, scenario.id, run_id)
    ident = metric.id if metric.id is not None else CATALOGUE_METRIC_ID + position
    common = {"id": ident, "name": metric.name, "extra": {}}
    if metric.kind == "binary":
        score = 100 if draw < metric.pass_probability else 0
        verb = "met" if score else "did not meet"
        return {
            **common,
            "type": "binary_qualitative",
            "score": score,
            "value": str(score),
            "enum": "",
            "explanation": [f"The agent {verb} {metric.name!r}."],
        }
    if metric.kind == "enum":
        chosen = metric.values[min(int(draw * len(metric.values)), len(metric.values) - 1)]
        return {
            **common,
            "type": "enum",
            "score": metric.values.index(chosen),
            "value": chosen,
            "enum": chosen,
            "explanation": [f"{metric.name}: {chosen}."],
        }
    # Numeric, e.g. a latency: the call's score (its p50) and its own within-call percentiles.
    raw = round(metric.low + (metric.high - metric.low) * draw, 1)
    number: float = int(raw) if raw.is_integer() else raw
    return {
        **common,
        "type": "numeric",
        "score": number,
        "value": str(number),
        "enum": "",
        "explanation": [f"{metric.name}: {number}"],
        "extra": {
            "percentiles": {
                "p50": number,
                "p90": round(number * 1.3, 1),
                "p95": round(number * 1.5, 1),
            }
        },
    }


def _instruction_following(scenario: ScenarioEntry, verdict: Verdict) -> dict[str, Any]:
    passed = verdict == "pass"
    explanation = (
        f'Agent followed the workflow for "{scenario.name}".'
        if passed
        else f'Agent skipped the confirmation step of the "{scenario.name}" workflow.'
    )
    score = 100 if passed else 0
    # Every key the spec's CallLogListSerializerMetricsWithExplanation requires is present:
    # ``explanation`` a list of strings, ``value`` a string, ``enum`` only meaningful for
    # enum metrics ("" otherwise).
    return {
        "id": INSTRUCTION_FOLLOWING_ID,
        "name": "Instruction Following",
        "type": "binary_workflow_adherence",
        "score": score,
        "value": str(score),
        "enum": "",
        "explanation": [explanation],
        "extra": {},
    }


def _latency(scenario: ScenarioEntry, run_id: int) -> dict[str, Any]:
    p50 = 600 + int(unit_hash("latency", scenario.id, run_id) * 600)
    return {
        "id": LATENCY_ID,
        "name": "Latency",
        "type": "numeric",
        "score": p50,
        "value": str(p50),
        "enum": "",
        "explanation": [f"p50 response latency {p50} ms (threshold 1500 ms)"],
        "extra": {"percentiles": {"p50": p50, "p90": p50 + 400}},
    }
