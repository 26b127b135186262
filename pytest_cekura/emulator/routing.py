"""Which handler answers a request: paths, authentication, methods, faults, the request log.

Paths are matched with and without a trailing slash and under both prefixes Cekura uses
(``scenarios``/``scenarios-external``, ``results``/``results-external``,
``runs``/``runs-external``), because clients in the wild use every variant. Agents are served
under ``/test_framework/v1/aiagents/`` (the docs) and ``/test_framework/v2/aiagents/`` (the
official SDK).

Faults are applied here, around the real handler: the rule that applies (``faults.py``) has
an action object (``fault_actions.py``) that answers instead of the handler, or calls it and
spoils its answer, so a client's ambiguous failures leave real runs behind, as on Cekura.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pytest_cekura.emulator import faults
from pytest_cekura.emulator.catalogue import Catalogue, FaultMatch
from pytest_cekura.emulator.handlers import CONTROL_PREFIX, CekuraHandlers, ControlHandlers
from pytest_cekura.emulator.runners import RUNNERS
from pytest_cekura.emulator.state import RequestRecord, Store
from pytest_cekura.emulator.suites_json import SuiteJsonHandlers
from pytest_cekura.emulator.wire import (
    DROPPED,
    NOT_FOUND,
    Request,
    Response,
    detail,
    json_response,
)

API_KEY_HEADER = "X-CEKURA-API-KEY"
_V1 = "/test_framework/v1"
_V2 = "/test_framework/v2"

Handler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    kind: str | None = None  # what a fault's ``match`` calls it; None: faults never apply


def cekura_routes(h: CekuraHandlers, suites: SuiteJsonHandlers | None = None) -> list[Route]:
    # v1 has the "-external" twins; v2 (the current paths of the spec) has not.
    scenarios = rf"(?:{_V1}/(?:scenarios|scenarios-external)|{_V2}/scenarios)"
    results = rf"(?:{_V1}/(?:results|results-external)|{_V2}/results)"
    runs = rf"(?:{_V1}/(?:runs|runs-external)|{_V2}/runs)"
    profiles = rf"{_V1}/(?:test-profiles|test-profiles-external)"
    actions = "|".join(re.escape(action) for action in RUNNERS)
    result = rf"{results}/(?P<result_id>\d+)"
    # The third element is the route's kind: the fault ``match`` value that selects it.
    table: list[tuple[str, dict[str, Handler], FaultMatch]] = [
        (rf"{scenarios}/(?P<action>{actions})", {"POST": h.create}, "start"),
        (scenarios, {"GET": h.list_scenarios}, "scenario"),
        (rf"{scenarios}/(?P<scenario_id>\d+)", {"GET": h.scenario}, "scenario"),
        (rf"{_V1}/aiagents/(?P<agent_id>\d+)", {"GET": h.agent}, "agent"),
        (rf"{_V2}/aiagents/(?P<agent_id>\d+)", {"GET": h.agent_v2}, "agent"),
        (profiles, {"GET": h.list_profiles}, "test_profile"),
        (rf"{profiles}/(?P<profile_id>\d+)", {"GET": h.profile}, "test_profile"),
        (results, {"GET": h.list_results}, "results"),
        (result, {"GET": h.result_detail}, "result"),
        # v1 and the contract's v2 path (cekura-api.md 10), which the client tries first.
        (rf"{result}/end_calls", {"POST": h.end_calls}, "end_call"),
        (rf"{result}/rerun", {"POST": h.rerun}, "rerun"),
        (rf"{result}/create_shareable_link_token", {"POST": h.share}, "result"),
        (rf"{runs}/bulk", {"GET": h.bulk}, "bulk"),
        (runs, {"GET": h.list_runs}, "run"),
        (rf"{runs}/(?P<run_id>\d+)", {"GET": h.run_detail}, "run"),
        (rf"{runs}/(?P<run_id>\d+)/end_call", {"POST": h.end_call}, "end_call"),
    ]
    if suites is not None:
        # Tests as Code (cekura-api.md 10.3): only run_scenarios_json may start runs, so
        # only it is a "start" for faults (a dry run through it too, as on the wire).
        table += [
            (rf"{scenarios}/run_scenarios_json", {"POST": suites.run}, "start"),
            (rf"{scenarios}/validate_scenarios_json", {"POST": suites.validate}, "scenario"),
            (rf"{scenarios}/json_schema", {"GET": suites.json_schema}, "scenario"),
        ]
    return [Route(re.compile(pattern), methods, kind) for pattern, methods, kind in table]


def control_routes(h: ControlHandlers) -> list[Route]:
    faults_methods: dict[str, Handler] = {
        "GET": h.faults,
        "POST": h.add_faults,
        "PUT": h.add_faults,
        "DELETE": h.clear_faults,
    }
    table: list[tuple[str, dict[str, Handler]]] = [
        (rf"{CONTROL_PREFIX}/requests", {"GET": h.requests}),
        (rf"{CONTROL_PREFIX}/runs", {"GET": h.runs}),
        (rf"{CONTROL_PREFIX}/reset", {"POST": h.reset}),
        (rf"{CONTROL_PREFIX}/faults", faults_methods),
        (rf"{CONTROL_PREFIX}/dashboard/results/(?P<result_id>\d+)", {"GET": h.dashboard}),
    ]
    return [Route(re.compile(pattern), methods) for pattern, methods in table]


class Api:
    """Turns one request into one response; independent of the socket layer."""

    def __init__(
        self, store: Store, catalogue: Catalogue, api_key: str, *, strict: bool = False
    ) -> None:
        self._store = store
        self._api_key = api_key.encode("utf-8")
        self.faults = faults.FaultPlan(catalogue.faults, on_change=store.set_never_finish)
        self.cekura = CekuraHandlers(store, catalogue, strict=strict)
        self._routes = cekura_routes(self.cekura, SuiteJsonHandlers(store, catalogue))
        self._control_routes = control_routes(ControlHandlers(store, self.faults))
        #: Set while the emulator stops, so a ``slow`` fault stops waiting at once.
        self.stopping = threading.Event()

    def __repr__(self) -> str:
        return "Api(api_key=***)"

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._dispatch(self._control_routes, request, path, authenticate=False)[0]
        response, fault = self._dispatch(self._routes, request, path, authenticate=True)
        query = {name: values[-1] for name, values in request.query.items()}
        status = DROPPED if response.drop is not None else response.status
        record = RequestRecord(
            request.method, request.path, query, status, fault, request.posted_json()
        )
        self._store.log_request(record)
        return response

    def _dispatch(
        self, routes: list[Route], request: Request, path: str, *, authenticate: bool
    ) -> tuple[Response, str | None]:
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
                return json_response(405, {"detail": message}, {"Allow": allow}), None
            if route.kind is None:
                return handler(request, match.groupdict()), None
            return self._with_faults(route.kind, handler, request, match.groupdict())
        return detail(404, NOT_FOUND), None

    def _with_faults(
        self, kind: str, handler: Handler, request: Request, params: dict[str, str]
    ) -> tuple[Response, str | None]:
        """Serve a routed, authenticated request, through the fault that applies to it."""
        rule = self.faults.take(kind)
        if rule is None:
            return handler(request, params), None
        response, fired = rule.effect.apply(lambda: handler(request, params), kind, self.stopping)
        if not fired:
            self.faults.give_back(rule)
            return response, None
        return response, rule.label

    def _authenticate(self, request: Request) -> Response | None:
        """The API key header, or (cekura-api.md 1, the SDK's OAuth login) ``Authorization:
        Bearer <token>`` instead of it; the emulator's one credential is its key."""
        given = request.headers.get(API_KEY_HEADER)
        if given:
            return self._check(given, "Invalid API key.")
        scheme, _, token = (request.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            if not token.strip():
                return detail(401, "Invalid token header. No credentials provided.")
            return self._check(token.strip(), "Invalid token.")
        return detail(401, "Authentication credentials were not provided.")

    def _check(self, given: str, wrong: str) -> Response | None:
        # Constant-time comparison: the emulator may listen on a shared host.
        if not hmac.compare_digest(given.encode("utf-8"), self._api_key):
            return detail(401, wrong)
        return None
