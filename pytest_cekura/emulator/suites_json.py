"""Tests as Code (cekura-api.md 10.3): ``run_scenarios_json``, ``validate_scenarios_json``,
``json_schema``.

A bad request is one 400 listing every problem at once, keyed by location in the document
(``scenarios[1].metrics[0]``) or the body (``agent_id``, ``channel``). A valid one is priced
(``Pricing``) and, unless ``?dry_run=true`` or ``validate_scenarios_json``, started: each case
becomes a scenario of its own, whose id is derived from the case key, so the same case gets
the same scenario in every session; its runs play as the catalogue's ``[[case]]`` table with
that key (or the case's name) says, and pass by default. ``scenario_name`` on a run is the
case's name, which is how a client maps runs back to cases.

Price, in credits, per run: ``per_minute`` (5) x ``max_duration`` in minutes (the case's,
else the defaults', else ``default_max_duration_s`` = 180 s) for call channels, or
``text_per_run`` (1) on the ``text`` channel; plus ``per_metric`` (0.2) per metric. A case
costs its runs (case frequency x request frequency) times that. The catalogue's
``[pricing]`` table overrides any of the four numbers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from pytest_cekura import suite_document
from pytest_cekura.emulator.catalogue import Catalogue, ScenarioEntry
from pytest_cekura.emulator.queries import Errors, bool_param
from pytest_cekura.emulator.records import NewResult, ScenarioItem
from pytest_cekura.emulator.state import Store
from pytest_cekura.emulator.validation import _livekit_data
from pytest_cekura.emulator.wire import Request, Response, json_response

CHANNELS = ("voice", "text", "elevenlabs", "livekit_v2", "pipecat_v2", "chirp")
#: Metrics every agent has when the catalogue lists none (``[[metric]]``): slug to id.
BUILTIN_METRICS = {
    "expected_outcome": 501,
    "greeting_by_name": 502,
    "instruction_following": 503,
    "latency": 504,
    "interruptions": 505,
}
#: First scenario id of the ones made for cases; a case's id is this plus a hash of its key.
CASE_SCENARIO_BASE = 800_000_000


@dataclass(frozen=True)
class Pricing:
    per_minute: float = 5.0
    text_per_run: float = 1.0
    per_metric: float = 0.2
    default_max_duration_s: float = 180.0

    @classmethod
    def of(cls, catalogue: Catalogue) -> Pricing:
        return replace(cls(), **dict(catalogue.pricing))

    def per_run(self, channel: str, max_duration_s: float, metrics: int) -> float:
        call = self.text_per_run if channel == "text" else self.per_minute * max_duration_s / 60
        return call + self.per_metric * metrics


def case_scenario_id(key: str) -> int:
    """The scenario id of a case: stable across sessions, from its key."""
    return CASE_SCENARIO_BASE + zlib.crc32(key.encode("utf-8")) % 100_000_000


@dataclass(frozen=True)
class PlannedCase:
    key: str
    name: str
    type: str
    runs: int
    metric_ids: list[int]
    tags: list[str]
    personality: dict[str, Any]
    test_profile: dict[str, Any]
    cost: float


@dataclass(frozen=True)
class Upload:
    agent_id: int
    channel: str
    name: str | None
    frequency: int
    document: suite_document.SuiteDocument
    cases: list[PlannedCase]
    body: dict[str, Any]

    @property
    def estimated_cost(self) -> float:
        return round(sum(case.cost for case in self.cases), 2)


class InvalidSuiteError(Exception):
    def __init__(self, errors: Errors) -> None:
        super().__init__(errors)
        self.errors = errors


def _metrics(catalogue: Catalogue) -> dict[str, int]:
    return dict(catalogue.metrics) if catalogue.metrics is not None else dict(BUILTIN_METRICS)


def parse_upload(body: Any, catalogue: Catalogue) -> Upload:
    """The validated request, or ``InvalidSuiteError`` with every problem by location."""
    errors: Errors = {}
    if not isinstance(body, dict):
        raise InvalidSuiteError({"non_field_errors": ["Send a JSON object."]})
    agent_id = body.get("agent_id")
    if agent_id is None:
        errors["agent_id"] = ["This field is required."]
    elif isinstance(agent_id, bool) or not isinstance(agent_id, int):
        errors["agent_id"] = ["A valid integer is required."]
    elif not catalogue.has_agent(agent_id):
        errors["agent_id"] = [f'Invalid pk "{agent_id}" - object does not exist.']
    channel = body.get("channel", "voice")
    if channel not in CHANNELS:
        errors["channel"] = [f'"{channel}" is not a valid choice.']
    frequency = body.get("frequency", 1)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or not 1 <= frequency <= 100:
        errors["frequency"] = ["Ensure this value is an integer from 1 to 100."]
        frequency = 1
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        errors["name"] = ["Not a valid string."]
    spec = body.get("spec")
    if spec is None:
        # The multipart ``file`` form is not emulated: the plugin sends ``spec``.
        errors["spec"] = ["This field is required (send the suite document as spec)."]
        raise InvalidSuiteError(errors)
    document = None
    try:
        document = suite_document.SuiteDocument.model_validate(spec)
    except ValidationError as failed:
        for where, messages in suite_document.problems(failed).items():
            errors.setdefault(where, []).extend(messages)
    if document is None:
        raise InvalidSuiteError(errors)
    known = _metrics(catalogue)
    pricing = Pricing.of(catalogue)
    cases = []
    default_ids = _metric_ids(document.defaults.metrics, known, "defaults.metrics", errors)
    for index, case in enumerate(document.scenarios):
        # Defaults apply field by field, but metric lists combine (10.3).
        own = _metric_ids(case.metrics, known, f"scenarios[{index}].metrics", errors)
        metric_ids = list(dict.fromkeys([*default_ids, *own]))
        runs = (case.frequency or document.defaults.frequency or 1) * frequency
        duration = case.max_duration or document.defaults.max_duration
        seconds = float(duration) if duration is not None else pricing.default_max_duration_s
        cost = runs * pricing.per_run(str(channel), seconds, len(metric_ids))
        cases.append(
            PlannedCase(
                key=case.case_key,
                name=case.name,
                type=case.type,
                runs=runs,
                metric_ids=metric_ids,
                tags=[*document.defaults.tags, *case.tags],
                personality=_personality(case.personality or document.defaults.personality),
                test_profile=_profile(case.test_profile or document.defaults.test_profile),
                cost=round(cost, 2),
            )
        )
    if errors:
        raise InvalidSuiteError(errors)
    assert isinstance(agent_id, int)
    return Upload(agent_id, str(channel), name, frequency, document, cases, body)


def _metric_ids(
    metrics: list[int | str], known: dict[str, int], where: str, errors: Errors
) -> list[int]:
    ids: list[int] = []
    for number, metric in enumerate(metrics):
        if isinstance(metric, int) and metric in known.values():
            ids.append(metric)
        elif isinstance(metric, str) and metric in known:
            ids.append(known[metric])
        else:
            errors.setdefault(f"{where}[{number}]", []).append(
                f"No metric with slug or id {metric!r} is enabled for this agent."
            )
    return list(dict.fromkeys(ids))


def _personality(value: Any) -> dict[str, Any]:
    if value is None:
        return {"mode": "default", "id": None, "name": None}
    if isinstance(value, int):
        return {"mode": "existing", "id": value, "name": f"Personality {value}"}
    if value.base is not None:
        return {"mode": "override", "id": value.base, "name": f"Personality {value.base}"}
    return {"mode": "inline", "id": None, "name": None}


def _profile(value: Any) -> dict[str, Any]:
    if value is None:
        return {"mode": "none", "sections": []}
    if isinstance(value, int):
        return {"mode": "existing", "sections": []}
    sections = [name for name in ("agent_variables", "caller_variables") if getattr(value, name)]
    return {"mode": "inline", "sections": sections}


def plan(upload: Upload, catalogue: Catalogue) -> dict[str, Any]:
    return {
        "agent_id": upload.agent_id,
        "project_id": catalogue.agent(upload.agent_id).project,
        "channel": upload.channel,
        "suite_name": upload.document.suite.name or upload.name,
        "scenario_count": len(upload.cases),
        "total_runs": sum(case.runs for case in upload.cases),
        "estimated_cost": upload.estimated_cost,
        "scenarios": [
            {
                "key": case.key,
                "name": case.name,
                "type": case.type,
                "frequency": case.runs,
                "metric_ids": case.metric_ids,
                "tags": case.tags,
                "personality": case.personality,
                "test_profile": case.test_profile,
                "estimated_cost": case.cost,
            }
            for case in upload.cases
        ],
    }


class SuiteJsonHandlers:
    """The three Tests-as-Code endpoints over one ``Store`` and ``Catalogue``."""

    def __init__(self, store: Store, catalogue: Catalogue) -> None:
        self._store = store
        self._catalogue = catalogue

    def _upload(self, request: Request) -> Upload | Response:
        body = request.json_body(default={})
        if isinstance(body, Response):
            return body
        try:
            return parse_upload(body, self._catalogue)
        except InvalidSuiteError as failed:
            return json_response(400, {"errors": failed.errors})

    def validate(self, request: Request, _: dict[str, str]) -> Response:
        upload = self._upload(request)
        if isinstance(upload, Response):
            return upload
        return json_response(200, {"valid": True, "plan": plan(upload, self._catalogue)})

    def run(self, request: Request, _: dict[str, str]) -> Response:
        errors: Errors = {}
        dry_run = bool_param(request, "dry_run", errors)
        if errors:
            return json_response(400, errors)
        upload = self._upload(request)
        if isinstance(upload, Response):
            return upload
        if dry_run:
            answer = {"dry_run": True, "valid": True, "plan": plan(upload, self._catalogue)}
            return json_response(200, answer)
        items: list[ScenarioItem] = []
        for case in upload.cases:
            scenario_id = self._register(case, upload.agent_id)
            # One item per run: cases may differ in frequency, a request has one.
            items.extend(
                ScenarioItem(scenario_id, {"case_key": case.key}) for _ in range(case.runs)
            )
        livekit_errors: Errors = {}
        livekit = _livekit_data(upload.body, livekit_errors)
        if livekit_errors:
            return json_response(400, livekit_errors)
        limit = upload.body.get("concurrency_limit") or upload.document.defaults.concurrency_limit
        new = NewResult(
            items=items,
            name=upload.name or upload.document.suite.name,
            agent=upload.agent_id,
            run_as_text=upload.channel == "text",
            concurrency_limit=limit if isinstance(limit, int) and limit > 0 else None,
            livekit_data=livekit,
        )
        return json_response(200, self._store.create_result(new))

    def json_schema(self, request: Request, _: dict[str, str]) -> Response:
        version = request.last("version") or "1"
        if version != "1":
            return json_response(400, {"version": [f'Unknown version "{version}"; use 1.']})
        return json_response(200, suite_document.json_schema())

    def _register(self, case: PlannedCase, agent: int) -> int:
        """The scenario the case's runs belong to, played as its ``[[case]]`` table says."""
        scenario_id = case_scenario_id(case.key)
        played = self._catalogue.cases.get(case.key) or self._catalogue.cases.get(case.name)
        base = played if played is not None else ScenarioEntry(scenario_id, case.name)
        entry = replace(base, id=scenario_id, name=case.name, agent=agent)
        self._catalogue.case_scenarios[scenario_id] = entry
        return scenario_id
