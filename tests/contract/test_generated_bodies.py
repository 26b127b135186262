"""Contract (c): generated request bodies. The emulator accepts the bodies the spec allows and
answers a DRF-shaped 400 (never a 500, never a crash) to the bodies it forbids.

Bodies are generated from the spec's request schemas by ``from_schema`` below (Hypothesis
strategies for the JSON Schema subset these request schemas use; hypothesis-jsonschema no longer
works with current Hypothesis). A schema
says nothing about which ids exist, so the generated "allowed" bodies are narrowed to model
what a well-formed request still needs on the live service (``narrow``): scenario and agent
ids that exist, positive ids, a scenario list to run (the emulator selects scenarios by id
only), ``agent_id`` on the id-list runners, non-blank required strings (DRF's CharField), a
websocket URL per websocket element, and small lists and frequencies to keep the runs few.
Forbidden bodies are allowed ones with one field broken in a way the spec rejects, checked
against the schema before they are sent. Example counts are bounded to keep this fast.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_cekura.emulator import Emulator
from pytest_cekura.emulator.catalogue import parse_catalogue

from .conftest import KEY
from .spec import Contract, contract

V2 = "/test_framework/v2"
SCENARIOS = [30, 31]
AGENTS = [42]
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: The runners whose bodies are generated, and the spec schema of each.
RUNNERS = {
    "run_scenarios_livekit_v2": "RunLivekitScenarios",
    "run_scenarios_pipecat_v2": "SchemaPostRunScenariosPipecatV2",
    "run_scenarios_pipecat": "SchemaPostRunScenariosPipecat",
    "run_scenarios_with_websockets": "RunScenariosWithWebsockets",
    "run_scenarios_text": "SchemaPostRunScenariosText",
    "run_scenarios_vapi_webrtc": "RunScenariosVapiWebRTCRequest",
    "run_scenarios_retell_webrtc": "RunScenariosRetellWebRTCRequest",
    "run_scenarios_elevenlabs": "SchemaPostRunScenariosElevenLabs",
    "run_scenarios_sip": "SchemaPostRunScenariosSip",
    "run_scenarios_chirp": "SchemaPostRunScenariosChirp",
    "run_scenarios_agora": "SchemaPostRunScenarios",
    "run_scenarios_email": "RunScenariosEmail",
}
ID_LIST_RUNNERS = {
    "run_scenarios_text",
    "run_scenarios_retell_webrtc",
    "run_scenarios_elevenlabs",
    "run_scenarios_sip",
    "run_scenarios_chirp",
    "run_scenarios_agora",
    "run_scenarios_email",
}
ID_FIELDS = ("personality_id", "test_profile_id", "project_id")
ID_LIST_FIELDS = ("personality_ids", "test_profile_ids")


JSON_SCALARS = st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=8)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema`` (enum, anyOf, type or type lists, min/max, min/maxItems,
    maxLength, properties/required; ``{}`` is any JSON). Optional properties are included or
    left out at random."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(
            {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        )
    kinds = schema.get("type")
    if kinds is None:
        return ANY_JSON
    if isinstance(kinds, list):
        return st.one_of([from_schema({**schema, "type": kind}) for kind in kinds])
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kinds == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kinds == "string":
        least = schema.get("minLength", 0)
        text = st.text(min_size=least, max_size=schema.get("maxLength", 40))
        # Cekura's serializers are DRF CharFields (trim_whitespace=True): "\r" is blank there,
        # so a body the schema allows is only well formed with `least` characters left.
        return text.filter(lambda value: len(value.strip()) >= least) if least else text
    if kinds == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(
            items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 3)
        )
    if kinds == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {name: from_schema(prop) for name, prop in properties.items() if name in required}
        optional = {
            name: from_schema(prop) for name, prop in properties.items() if name not in required
        }
        if not properties:
            return st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=3)
        return st.fixed_dictionaries(fields, optional=optional)
    raise AssertionError(f"schema type {kinds!r} is not generated")


def inline(spec: dict[str, Any], node: Any) -> Any:
    """``node`` with every ``$ref`` into the spec replaced by its target (no cycles here)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return inline(spec, {**target, **rest})
        return {k: inline(spec, v) for k, v in node.items() if k not in ("readOnly", "writeOnly")}
    if isinstance(node, list):
        return [inline(spec, item) for item in node]
    return node


def request_schema(spec: Contract, schema_name: str) -> dict[str, Any]:
    schema: dict[str, Any] = inline(spec.spec, spec.spec["components"]["schemas"][schema_name])
    return schema


