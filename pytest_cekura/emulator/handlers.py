"""The emulator's endpoints: one method per Cekura endpoint, and the ``/_emulator`` controls.

Handlers take the routed ``Request`` and the path's named groups and return a ``Response``;
authentication, method checks and faults happen before them (``routing.py``), the state they
read and change lives in ``state.Store``.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from pytest_cekura.emulator import dashboard, objects
from pytest_cekura.emulator.catalogue import Catalogue, CatalogueError, TestProfileEntry
from pytest_cekura.emulator.faults import FaultPlan, parse_fault
from pytest_cekura.emulator.queries import (
    Errors,
    bool_param,
    datetime_param,
    id_set_param,
    int_param,
    is_datetime,
    page_of,
    statuses,
    stored_page,
)
from pytest_cekura.emulator.state import ResultFilter, RunFilter, Store
from pytest_cekura.emulator.validation import RUNNERS, InvalidRequestError, parse_new_result
from pytest_cekura.emulator.wire import (
    HTML,
    NOT_FOUND,
    Request,
    Response,
    detail,
    is_digits,
    json_response,
)

CONTROL_PREFIX = "/_emulator"
Params = dict[str, str]


class CekuraHandlers:
    """Cekura's REST endpoints over one ``Store`` and ``Catalogue``."""

    def __init__(self, store: Store, catalogue: Catalogue, *, strict: bool = False) -> None:
        self._store = store
        self._catalogue = catalogue
        #: Reject what the live service rejects, even forms the official CLI sends (--strict).
        self.strict = strict

    def create(self, request: Request, params: Params) -> Response:
        body = request.json_body(default={})
        if isinstance(body, Response):
            return body
        runner = RUNNERS[params["action"]]
        try:
            new = parse_new_result(body, runner, self._catalogue, strict=self.strict)
        except InvalidRequestError as failed:
            return json_response(400, failed.errors)
        # 200 as the spec answers (201 for the text and websocket runners).
        return json_response(runner.created_status, self._store.create_result(new))

    def scenario(self, _: Request, params: Params) -> Response:
        scenario_id = int(params["scenario_id"])
        if not self._catalogue.has_scenario(scenario_id):
            return detail(404, NOT_FOUND)
        scenario = self._catalogue.scenario(scenario_id)
        return json_response(200, objects.scenario_object(self._catalogue, scenario))

    def list_scenarios(self, request: Request, _: Params) -> Response:
        errors: Errors = {}
        agent_id = int_param(request, "agent_id", errors)
        project_id = int_param(request, "project_id", errors)
        if errors:
            return json_response(400, errors)
        # Only listed scenarios: the unlisted ones exist too, but there are infinitely many.
        listed = [
            s
            for _, s in sorted(self._catalogue.scenarios.items())
            if s.exists
            and (agent_id is None or s.agent == agent_id)
            and (project_id is None or self._catalogue.agent(s.agent).project == project_id)
        ]
        return page_of(
            request, [objects.scenario_object(self._catalogue, s, listed=True) for s in listed]
        )

    def agent(self, _: Request, params: Params) -> Response:
        agent_id = int(params["agent_id"])
        if not self._catalogue.has_agent(agent_id):
            return detail(404, NOT_FOUND)
        return json_response(200, objects.agent_object(self._catalogue.agent(agent_id)))

    def agent_v2(self, _: Request, params: Params) -> Response:
        agent_id = int(params["agent_id"])
        if not self._catalogue.has_agent(agent_id):
            return detail(404, NOT_FOUND)
        return json_response(200, objects.agent_object_v2(self._catalogue.agent(agent_id)))

    def profile(self, _: Request, params: Params) -> Response:
        profile_id = int(params["profile_id"])
        if profile_id <= 0:
            return detail(404, NOT_FOUND)
        # Like run requests, any positive id is a profile (a default one when not listed).
        return json_response(200, _profile_object(self._catalogue.test_profile(profile_id)))

    def list_profiles(self, _: Request, __: Params) -> Response:
        # The spec answers a plain array here (AIAgentTestProfileList), not a page.
        listed = sorted(self._catalogue.test_profiles.items())
        return json_response(200, [_profile_object(profile) for _, profile in listed])

    def result_detail(self, _: Request, params: Params) -> Response:
        result = self._store.result_detail(int(params["result_id"]))
        return json_response(200, result) if result is not None else detail(404, NOT_FOUND)

    def list_results(self, request: Request, _: Params) -> Response:
        errors: Errors = {}
        where = ResultFilter(
            agent_id=int_param(request, "agent_id", errors),
            # Not a filter of the spec (it has "search"); kept for clients that send it.
            name=request.last("name"),
            scenario_ids=id_set_param(request, "scenarios", errors),
            search=request.last("search") or None,
            project_id=int_param(request, "project_id", errors),
        )
        return stored_page(request, errors, partial(self._store.list_results, where))

    def bulk(self, request: Request, _: Params) -> Response:
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
                        return json_response(400, {name: [message]})
                    value = value.strip().removeprefix("[").removesuffix("]")
                for token in (t.strip() for t in value.split(",")):
                    if not token:
                        continue
                    if not is_digits(token):
                        message = (
                            f'"{token}" is not a valid run id; send comma-separated integers, '
                            f"e.g. {name}=90001,90002."
                        )
                        return json_response(400, {name: [message]})
                    ids.append(int(token))
        if not ids:
            return json_response(400, {"run_ids": ["This field is required."]})
        errors: Errors = {}
        # v2's optional scope: only runs of this result / agent / project are answered.
        where = RunFilter(
            result_id=int_param(request, "result_id", errors),
            run_agent_id=int_param(request, "agent_id", errors),
            project_id=int_param(request, "project_id", errors),
        )
        if errors:
            return json_response(400, errors)
        unique = list(dict.fromkeys(ids))  # asked twice, answered once, first order kept
        # The same bytes as json_response(200, self._store.runs(...)), from texts kept per run.
        return Response(200, self._store.runs_json(unique, where))

    def list_runs(self, request: Request, _: Params) -> Response:
        """``GET runs-external/``: full run objects, newest first, paginated, filtered."""
        errors: Errors = {}
        result_id = int_param(request, "result__id", errors)
        where = RunFilter(
            result_id=int_param(request, "result_id", errors) or result_id,
            statuses=statuses(request.last("status"), request.last("status__in")),
            success=bool_param(request, "success", errors),
            scenario_ids=id_set_param(request, "scenario__id__in", errors),
            created_from=datetime_param(request, "timestamp__gte", errors),
            created_until=datetime_param(request, "timestamp__lte", errors),
            agent_id=int_param(request, "result__agent_id", errors),
            run_agent_id=int_param(request, "agent_id", errors),
            run_as_text=bool_param(request, "result__run_as_text", errors),
            run_ids=id_set_param(request, "id__in", errors),
            project_id=int_param(request, "project_id", errors),
        )
        return stored_page(request, errors, partial(self._store.list_runs, where))

    def run_detail(self, _: Request, params: Params) -> Response:
        run = self._store.run(int(params["run_id"]))
        return json_response(200, run) if run is not None else detail(404, NOT_FOUND)

    def end_call(self, _: Request, params: Params) -> Response:
        if not self._store.end_call(int(params["run_id"])):
            return detail(404, NOT_FOUND)
        return Response(200, b"")  # the spec's 200 has no body

    def rerun(self, request: Request, params: Params) -> Response:
        body = request.json_body(default={})
        if isinstance(body, Response):
            return body
        # The spec's rerun takes no body and repeats every run of the result; strict mode
        # ignores run_ids as the live service does, the lenient emulator still honours them.
        run_ids = body.get("run_ids") if isinstance(body, dict) and not self.strict else None
        if run_ids is not None and (
            not isinstance(run_ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in run_ids)
        ):
            return json_response(400, {"run_ids": ["Expected a list of run ids."]})
        try:
            created = self._store.rerun(int(params["result_id"]), run_ids)
        except KeyError as exc:
            message = f'Invalid pk "{exc.args[0]}" - not in this result.'
            return json_response(400, {"run_ids": [message]})
        if created is None:
            return detail(404, NOT_FOUND)
        return json_response(200, created)

    def end_calls(self, _: Request, params: Params) -> Response:
        if not self._store.end_calls(int(params["result_id"])):
            return detail(404, NOT_FOUND)
        return Response(200, b"")  # the spec's 200 has no body

    def share(self, request: Request, params: Params) -> Response:
        """``create_shareable_link_token``: ``{"expire_at": datetime or null}`` in, a token
        and the public link out. The token is derived from the result id: nothing to store."""
        body = request.json_body(default={})
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict):
            kind = type(body).__name__
            message = f"Invalid data. Expected a dictionary, but got {kind}."
            return json_response(400, {"non_field_errors": [message]})
        expire_at = body.get("expire_at")
        if expire_at is not None and not is_datetime(expire_at):
            return json_response(400, {"expire_at": ["Datetime has wrong format."]})
        result_id = int(params["result_id"])
        if self._store.result_detail(result_id) is None:
            return detail(404, NOT_FOUND)
        token = f"emulated-share-{result_id}"
        link = f"https://dashboard.cekura.ai/share/results/{result_id}?token={token}"
        return json_response(200, {"token": token, "shareable_link": link})


