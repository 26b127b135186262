"""HTTP front end of the Cekura emulator: routing, auth, request log, and ``Emulator``.

Why the standard library's ``ThreadingHTTPServer``: the emulator ships inside the plugin, so
it must not add dependencies to users' test environments. A thread per connection serves
several concurrent pollers at once, HTTP/1.1 keep-alive (``protocol_version`` plus an exact
``Content-Length`` on every answer) lets clients reuse connections, and ``daemon_threads``
means an idle kept-alive connection can never block interpreter exit. Answers are built in
memory from a few small records, so even a bulk GET of 100 run ids takes a few milliseconds.

Faults (``faults.py``) are applied here, around the real handler: ``error_before``,
``drop_before`` and ``rate_limit`` answer instead of it, ``error_after``, ``drop_after`` and
``malformed_json`` run it and then spoil its answer, so a client's ambiguous failures leave real
runs behind, exactly as on Cekura. Dropping a connection is the socket layer's job
(``_Handler._drop``); ``_Api`` only says how.

Paths are matched with and without a trailing slash and under both prefixes Cekura uses
(``scenarios``/``scenarios-external``, ``results``/``results-external``,
``runs``/``runs-external``), because clients in the wild use every variant. Agents are served
under ``/test_framework/v1/aiagents/`` (the docs) and ``/test_framework/v2/aiagents/`` (the
official SDK).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from pytest_cekura.emulator import dashboard, faults, objects
from pytest_cekura.emulator.catalogue import (
    Catalogue,
    CatalogueError,
    DropMode,
    FaultAction,
    FaultMatch,
    FaultRule,
    TestProfileEntry,
    parse_fault,
)
from pytest_cekura.emulator.state import (
    RequestRecord,
    ResultFilter,
    ResultPage,
    RunFilter,
    Store,
    SuccessRateFormat,
)
from pytest_cekura.emulator.validation import RUNNERS, InvalidRequestError, parse_new_result

API_KEY_HEADER = "X-CEKURA-API-KEY"
CONTROL_PREFIX = "/_emulator"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_V1 = "/test_framework/v1"
_V2 = "/test_framework/v2"
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_MAX_LINE = 65537
#: Content-Length a ``drop_before`` partial answer announces; none of its body is sent.
_PARTIAL_PLACEHOLDER_LENGTH = 1024


@dataclass(frozen=True)
class _Request:
    method: str
    path: str  # as sent, without the query string
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def last(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)
    #: Set: send nothing (or half a header block) and hang up this way instead of answering.
    drop: DropMode | None = None


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, _JSON, headers or {})


def _detail(status: int, message: str) -> _Response:
    return _json(status, {"detail": message})


_NOT_FOUND = "Not found."
_INVALID_PAGE = "Invalid page."

Handler = Callable[[_Request, dict[str, str]], _Response]


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    kind: str | None = None  # what a fault's ``match`` calls it; None: faults never apply


_DROPPED = 0  # the status logged for a request whose connection was dropped unanswered


class _Api:
    """Turns one request into one response; independent of the socket layer."""

    def __init__(
        self, store: Store, catalogue: Catalogue, api_key: str, *, strict: bool = False
    ) -> None:
        self._store = store
        self._catalogue = catalogue
        #: Reject what the live service rejects, even forms the official CLI sends (--strict).
        self.strict = strict
        self._api_key = api_key.encode("utf-8")
        self._routes = self._cekura_routes()
        self._control_routes = self._emulator_routes()
        self._faults = faults.FaultPlan(catalogue.faults)
        self._store.set_never_finish(self._faults.never_finish())
        # Changing the rules and the store's never_finish set is one step: two concurrent
        # changes must not leave the store with the set of the older one.
        self._faults_changing = threading.Lock()
        #: Set while the emulator stops, so a ``slow`` fault stops waiting at once.
        self.stopping = threading.Event()

    def __repr__(self) -> str:
        return "_Api(api_key=***)"

    def handle(self, request: _Request) -> _Response:
        path = request.path.rstrip("/") or "/"
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._dispatch(self._control_routes, request, path, authenticate=False)[0]
        response, fault = self._dispatch(self._routes, request, path, authenticate=True)
        query = {name: values[-1] for name, values in request.query.items()}
        status = _DROPPED if response.drop is not None else response.status
        record = RequestRecord(
            request.method, request.path, query, status, fault, _posted_json(request)
        )
        self._store.log_request(record)
        return response

    # ------------------------------------------------------------------ faults

    def add_faults(self, rules: Sequence[FaultRule], *, replace_all: bool = False) -> None:
        with self._faults_changing:
            if replace_all:
                self._faults.replace(rules)
            else:
                self._faults.add(rules)
            self._store.set_never_finish(self._faults.never_finish())

    def describe_faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def _with_faults(
        self, kind: str, handler: Handler, request: _Request, params: dict[str, str]
    ) -> tuple[_Response, str | None]:
        """Serve a routed, authenticated request, through the fault that applies to it."""
        rule = self._faults.take(kind)
        if rule is None:
            return handler(request, params), None
        action, label = rule.action, rule.label
        # Faults that answer instead of the server: nothing is created.
        if action in ("error_before", "rate_limit"):
            status, body, headers = faults.rejection(rule)
            return _json(status, body, headers), label
        if action == "drop_before":
            return _Response(_DROPPED, b"", drop=rule.drop_mode), label
        if action == "slow":
            # Real seconds on purpose: the fault is about the client's read timeout, which a
            # fake clock does not drive. Waiting on the stop event keeps stop() prompt.
            if self.stopping.wait(rule.delay_s or 0.0):
                return _Response(_DROPPED, b"", drop="close"), label
            return handler(request, params), label
        # Faults that spoil the answer after the work is done: the runs exist.
        response = handler(request, params)
        if action == "error_after":
            status, body, headers = faults.rejection(rule)
            return _json(status, body, headers), label
        if action == "drop_after":
            return replace(response, drop=rule.drop_mode), label
        if action == "malformed_json":
            return replace(response, body=faults.truncate(response.body)), label
        # The rest rewrite the runs of a successful answer; an error answer has none, so the
        # rule is not used up by it.
        if not 200 <= response.status < 300 or response.content_type != _JSON:
            self._faults.give_back(rule)
            return response, None
        payload = faults.rewrite_runs(rule, kind, json.loads(response.body))
        return _json(response.status, payload, response.headers), label

    # ---------------------------------------------------------------- plumbing

    def _dispatch(
        self, routes: list[_Route], request: _Request, path: str, *, authenticate: bool
    ) -> tuple[_Response, str | None]:
        """The answer, and the label of the fault that shaped it (None: no fault fired)."""
        for route in routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            # DRF order: authentication happens before the method check and the lookup.
            # Faults come after both: a rejected key or method is not a request the server
            # would have served, so it does not use up a rule meant for a real one.
            if authenticate and (denied := self._authenticate(request)) is not None:
                return denied, None
            handler = route.methods.get(request.method)
            if handler is None:
                allow = ", ".join(sorted(route.methods))
                message = f'Method "{request.method}" not allowed.'
                return _json(405, {"detail": message}, {"Allow": allow}), None
            if route.kind is None:
                return handler(request, match.groupdict()), None
            return self._with_faults(route.kind, handler, request, match.groupdict())
        return _detail(404, _NOT_FOUND), None

    def _authenticate(self, request: _Request) -> _Response | None:
        """The API key header, or (cekura-api.md 1, the SDK's OAuth login) ``Authorization:
        Bearer <token>`` instead of it; the emulator's one credential is its key."""
        given = request.headers.get(API_KEY_HEADER)
        if given:
            return self._check(given, "Invalid API key.")
        scheme, _, token = (request.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            if not token.strip():
                return _detail(401, "Invalid token header. No credentials provided.")
            return self._check(token.strip(), "Invalid token.")
        return _detail(401, "Authentication credentials were not provided.")

    def _check(self, given: str, wrong: str) -> _Response | None:
        # Constant-time comparison: the emulator may listen on a shared host.
        if not hmac.compare_digest(given.encode("utf-8"), self._api_key):
            return _detail(401, wrong)
        return None

    def _cekura_routes(self) -> list[_Route]:
        # v1 has the "-external" twins; v2 (the current paths of the spec) has not.
        scenarios = rf"(?:{_V1}/(?:scenarios|scenarios-external)|{_V2}/scenarios)"
        results = rf"(?:{_V1}/(?:results|results-external)|{_V2}/results)"
        runs = rf"(?:{_V1}/(?:runs|runs-external)|{_V2}/runs)"
        profiles = rf"{_V1}/(?:test-profiles|test-profiles-external)"
        actions = "|".join(re.escape(action) for action in RUNNERS)
        result = rf"{results}/(?P<result_id>\d+)"
        # The third element is the route's kind: the fault ``match`` value that selects it.
        table: list[tuple[str, dict[str, Handler], FaultMatch]] = [
            (rf"{scenarios}/(?P<action>{actions})", {"POST": self._create}, "start"),
            (scenarios, {"GET": self._list_scenarios}, "scenario"),
            (rf"{scenarios}/(?P<scenario_id>\d+)", {"GET": self._scenario}, "scenario"),
            (rf"{_V1}/aiagents/(?P<agent_id>\d+)", {"GET": self._agent}, "agent"),
            (rf"{_V2}/aiagents/(?P<agent_id>\d+)", {"GET": self._agent_v2}, "agent"),
            (profiles, {"GET": self._list_profiles}, "test_profile"),
            (rf"{profiles}/(?P<profile_id>\d+)", {"GET": self._profile}, "test_profile"),
            (results, {"GET": self._list_results}, "results"),
            (result, {"GET": self._result_detail}, "result"),
            # v1 and the contract's v2 path (cekura-api.md 10), which the client tries first.
            (rf"{result}/end_calls", {"POST": self._end_calls}, "end_call"),
            (rf"{result}/rerun", {"POST": self._rerun}, "rerun"),
            (rf"{result}/create_shareable_link_token", {"POST": self._share}, "result"),
            (rf"{runs}/bulk", {"GET": self._bulk}, "bulk"),
            (runs, {"GET": self._list_runs}, "run"),
            (rf"{runs}/(?P<run_id>\d+)", {"GET": self._run_detail}, "run"),
            (rf"{runs}/(?P<run_id>\d+)/end_call", {"POST": self._end_call}, "end_call"),
        ]
        return [_Route(re.compile(pattern), methods, kind) for pattern, methods, kind in table]

    def _emulator_routes(self) -> list[_Route]:
        table: list[tuple[str, dict[str, Handler]]] = [
            (rf"{CONTROL_PREFIX}/requests", {"GET": self._control_requests}),
            (rf"{CONTROL_PREFIX}/runs", {"GET": self._control_runs}),
            (rf"{CONTROL_PREFIX}/reset", {"POST": self._control_reset}),
            (
                rf"{CONTROL_PREFIX}/faults",
                {
                    "GET": self._control_faults,
                    "POST": self._control_add_faults,
                    "PUT": self._control_add_faults,
                    "DELETE": self._control_clear_faults,
                },
            ),
            (rf"{CONTROL_PREFIX}/dashboard/results/(?P<result_id>\d+)", {"GET": self._dashboard}),
        ]
        return [_Route(re.compile(pattern), methods) for pattern, methods in table]

    # ---------------------------------------------------------- Cekura endpoints

    def _create(self, request: _Request, params: dict[str, str]) -> _Response:
        body = _json_body(request, default={})
        if isinstance(body, _Response):
            return body
        runner = RUNNERS[params["action"]]
        try:
            new = parse_new_result(body, runner, self._catalogue, strict=self.strict)
        except InvalidRequestError as failed:
            return _json(400, failed.errors)
        # 200 as the spec answers (201 for the text and websocket runners).
        return _json(runner.created_status, self._store.create_result(new))

    def _scenario(self, _: _Request, params: dict[str, str]) -> _Response:
        scenario_id = int(params["scenario_id"])
        if not self._catalogue.has_scenario(scenario_id):
            return _detail(404, _NOT_FOUND)
        scenario = self._catalogue.scenario(scenario_id)
        return _json(200, objects.scenario_object(self._catalogue, scenario))

    def _list_scenarios(self, request: _Request, _: dict[str, str]) -> _Response:
        errors: dict[str, list[str]] = {}
        agent_id = _int_param(request, "agent_id", errors)
        project_id = _int_param(request, "project_id", errors)
        if errors:
            return _json(400, errors)
        # Only listed scenarios: the unlisted ones exist too, but there are infinitely many.
        listed = [
            s
            for _, s in sorted(self._catalogue.scenarios.items())
            if s.exists
            and (agent_id is None or s.agent == agent_id)
            and (project_id is None or self._catalogue.agent(s.agent).project == project_id)
        ]
        entries = [objects.scenario_object(self._catalogue, s, listed=True) for s in listed]
        return _paginated(request, entries)

    def _agent(self, _: _Request, params: dict[str, str]) -> _Response:
        agent_id = int(params["agent_id"])
        if not self._catalogue.has_agent(agent_id):
            return _detail(404, _NOT_FOUND)
        return _json(200, objects.agent_object(self._catalogue.agent(agent_id)))

    def _agent_v2(self, _: _Request, params: dict[str, str]) -> _Response:
        agent_id = int(params["agent_id"])
        if not self._catalogue.has_agent(agent_id):
            return _detail(404, _NOT_FOUND)
        return _json(200, objects.agent_object_v2(self._catalogue.agent(agent_id)))

    def _profile(self, _: _Request, params: dict[str, str]) -> _Response:
        profile_id = int(params["profile_id"])
        if profile_id <= 0:
            return _detail(404, _NOT_FOUND)
        # Like run requests, any positive id is a profile (a default one when not listed).
        return _json(200, _profile_object(self._catalogue.test_profile(profile_id)))

    def _list_profiles(self, _: _Request, __: dict[str, str]) -> _Response:
        # The spec answers a plain array here (AIAgentTestProfileList), not a page.
        listed = sorted(self._catalogue.test_profiles.items())
        return _json(200, [_profile_object(profile) for _, profile in listed])

    def _result_detail(self, _: _Request, params: dict[str, str]) -> _Response:
        result = self._store.result_detail(int(params["result_id"]))
        return _json(200, result) if result is not None else _detail(404, _NOT_FOUND)

    def _list_results(self, request: _Request, _: dict[str, str]) -> _Response:
        errors: dict[str, list[str]] = {}
        where = ResultFilter(
            agent_id=_int_param(request, "agent_id", errors),
            # Not a filter of the spec (it has "search"); kept for clients that send it.
            name=request.last("name"),
            scenario_ids=_id_set_param(request, "scenarios", errors),
            search=request.last("search") or None,
            project_id=_int_param(request, "project_id", errors),
        )
        return _stored_page(request, errors, partial(self._store.list_results, where))

    def _bulk(self, request: _Request, _: dict[str, str]) -> _Response:
        # The spec names the parameter run_ids, the official SDK sends ids: accept both.
        ids: list[int] = []
        for name in ("run_ids", "ids"):
            for value in request.query.get(name, []):
                if value.strip().startswith("["):
                    if self.strict:
                        # The live service answers 400 to a JSON array (cekura-api.md 10.1).
                        message = (
                            f"Send {name} comma-separated, e.g. {name}=90001,90002, "
                            "not as a JSON array."
                        )
                        return _json(400, {name: [message]})
                    value = value.strip().removeprefix("[").removesuffix("]")
                for token in (t.strip() for t in value.split(",")):
                    if not token:
                        continue
                    if not _is_digits(token):
                        message = (
                            f'"{token}" is not a valid run id; send comma-separated integers, '
                            f"e.g. {name}=90001,90002."
                        )
                        return _json(400, {name: [message]})
                    ids.append(int(token))
        if not ids:
            return _json(400, {"run_ids": ["This field is required."]})
        errors: dict[str, list[str]] = {}
        # v2's optional scope: only runs of this result / agent / project are answered.
        where = RunFilter(
            result_id=_int_param(request, "result_id", errors),
            run_agent_id=_int_param(request, "agent_id", errors),
            project_id=_int_param(request, "project_id", errors),
        )
        if errors:
            return _json(400, errors)
        unique = list(dict.fromkeys(ids))  # asked twice, answered once, first order kept
        return _json(200, self._store.runs(unique, where))

    def _list_runs(self, request: _Request, _: dict[str, str]) -> _Response:
        """``GET runs-external/``: full run objects, newest first, paginated, filtered."""
        errors: dict[str, list[str]] = {}
        result_id = _int_param(request, "result__id", errors)
        where = RunFilter(
            result_id=_int_param(request, "result_id", errors) or result_id,
            statuses=_statuses(request.last("status"), request.last("status__in")),
            success=_bool_param(request, "success", errors),
            scenario_ids=_id_set_param(request, "scenario__id__in", errors),
            created_from=_datetime_param(request, "timestamp__gte", errors),
            created_until=_datetime_param(request, "timestamp__lte", errors),
            agent_id=_int_param(request, "result__agent_id", errors),
            run_agent_id=_int_param(request, "agent_id", errors),
            run_as_text=_bool_param(request, "result__run_as_text", errors),
            run_ids=_id_set_param(request, "id__in", errors),
            project_id=_int_param(request, "project_id", errors),
        )
        return _stored_page(request, errors, partial(self._store.list_runs, where))

    def _run_detail(self, _: _Request, params: dict[str, str]) -> _Response:
        run = self._store.run(int(params["run_id"]))
        return _json(200, run) if run is not None else _detail(404, _NOT_FOUND)

    def _end_call(self, _: _Request, params: dict[str, str]) -> _Response:
        if not self._store.end_call(int(params["run_id"])):
            return _detail(404, _NOT_FOUND)
        return _Response(200, b"")  # the spec's 200 has no body

    def _rerun(self, request: _Request, params: dict[str, str]) -> _Response:
        body = _json_body(request, default={})
        if isinstance(body, _Response):
            return body
        # The spec's rerun takes no body and repeats every run of the result; strict mode
        # ignores run_ids as the live service does, the lenient emulator still honours them.
        run_ids = body.get("run_ids") if isinstance(body, dict) and not self.strict else None
        if run_ids is not None and (
            not isinstance(run_ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in run_ids)
        ):
            return _json(400, {"run_ids": ["Expected a list of run ids."]})
        try:
            created = self._store.rerun(int(params["result_id"]), run_ids)
        except KeyError as exc:
            return _json(400, {"run_ids": [f'Invalid pk "{exc.args[0]}" - not in this result.']})
        if created is None:
            return _detail(404, _NOT_FOUND)
        return _json(200, created)

    def _end_calls(self, _: _Request, params: dict[str, str]) -> _Response:
        if not self._store.end_calls(int(params["result_id"])):
            return _detail(404, _NOT_FOUND)
        return _Response(200, b"")  # the spec's 200 has no body

    def _share(self, request: _Request, params: dict[str, str]) -> _Response:
        """``create_shareable_link_token``: ``{"expire_at": datetime or null}`` in, a token
        and the public link out. The token is derived from the result id: nothing to store."""
        body = _json_body(request, default={})
        if isinstance(body, _Response):
            return body
        if not isinstance(body, dict):
            kind = type(body).__name__
            message = f"Invalid data. Expected a dictionary, but got {kind}."
            return _json(400, {"non_field_errors": [message]})
        expire_at = body.get("expire_at")
        if expire_at is not None and not _is_datetime(expire_at):
            return _json(400, {"expire_at": ["Datetime has wrong format."]})
        result_id = int(params["result_id"])
        if self._store.result_detail(result_id) is None:
            return _detail(404, _NOT_FOUND)
        token = f"emulated-share-{result_id}"
        link = f"https://dashboard.cekura.ai/share/results/{result_id}?token={token}"
        return _json(200, {"token": token, "shareable_link": link})

    # -------------------------------------------------------- control endpoints

    def _control_requests(self, _: _Request, __: dict[str, str]) -> _Response:
        return _json(200, [asdict(record) for record in self._store.requests()])

    def _control_runs(self, _: _Request, __: dict[str, str]) -> _Response:
        return _json(200, self._store.debug_runs())

    def _control_reset(self, _: _Request, __: dict[str, str]) -> _Response:
        self._store.reset()
        return _detail(200, "Emulator state cleared.")

    def _control_faults(self, _: _Request, __: dict[str, str]) -> _Response:
        return _json(200, self.describe_faults())

    def _control_add_faults(self, request: _Request, _: dict[str, str]) -> _Response:
        """POST adds the rules in the body (one object or a list), PUT replaces all with them."""
        where = f"{request.method} {CONTROL_PREFIX}/faults"
        body = _json_body(request, default=None, where=f"{where}: ")
        if isinstance(body, _Response):
            return body
        if body is None and request.method == "POST":
            example = '{"match": "start", "action": "error_after", "status": 500}'
            return _detail(400, f"{where}: send a fault rule as JSON, e.g. {example}")
        items = body if isinstance(body, list) else [] if body is None else [body]
        try:
            # All or nothing: one bad rule in a list installs none of them.
            rules = [
                parse_fault(raw, where=f"{where}: fault[{number}]")
                for number, raw in enumerate(items, start=1)
            ]
        except CatalogueError as exc:
            return _detail(400, str(exc))
        self.add_faults(rules, replace_all=request.method == "PUT")
        return _json(201 if request.method == "POST" else 200, self.describe_faults())

    def _control_clear_faults(self, _: _Request, __: dict[str, str]) -> _Response:
        self.add_faults([], replace_all=True)
        return _json(200, self.describe_faults())

    def _dashboard(self, _: _Request, params: dict[str, str]) -> _Response:
        result_id = int(params["result_id"])
        result = self._store.result_detail(result_id)
        if result is None:
            return _Response(404, dashboard.render_not_found(result_id).encode(), _HTML)
        return _Response(200, dashboard.render_result_page(result).encode(), _HTML)


def _json_body(request: _Request, *, default: Any, where: str = "") -> Any:
    """The request's JSON body (``default`` when empty), or the 400 answer to send instead.

    Nesting deeper than the parser's recursion limit is a 400 too, never a 500."""
    if not request.body.strip():
        return default
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _detail(400, f"{where}JSON parse error - {exc}")
    except RecursionError:
        return _detail(400, f"{where}JSON parse error - the body is nested too deeply.")


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _profile_object(profile: TestProfileEntry) -> dict[str, Any]:
    """A test profile as the spec's AIAgentTestProfile(List) shows it."""
    return {
        **profile.as_api_dict(),
        "agent": None,
        "project": None,
        "created_at": objects.CATALOGUE_CREATED_AT,
        "updated_at": objects.CATALOGUE_CREATED_AT,
    }


def _is_digits(text: str) -> bool:
    # str.isdigit() alone accepts "²" and other characters int() rejects.
    return text.isascii() and text.isdigit()


def _int_param(request: _Request, name: str, errors: dict[str, list[str]]) -> int | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    if not _is_digits(value.strip()):
        errors[name] = ["A valid integer is required."]
        return None
    return int(value)


def _id_set_param(
    request: _Request, name: str, errors: dict[str, list[str]]
) -> frozenset[int] | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    tokens = [t.strip() for t in value.split(",") if t.strip()]
    if not all(_is_digits(t) for t in tokens):
        errors[name] = [f"Enter comma-separated integer ids, e.g. {name}=31,32."]
        return None
    return frozenset(int(t) for t in tokens)


def _statuses(exact: str | None, listed: str | None) -> frozenset[str] | None:
    """``status`` and ``status__in`` together: a run must satisfy both when both are given."""
    chosen: frozenset[str] | None = None
    if exact is not None and exact.strip():
        chosen = frozenset({exact.strip().lower()})
    tokens = [token.strip().lower() for token in (listed or "").split(",") if token.strip()]
    if tokens:
        wanted = frozenset(tokens)
        chosen = wanted if chosen is None else chosen & wanted
    return chosen


_TRUE = ("true", "True", "1")
_FALSE = ("false", "False", "0")


def _bool_param(request: _Request, name: str, errors: dict[str, list[str]]) -> bool | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    if value.strip() in _TRUE:
        return True
    if value.strip() in _FALSE:
        return False
    errors[name] = ["Select a valid choice. Use true or false."]
    return None


def _datetime_param(request: _Request, name: str, errors: dict[str, list[str]]) -> datetime | None:
    value = request.last(name)
    if value is None or value.strip() == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        errors[name] = ["Enter a valid date/time."]
        return None
    # A naive time is UTC, Cekura's time zone in every timestamp it sends.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _page_number(value: str | None) -> int | None:
    if value is None:
        return 1
    return int(value) if _is_digits(value) and int(value) >= 1 else None


def _page_size(value: str | None) -> int:
    # DRF falls back to the default on a bad page_size and clamps to the maximum.
    if value is None or not _is_digits(value) or int(value) < 1:
        return DEFAULT_PAGE_SIZE
    return min(int(value), MAX_PAGE_SIZE)


def _paginated(request: _Request, items: Sequence[dict[str, Any]]) -> _Response:
    """One DRF page of ``items``; 404 "Invalid page." past the last page, as DRF answers."""
    page = _page_number(request.last("page"))
    size = _page_size(request.last("page_size"))
    last_page = max(1, -(-len(items) // size))
    if page is None or page > last_page:
        return _detail(404, _INVALID_PAGE)
    chosen = list(items[(page - 1) * size : page * size])
    return _json(200, _page_body(request, page, size, len(items), chosen))


def _stored_page(
    request: _Request,
    errors: dict[str, list[str]],
    fetch: Callable[[int, int], ResultPage | None],
) -> _Response:
    """A DRF-style page of what ``fetch(page, page_size)`` finds, or the query's errors."""
    if errors:
        return _json(400, errors)
    page = _page_number(request.last("page"))
    size = _page_size(request.last("page_size"))
    found = fetch(page, size) if page is not None else None
    if page is None or found is None:
        return _detail(404, _INVALID_PAGE)
    return _json(200, _page_body(request, page, size, found.count, found.items))


def _page_body(
    request: _Request, page: int, size: int, count: int, items: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "count": count,
        "next": _page_link(request, page + 1) if page * size < count else None,
        "previous": _page_link(request, page - 1) if page > 1 else None,
        "results": items,
    }


def _page_link(request: _Request, page: int) -> str:
    params = {name: values[-1] for name, values in request.query.items() if name != "page"}
    if page > 1:  # DRF drops the parameter for the first page
        params["page"] = str(page)
    host = request.headers.get("Host", "localhost")
    query = urlencode(params)
    return f"http://{host}{request.path}" + (f"?{query}" if query else "")


# --------------------------------------------------------------------- sockets


def _posted_json(request: _Request) -> Any:
    """A POST's JSON body for the request log; None when there is none or it does not parse."""
    if request.method != "POST" or not request.body.strip():
        return None
    try:
        return json.loads(request.body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; requires Content-Length on every answer
    # Headers and body go out as separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every request. Buffer the answer and send it at once.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the request log is the record."""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            message = "Unreadable request body: send a valid Content-Length (or chunked) body."
            self._send(_detail(400, message))
            return
        split = urlsplit(self.path)
        request = _Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.api.handle(request)
        except Exception:
            # A bug in the emulator must not look like a dropped connection to the client.
            traceback.print_exc(file=sys.stderr)
            response = _detail(500, "Internal emulator error; see the emulator's stderr.")
        if response.drop is not None:
            self._drop(response)
        else:
            self._send(response)

    def _drop(self, response: _Response) -> None:
        """Hang up without a complete answer, as a crashing server or proxy would.

        ``close`` sends FIN before any byte of an answer. ``partial`` sends a complete header
        block (the real answer's for ``drop_after``; a 200 whose body never comes for
        ``drop_before``, which did nothing) and only part of the body it announces, then FIN:
        the connection breaks mid-response, which every HTTP client reports (httpx
        RemoteProtocolError, curl exit 18, urllib IncompleteRead). Half a header block would
        not do: curl and Python's http.client end the headers at EOF and see an empty 200.
        ``reset`` sends RST (httpx ReadError). Nothing is raised here, so the server logs
        nothing and goes on serving.
        """
        mode = response.drop
        self.close_connection = True  # the stream is unusable for any further request
        if mode == "partial":
            if response.body:
                status, body, announced = response.status, response.body, len(response.body)
            else:
                status, body, announced = 200, b"", _PARTIAL_PLACEHOLDER_LENGTH
            self.send_response(status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(announced))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # always fewer bytes than announced
            self.wfile.flush()
        if mode == "reset":
            # A zero linger timeout makes close() send RST and discard unsent data; the
            # server must then close without shutdown(SHUT_WR) first, which would send a FIN
            # the client could read as a clean end of stream before the RST arrives.
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.server.reset_on_close(self.connection)
            return
        with contextlib.suppress(OSError):  # the client may have hung up already
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes | None:
        """The request body, or None if its framing is broken (the connection is then closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not _is_digits(length.strip()):
            self.close_connection = True  # the rest of the stream cannot be framed
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        # Clients streaming a body (e.g. httpx with an iterator) send no Content-Length.
        parts: list[bytes] = []
        while True:
            size_field = self.rfile.readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                self.close_connection = True
                return None
            if size == 0:
                while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailer fields
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE)  # the CRLF closing each chunk

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must never block exit
    #: The listen backlog: socketserver's default of 5 resets connections when a few hundred
    #: clients connect at once (a load test, or xdist workers polling together).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._resets: set[socket.socket] = set()  # dropped with RST: close without FIN
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def reset_on_close(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._resets.add(connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            self.close_request(request)  # no shutdown(SHUT_WR): see _Handler._drop
            return
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on kept-alive connections (used by stop())."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer (or stop() closing sockets) are normal, not errors.
        if isinstance(sys.exception(), ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def _shutdown_promptly(server: _Server) -> None:
    """``server.shutdown()`` without waiting out serve_forever's select() timeout.

    The serve loop only notices the shutdown flag when select() returns; a throwaway
    connection to the listening socket makes it return at once, which keeps test suites that
    start an emulator per test fast.
    """
    stopper = threading.Thread(target=server.shutdown, name="cekura-emulator-stop", daemon=True)
    stopper.start()
    host, port = server.server_address[:2]
    wake_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1"}.get(str(host), str(host))
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((wake_host, int(port)), timeout=0.2).close()
        stopper.join(0.01)


# -------------------------------------------------------------------- Emulator


class Emulator:
    """A local, in-memory Cekura API on a loopback port.

    ``with Emulator(catalogue, clock=fake_clock) as emulator:`` starts it on a free port;
    point a client at ``emulator.url`` with ``X-CEKURA-API-KEY: emulator-key``.
    """

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        *,
        api_key: str = "emulator-key",
        time_scale: float = 0.01,
        host: str = "127.0.0.1",
        port: int = 0,
        success_rate_format: Literal["percent", "fraction"] = "percent",
        clock: Callable[[], float] = time.monotonic,
        strict: bool = False,
    ) -> None:
        if time_scale < 0:
            raise ValueError(
                f"time_scale must be >= 0 (real seconds per emulated second), got {time_scale}"
            )
        if success_rate_format not in ("percent", "fraction"):
            raise ValueError(
                f"success_rate_format must be 'percent' or 'fraction', got {success_rate_format!r}"
            )
        self.catalogue = catalogue if catalogue is not None else Catalogue()
        self.time_scale = time_scale
        self.host = host
        self.port = port
        self.success_rate_format: SuccessRateFormat = success_rate_format
        self._store = Store(
            self.catalogue,
            time_scale=time_scale,
            success_rate_format=success_rate_format,
            clock=clock,
        )
        # The key lives only in _Api.
        self._api = _Api(self._store, self.catalogue, api_key, strict=strict)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"Emulator({where}, time_scale={self.time_scale})"

    @property
    def strict(self) -> bool:
        """Whether the emulator rejects what the live service rejects (see docs/emulator.md):
        bare ids on object-list runners, ``agent_id`` where the spec says ``agent``, JSON
        arrays for ``run_ids``; ``rerun`` ignores its body. Settable while running."""
        return self._api.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._api.strict = value

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(
                "Emulator.url is known only after start(); call start() or use "
                "`with Emulator(...) as emulator:`"
            )
        return self._url

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self. Starting twice is a no-op."""
        if self._server is not None:
            return self
        self._api.stopping.clear()
        server = _Server((self.host, self.port), self._api)
        self.port = server.server_address[1]
        self._url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name=f"cekura-emulator-{self.port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every socket; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        self._api.stopping.set()
        _shutdown_promptly(server)
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def requests(self) -> list[RequestRecord]:
        """Requests to Cekura paths so far (control paths under /_emulator/ are not logged)."""
        return self._store.requests()

    def count(self, method: str, path_contains: str = "") -> int:
        """How many logged requests used ``method`` on a path containing ``path_contains``."""
        method = method.upper()
        return sum(1 for r in self.requests if r.method == method and path_contains in r.path)

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Every run created, as the bulk endpoint shows it, plus LiveKit dispatch metadata.

        The extra keys, which Cekura's own run objects do not have: ``job_metadata`` and
        ``room_metadata`` (the JSON strings a LiveKit agent reads from ``ctx.job.metadata``
        and ``ctx.room.metadata``; a request's ``livekit_data.config`` replaces the agent's),
        ``livekit_agent_name`` (the dispatch name: the request's ``livekit_data.agent_name``,
        else the agent's, None when neither has one), ``livekit_url``, the request's
        ``concurrency_limit`` and ``publish_data_message`` (only when the request element had
        one).
        """
        return self._store.debug_runs()

    def reset(self) -> None:
        """Forget results, runs and logged requests; new ids continue where they left off.

        Faults stay installed (they are configuration, like the catalogue): clear_faults().
        """
        self._store.reset()

    def inject(
        self,
        match: FaultMatch,
        action: FaultAction,
        *,
        times: int | None = None,
        status: int | None = None,
        retry_after: str | float | None = None,
        retry_after_ms: int | None = None,
        delay_s: float | None = None,
        drop_mode: DropMode | None = None,
        status_value: str | None = None,
        omit: int | None = None,
        omit_ids: Sequence[int] | None = None,
        scenario_ids: Sequence[int] | None = None,
    ) -> FaultRule:
        """Install a fault rule after those already installed; returns it, defaults filled in.

        The arguments are the ``[[fault]]`` keys of the catalogue, with the same defaults and
        checks (``times`` 1, 0 = every matching request); raises ``CatalogueError`` (a
        ``ValueError``) naming the field and its allowed values. Takes effect for the next
        request, also while a session is running.
        """
        given = {
            "match": match,
            "action": action,
            "times": times,
            "status": status,
            "retry_after": retry_after,
            "retry_after_ms": retry_after_ms,
            "delay_s": delay_s,
            "drop_mode": drop_mode,
            "status_value": status_value,
            "omit": omit,
            "omit_ids": omit_ids,
            "scenario_ids": scenario_ids,
        }
        rule = parse_fault(
            {name: value for name, value in given.items() if value is not None},
            where="Emulator.inject",
        )
        self._api.add_faults([rule])
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule, those of the catalogue too (``never_finish`` runs then end
        as their clocks say)."""
        self._api.add_faults([], replace_all=True)

    @property
    def faults(self) -> list[dict[str, Any]]:
        """The installed rules in order, as ``GET /_emulator/faults`` lists them: the rule's
        fields plus ``fired`` (requests it applied to) and ``remaining`` (None = unlimited)."""
        return self._api.describe_faults()