def narrow(action: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The request schema, narrowed to bodies a well-formed request also satisfies."""
    narrowed = copy.deepcopy(schema)
    props = narrowed.setdefault("properties", {})
    required = set(narrowed.get("required", []))
    scenarios = props["scenarios"]
    scenarios.update(minItems=1, maxItems=3)
    item = scenarios["items"]
    if item.get("type") == "integer":
        scenarios["items"] = {"enum": SCENARIOS}
    else:
        item["properties"]["scenario"] = {"enum": SCENARIOS}
        # A websocket run needs a ws(s):// URL, a Pipecat v1 run a room (the emulator checks).
        urls = {
            "websocket_url": "wss://agent.example/ws",
            "pipecat_room_url": "https://a.daily.co/r",
        }
        for name, url in urls.items():
            if name in item["properties"]:
                item["properties"][name] = {"enum": [url]}
                item["required"] = sorted({*item.get("required", []), name})
    required.add("scenarios")
    if "frequency" in props:
        props["frequency"] = {"type": "integer", "minimum": 1, "maximum": 3}
    for name in ("agent", "agent_id"):
        if name in props:
            nullable = "null" in (props[name].get("type") or [])
            props[name] = {"enum": [*AGENTS, None] if nullable else AGENTS}
    if action in ID_LIST_RUNNERS:
        props["agent_id"] = {"enum": AGENTS}
        required.add("agent_id")
    for name in ID_FIELDS:
        if name in props:
            nullable = "null" in (props[name].get("type") or [])
            base = {"type": "integer", "minimum": 1, "maximum": 1000}
            props[name] = {"anyOf": [base, {"type": "null"}]} if nullable else base
    for name in ID_LIST_FIELDS:
        if name in props:
            ids: dict[str, Any] = {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 50},
            }
            ids["maxItems"] = 2
            props[name] = {"anyOf": [ids, {"type": "null"}]}
    if "concurrency_limit" in props:
        nullable = "null" in (props["concurrency_limit"].get("type") or [])
        limit = {"type": "integer", "minimum": 1, "maximum": 5}
        props["concurrency_limit"] = {"anyOf": [limit, {"type": "null"}]} if nullable else limit
    if "vapi_assistant_id" in props:
        props["vapi_assistant_id"] = {"type": "string", "minLength": 1, "maxLength": 20}
    for value in props.values():
        if value.get("type") == "string" and "enum" not in value:
            value.setdefault("maxLength", 40)
        if value.get("type") == "array":
            value.setdefault("maxItems", 3)
    narrowed["required"] = sorted(required)
    return narrowed


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    catalogue = parse_catalogue({"scenario": [{"id": s, "duration_s": 0} for s in SCENARIOS]})
    with (
        Emulator(catalogue, time_scale=0, strict=True) as emulator,
        httpx.Client(base_url=emulator.url, headers={"X-CEKURA-API-KEY": KEY}) as client,
    ):
        yield client


def post(api: httpx.Client, action: str, body: Any) -> httpx.Response:
    return api.post(f"{V2}/scenarios/{action}/", json=body)


def is_drf_error(payload: Any) -> bool:
    """DRF's 400: an object of field -> list of messages (nested for list/object fields)."""

    def messages(value: Any) -> bool:
        if isinstance(value, str):
            return True
        if isinstance(value, list):
            return all(messages(v) for v in value)
        if isinstance(value, dict):
            return all(messages(v) for v in value.values())
        return False

    return isinstance(payload, dict) and bool(payload) and messages(payload)


#: Ways to break a field of each JSON type so that both the spec and DRF reject it (no digit
#: strings for integers or numbers for strings: DRF accepts those).
BREAKERS: dict[str, list[Any]] = {
    "integer": ["abc", 1.5, True, [], {}],
    "array": ["x", 5, {"a": 1}],
    "object": [[], 5, "x"],
    "string": [[], {"a": 1}, True],
}


def broken_bodies(spec: Contract, schema_name: str, body: dict[str, Any]) -> Iterator[Any]:
    """``body`` with one field broken at a time; each one is invalid per the spec."""
    schema = spec.spec["components"]["schemas"][schema_name]
    pointer = f"/components/schemas/{schema_name}"
    yield [body]  # not an object at all
    for name in schema.get("required", []):
        yield {k: v for k, v in body.items() if k != name}
    for name, prop in schema.get("properties", {}).items():
        kinds = prop.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        for kind in kinds:
            for bad in BREAKERS.get(kind, []):
                mutated = {**body, name: bad}
                if spec.schema_errors(pointer, mutated, "request"):
                    yield mutated
                    break


@pytest.mark.parametrize("action", sorted(RUNNERS))
def test_allowed_bodies_are_accepted(api: httpx.Client, action: str) -> None:
    spec = contract()
    schema = narrow(action, request_schema(spec, RUNNERS[action]))

    @EXAMPLES
    @given(from_schema(schema))
    def check(body: dict[str, Any]) -> None:
        pointer = f"/components/schemas/{RUNNERS[action]}"
        assert spec.schema_errors(pointer, body, "request") == []  # the spec allows it
        response = post(api, action, body)
        assert response.status_code in (200, 201), (json.dumps(body), response.text)

    check()


@pytest.mark.parametrize("action", sorted(RUNNERS))
def test_forbidden_bodies_get_a_drf_400(api: httpx.Client, action: str) -> None:
    spec = contract()
    schema = narrow(action, request_schema(spec, RUNNERS[action]))

    @EXAMPLES
    @given(from_schema(schema), st.data())
    def check(body: dict[str, Any], data: st.DataObject) -> None:
        candidates = list(broken_bodies(spec, RUNNERS[action], body))
        bad = data.draw(st.sampled_from(candidates))
        response = post(api, action, bad)
        assert response.status_code == 400, (json.dumps(bad), response.text)
        assert is_drf_error(response.json()), response.text

    check()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"scenarios": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b"\xff\xfe",
        b'{"scenarios": [{"scenario": 30}',
        b"nan",
    ],
    ids=["deep-array", "deep-scenarios", "not-utf8", "truncated", "bare-nan"],
)
def test_unparseable_bodies_get_a_400_not_a_500(api: httpx.Client, raw: bytes) -> None:
    response = api.post(
        f"{V2}/scenarios/run_scenarios_livekit_v2/",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "JSON parse error" in response.json()["detail"]
