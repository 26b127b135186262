"""Cekura's API endpoints a test runner needs, typed; the HTTP layer under them (auth,
timeouts, retries, error mapping) is ``transport.py``."""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from .errors import ApiError, CekuraError, NotFoundError, ProtocolError
from .lookups import LIST_PAGE_SIZE, Lookups
from .models import AgentSettings, Result
from .providers import DEFAULT_BASE_URL, PROVIDERS
from .responses import RunBatch, ScenarioPage, bulk_batch, merged_batches, parse_result
from .secret import Secret
from .snapshot import RunSnapshot
from .transport import (
    API_KEY_HEADER,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
)

V1 = "/test_framework/v1"
#: Current paths of result detail and "List Runs with IDs"; the v1 ones are deprecated.
V2 = "/test_framework/v2"
#: The bulk endpoint's id limit is undocumented. 50 ids is the pre-paging chunk (and what
#: ``get_runs`` always accepts); bigger chunks are cut by URL length instead (below).
BULK_CHUNK_SIZE = 50
#: The longest ``run_ids`` value, URL-encoded, one bulk GET sends (about 430 five-digit ids):
#: the request line stays under the 4 KB that common servers accept (gunicorn's default
#: limit is 4094 bytes), the largest chunk the API can be expected to take; fewer GETs mean
#: fewer round trips a cycle. Answers are decoded one at a time (``Transport._request``), so
#: a bigger chunk costs no more memory for the answers in flight (docs/performance.md).
#: Halved for the session on a 414 or 431 answer.
BULK_QUERY_BUDGET = 3500
#: Keys of ``CekuraClient.request_counts`` for the POSTs, which differ in cost and meaning.
START_LABEL = "POST start runs"
RERUN_LABEL = "POST rerun"
END_CALL_LABEL = "POST end call"
END_CALLS_LABEL = "POST end calls"
SHARE_LINK_LABEL = "POST share link"