class ControlHandlers:
    """The ``/_emulator/...`` endpoints: the request log, runs, reset, faults, dashboard."""

    def __init__(self, store: Store, faults: FaultPlan) -> None:
        self._store = store
        self._faults = faults

    def requests(self, _: Request, __: Params) -> Response:
        return json_response(200, [asdict(record) for record in self._store.requests()])

    def runs(self, _: Request, __: Params) -> Response:
        return json_response(200, self._store.debug_runs())

    def reset(self, _: Request, __: Params) -> Response:
        self._store.reset()
        return detail(200, "Emulator state cleared.")

    def faults(self, _: Request, __: Params) -> Response:
        return json_response(200, self._faults.describe())

    def add_faults(self, request: Request, _: Params) -> Response:
        """POST adds the rules in the body (one object or a list), PUT replaces all with them."""
        where = f"{request.method} {CONTROL_PREFIX}/faults"
        body = request.json_body(default=None, where=f"{where}: ")
        if isinstance(body, Response):
            return body
        if body is None and request.method == "POST":
            example = '{"match": "start", "action": "error_after", "status": 500}'
            return detail(400, f"{where}: send a fault rule as JSON, e.g. {example}")
        items = body if isinstance(body, list) else [] if body is None else [body]
        try:
            # All or nothing: one bad rule in a list installs none of them.
            rules = [
                parse_fault(raw, where=f"{where}: fault[{number}]")
                for number, raw in enumerate(items, start=1)
            ]
        except CatalogueError as exc:
            return detail(400, str(exc))
        if request.method == "PUT":
            self._faults.replace(rules)
        else:
            self._faults.add(rules)
        return json_response(201 if request.method == "POST" else 200, self._faults.describe())

    def clear_faults(self, _: Request, __: Params) -> Response:
        self._faults.replace([])
        return json_response(200, self._faults.describe())

    def dashboard(self, _: Request, params: Params) -> Response:
        result_id = int(params["result_id"])
        result = self._store.result_detail(result_id)
        if result is None:
            return Response(404, dashboard.render_not_found(result_id).encode(), HTML)
        return Response(200, dashboard.render_result_page(result).encode(), HTML)


def _profile_object(profile: TestProfileEntry) -> dict[str, Any]:
    """A test profile as the spec's AIAgentTestProfile(List) shows it."""
    return {
        **profile.as_api_dict(),
        "agent": None,
        "project": None,
        "created_at": objects.CATALOGUE_CREATED_AT,
        "updated_at": objects.CATALOGUE_CREATED_AT,
    }