class CekuraClient(Lookups):
    """A small synchronous client for the parts of Cekura's API a test runner needs (the
    scenario and agent reads are ``lookups.py``'s).

    Thread-safe: the poller thread and the main thread share one instance.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret | str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry,
            transport=transport,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )
        #: Endpoints whose v2 path answered 404 while v1 worked: v1 from then on, for the
        #: rest of the session (a deployment without v2 is asked once, not every poll).
        self._v1_only: set[str] = set()
        self._notices: list[str] = []
        #: Agent look-ups, once per agent per session (None: it could not be read).
        self._agents: dict[int, AgentSettings | None] = {}
        self._bulk_budget = BULK_QUERY_BUDGET

    def __repr__(self) -> str:
        return f"CekuraClient(base_url={self.base_url!r})"

    @property
    def notices(self) -> list[str]:
        """What the client changed on its own that a user may want to know (shown at -v),
        e.g. that it fell back to a deprecated v1 path."""
        with self._lock:
            return list(self._notices)

    def __enter__(self) -> CekuraClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- endpoints -------------------------------------------------------------------------

    def start_runs(
        self, provider: str, body: Mapping[str, Any], *, deadline: float | None = None
    ) -> Result:
        """POST a run-starting request. Never re-sent once it may have reached the server.

        ``deadline`` (a ``time.monotonic()`` instant): a 429 whose ``Retry-After`` would wait
        past it fails at once instead of sleeping."""
        path = PROVIDERS[provider].path
        data = self._request(
            "POST", path, json=dict(body), idempotent=False, label=START_LABEL, deadline=deadline
        )
        return parse_result(Result, data, f"POST {path}")

    def start_suite_json(self, body: Mapping[str, Any], *, deadline: float | None = None) -> Result:
        """``POST scenarios/run_scenarios_json/`` (Tests as Code, cekura-api.md 10.3): start a
        suite document's cases. Never re-sent once it may have reached the server."""
        path = f"{V1}/scenarios-external/run_scenarios_json/"
        data = self._request(
            "POST", path, json=dict(body), idempotent=False, label=START_LABEL, deadline=deadline
        )
        return parse_result(Result, data, f"POST {path}")

    def validate_suite_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST scenarios/validate_scenarios_json/``: check and price a suite document, free
        and without effects (so it may be retried). A bad suite raises ``ApiError`` (400)
        whose body lists every problem by location."""
        path = f"{V1}/scenarios-external/validate_scenarios_json/"
        data = self._request("POST", path, json=dict(body), idempotent=True)
        return dict(data) if isinstance(data, dict) else {}

    def rerun(self, result_id: int) -> Result:
        """``POST results/{id}/rerun/``: re-execute **every** scenario of a result as a new
        result, billed per run (the endpoint takes no body). Never re-sent once it may have
        reached the server. The plugin itself never calls it: ``--cekura-rerun-failed``
        starts only the failed scenarios, through the run endpoint."""
        path = f"{V1}/results/{result_id}/rerun/"
        data = self._request("POST", path, idempotent=False, label=RERUN_LABEL)
        return parse_result(Result, data, f"POST {path}")

    def find_results(
        self, *, name: str, agent_id: int | None = None, project_id: int | None = None
    ) -> list[Result]:
        """Results whose name matches ``name`` (first page of the results list, filtered
        with the spec's ``search``, ``agent_id`` and ``project_id``); the caller compares
        names exactly, as ``search`` may match more. The project defaults to the agent's,
        when this session already looked the agent up."""
        params = {"search": name, "page_size": "100"}
        if agent_id is not None:
            params["agent_id"] = str(agent_id)
            if project_id is None:
                project_id = self.known_project(agent_id)
        if project_id is not None:
            params["project_id"] = str(project_id)
        data = self._request("GET", f"{V1}/results/", params=params)
        entries = data.get("results") if isinstance(data, Mapping) else data
        if not isinstance(entries, list):
            raise ProtocolError(f"GET results/: expected a page of results, got {data!r:.200}")
        found = []
        for entry in entries:
            try:
                found.append(Result.model_validate(entry))
            except ValidationError:
                continue  # one unreadable entry must not hide the one we look for
        return found

    def get_result(self, result_id: int, *, deadline: float | None = None) -> Result:
        """A result with its runs: ``GET v2/results/{id}/`` (v1 if this deployment has no v2)."""
        data, path = self._get_v2_or_v1("results/{id}/", f"results/{result_id}/", deadline=deadline)
        return parse_result(Result, data, f"GET {path}")

    def get_runs(
        self,
        run_ids: Sequence[int],
        *,
        result_id: int | None = None,
        deadline: float | None = None,
    ) -> RunBatch:
        """ "List Runs with IDs" for up to ``BULK_CHUNK_SIZE`` ids: ``GET v2/runs/bulk/`` with
        ``run_ids`` comma-separated, scoped to ``result_id`` when every id belongs to it."""
        return self.fetch_runs(run_ids, result_id=result_id, deadline=deadline)()

    def fetch_runs(
        self,
        run_ids: Sequence[int],
        *,
        result_id: int | None = None,
        deadline: float | None = None,
    ) -> Callable[[], RunBatch]:
        """``get_runs`` in two steps: the GET now, the decoding when the function returned is
        called (a ``ProtocolError`` for an answer that is not a list of runs is raised then).

        The poller fetches chunks on several threads and decodes every answer on its own:
        glibc's malloc gives each thread that allocates its own heap, and fetcher threads
        that each decoded answers kept a heap of garbage each (40 MB at 10,000 runs)."""
        cost = _bulk_cost(run_ids)
        if len(run_ids) > BULK_CHUNK_SIZE and cost > BULK_QUERY_BUDGET:
            raise ValueError(
                f"get_runs takes at most {BULK_CHUNK_SIZE} ids or {BULK_QUERY_BUDGET} "
                f"characters of them, got {len(run_ids)} ids; split them with bulk_chunks()"
            )
        if len(run_ids) <= BULK_CHUNK_SIZE or cost <= self.bulk_budget:
            return self._fetch_runs_split(run_ids, result_id=result_id, deadline=deadline)
        # Cut before the budget shrank (a 414 on another chunk in flight): cut it again.
        parts = [
            self._fetch_runs_split(chunk, result_id=result_id, deadline=deadline)
            for chunk in self.bulk_chunks(run_ids)
        ]
        return functools.partial(merged_batches, parts)

    def _fetch_runs_split(
        self, run_ids: Sequence[int], *, result_id: int | None, deadline: float | None
    ) -> Callable[[], RunBatch]:
        try:
            return self._fetch_runs(run_ids, result_id=result_id, deadline=deadline)
        except ApiError as exc:
            if exc.status_code not in {414, 431} or len(run_ids) <= 1:
                raise
        # The server's request line is shorter than we thought: halve the chunks from now on.
        with self._lock:
            self._bulk_budget = max(1, min(self._bulk_budget, _bulk_cost(run_ids)) // 2)
        middle = len(run_ids) // 2
        parts = [
            self._fetch_runs_split(half, result_id=result_id, deadline=deadline)
            for half in (run_ids[:middle], run_ids[middle:])
        ]
        return functools.partial(merged_batches, parts)

    @property
    def bulk_budget(self) -> int:
        """The characters of ``run_ids`` one bulk GET may carry (see ``BULK_QUERY_BUDGET``)."""
        with self._lock:
            return self._bulk_budget

    def bulk_chunks(self, run_ids: Sequence[int]) -> list[list[int]]:
        """``run_ids`` cut, in order, into the fewest chunks whose URL-encoded ``run_ids``
        fit ``bulk_budget``: one bulk GET each."""
        budget = self.bulk_budget
        chunks: list[list[int]] = []
        chunk: list[int] = []
        used = 0
        for run_id in run_ids:
            cost = _bulk_cost((run_id,))
            if chunk and used + cost > budget:
                chunks.append(chunk)
                chunk, used = [], 0
            chunk.append(run_id)
            used += cost
        if chunk:
            chunks.append(chunk)
        return chunks

    def _fetch_runs(
        self, run_ids: Sequence[int], *, result_id: int | None, deadline: float | None
    ) -> Callable[[], RunBatch]:
        ids = ",".join(str(i) for i in run_ids)
        v2_params = {"run_ids": ids}
        if result_id is not None:
            v2_params["result_id"] = str(result_id)
        # The deprecated v1 path: its docs name the parameter run_ids, the official SDK
        # sends ids, so the fallback sends both (and no scope, which v1 does not document).
        answer, _ = self._get_v2_or_v1(
            "runs/bulk/",
            "runs/bulk/",
            v2_params=v2_params,
            v1_params={"run_ids": ids, "ids": ids},
            deadline=deadline,
            later=True,
        )
        return functools.partial(bulk_batch, answer)

    def get_all_runs(self, run_ids: Sequence[int]) -> list[RunSnapshot]:
        """Every readable run among ``run_ids``, fetched in chunks (``bulk_chunks``); parse
        a snapshot with ``.run()`` only where its detail is needed. Unscoped: the ids may
        belong to several results."""
        runs: list[RunSnapshot] = []
        for chunk in self.bulk_chunks(run_ids):
            runs += self.get_runs(chunk).runs
        return runs

    def _get_v2_or_v1(
        self,
        endpoint: str,
        tail: str,
        *,
        v2_params: Mapping[str, str] | None = None,
        v1_params: Mapping[str, str] | None = None,
        deadline: float | None = None,
        later: bool = False,
    ) -> tuple[Any, str]:
        """GET ``tail`` under v2; on a 404 there, under v1. When v1 then answers, the
        deployment has no such v2 endpoint: v1 is used from then on, and a notice says so.
        (A 404 on both is an object that does not exist: nothing is remembered.)"""
        with self._lock:
            v1_only = endpoint in self._v1_only
        if not v1_only:
            path = f"{V2}/{tail}"
            try:
                data = self._request("GET", path, params=v2_params, deadline=deadline, later=later)
                return data, path
            except NotFoundError:
                pass
        path = f"{V1}/{tail}"
        data = self._request("GET", path, params=v1_params, deadline=deadline, later=later)
        if not v1_only:
            with self._lock:
                if endpoint not in self._v1_only:
                    self._v1_only.add(endpoint)
                    self._notices.append(
                        f"GET {V2}/{endpoint} answered 404: using the deprecated "
                        f"{V1}/{endpoint} for the rest of the session"
                    )
        return data, path

    def end_call(self, run_id: int) -> None:
        """Ask Cekura to end a call in progress; a run that no longer exists is ignored."""
        with contextlib.suppress(NotFoundError):
            self._request(
                "POST",
                f"/test_framework/v1/runs-external/{run_id}/end_call/",
                idempotent=True,
                label=END_CALL_LABEL,
            )

    def end_calls(self, result_id: int, *, deadline: float | None = None) -> bool:
        """End every call still going in a result, in one request; False when Cekura knows no
        such result (nothing to end). The documented v2 path first, then v1 (cekura-api.md 10).
        The answer is 200 with an empty body. No retry waits past ``deadline``."""
        for api_version in ("v2", "v1"):
            path = f"/test_framework/{api_version}/results/{result_id}/end_calls/"
            try:
                self._request(
                    "POST", path, idempotent=True, label=END_CALLS_LABEL, deadline=deadline
                )
            except NotFoundError:
                continue
            return True
        return False

    def create_share_link(
        self, result_id: int, expire_at: datetime | None, *, deadline: float | None = None
    ) -> str:
        """``POST results/{id}/create_shareable_link_token/`` (the v2 path, then v1; cekura-api.md
        10.1): a link to the result that anyone can open, valid until ``expire_at`` (None: it
        never expires). It starts nothing, so it is sent again on a retriable failure (a second
        token is harmless); no retry waits past ``deadline``."""
        when = None if expire_at is None else expire_at.astimezone(UTC).isoformat("T", "seconds")
        body = {"expire_at": None if when is None else when.replace("+00:00", "Z")}
        answer: Any = None
        for api_version in ("v2", "v1"):
            path = f"/test_framework/{api_version}/results/{result_id}/create_shareable_link_token/"
            try:
                answer = self._request(
                    "POST",
                    path,
                    json=body,
                    idempotent=True,
                    label=SHARE_LINK_LABEL,
                    deadline=deadline,
                )
            except NotFoundError:
                if api_version == "v1":
                    raise
                continue
            break
        link = answer.get("shareable_link") if isinstance(answer, Mapping) else None
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise ProtocolError(f"the answer holds no shareable_link: {str(answer)[:200]}")
        return link


def _bulk_cost(run_ids: Iterable[int]) -> int:
    """Characters of ``run_ids`` in a URL: each id and its comma, sent as ``%2C``."""
    return sum(len(str(run_id)) + 3 for run_id in run_ids)


__all__ = [
    "API_KEY_HEADER",
    "BULK_CHUNK_SIZE",
    "BULK_QUERY_BUDGET",
    "DEFAULT_BASE_URL",
    "LIST_PAGE_SIZE",
    "PROVIDERS",
    "CekuraClient",
    "CekuraError",
    "RetryPolicy",
    "RunBatch",
    "ScenarioPage",
    "backoff_delay",
    "parse_retry_after",
]
