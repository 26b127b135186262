"""HTTP front end of the Cekura emulator: routing, auth, request log, and ``Emulator``.

Why the standard library's ``ThreadingHTTPServer``: the emulator ships inside the plugin, so
it must not add dependencies to users' test environments. A thread per connection serves
several concurrent pollers at once, HTTP/1.1 keep-alive (``protocol_version`` plus an exact
``Content-Length`` on every answer) lets clients reuse connections, and ``daemon_threads``
means an idle kept-alive connection can never block interpreter exit. Answers are built in
memory from a few small records, so even a bulk GET of 100 run ids takes a few milliseconds.

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
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from pytest_cekura.emulator import dashboard, objects
from pytest_cekura.emulator.catalogue import Catalogue
from pytest_cekura.emulator.state import (
    RequestRecord,
    ResultFilter,
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


class _Api:
    """Turns one request into one response; independent of the socket layer."""

    def __init__(self, store: Store, catalogue: Catalogue, api_key: str) -> None:
        self._store = store
        self._catalogue = catalogue
        self._api_key = api_key.encode("utf-8")
        self._routes = self._cekura_routes()
        self._control_routes = self._emulator_routes()

    def __repr__(self) -> str:
        return "_Api(api_key=***)"

    def handle(self, request: _Request) -> _Response:
        path = request.path.rstrip("/") or "/"
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._dispatch(self._control_routes, request, path, authenticate=False)
        response = self._dispatch(self._routes, request, path, authenticate=True)
        query = {name: values[-1] for name, values in request.query.items()}
        self._store.log_request(RequestRecord(request.method, request.path, query, response.status))
        return response

    # ---------------------------------------------------------------- plumbing

    def _dispatch(
        self, routes: list[_Route], request: _Request, path: str, *, authenticate: bool
    ) -> _Response:
        for route in routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            # DRF order: authentication happens before the method check and the lookup.
            if authenticate and (denied := self._authenticate(request)) is not None:
                return denied
            handler = route.methods.get(request.method)
            if handler is None:
                allow = ", ".join(sorted(route.methods))
                message = f'Method "{request.method}" not allowed.'
                return _json(405, {"detail": message}, {"Allow": allow})
            return handler(request, match.groupdict())
        return _detail(404, _NOT_FOUND)

    def _authenticate(self, request: _Request) -> _Response | None:
        given = request.headers.get(API_KEY_HEADER)
        if not given:
            return _detail(401, "Authentication credentials were not provided.")
        # Constant-time comparison: the emulator may listen on a shared host.
        if not hmac.compare_digest(given.encode("utf-8"), self._api_key):
            return _detail(401, "Invalid API key.")
        return None

    def _cekura_routes(self) -> list[_Route]:
        scenarios = rf"{_V1}/(?:scenarios|scenarios-external)"
        results = rf"{_V1}/(?:results|results-external)"
        runs = rf"{_V1}/(?:runs|runs-external)"
        profiles = rf"{_V1}/test-profiles-external"
        actions = "|".join(re.escape(action) for action in RUNNERS)
        table: list[tuple[str, dict[str, Handler]]] = [
            (rf"{scenarios}/(?P<action>{actions})", {"POST": self._create}),
            (scenarios, {"GET": self._list_scenarios}),
            (rf"{scenarios}/(?P<scenario_id>\d+)", {"GET": self._scenario}),
            (rf"(?:{_V1}|{_V2})/aiagents/(?P<agent_id>\d+)", {"GET": self._agent}),
            (profiles, {"GET": self._list_profiles}),
            (rf"{profiles}/(?P<profile_id>\d+)", {"GET": self._profile}),
            (results, {"GET": self._list_results}),
            (rf"{results}/(?P<result_id>\d+)", {"GET": self._result_detail}),
            (rf"{results}/(?P<result_id>\d+)/end_calls", {"POST": self._end_calls}),
            (rf"{results}/(?P<result_id>\d+)/rerun", {"POST": self._rerun}),
            (rf"{runs}/bulk", {"GET": self._bulk}),
            (rf"{runs}/(?P<run_id>\d+)", {"GET": self._run_detail}),
            (rf"{runs}/(?P<run_id>\d+)/end_call", {"POST": self._end_call}),
        ]
        return [_Route(re.compile(pattern), methods) for pattern, methods in table]

    def _emulator_routes(self) -> list[_Route]:
        table: list[tuple[str, dict[str, Handler]]] = [
            (rf"{CONTROL_PREFIX}/requests", {"GET": self._control_requests}),
            (rf"{CONTROL_PREFIX}/runs", {"GET": self._control_runs}),
            (rf"{CONTROL_PREFIX}/reset", {"POST": self._control_reset}),
            (rf"{CONTROL_PREFIX}/dashboard/results/(?P<result_id>\d+)", {"GET": self._dashboard}),
        ]
        return [_Route(re.compile(pattern), methods) for pattern, methods in table]

    # ---------------------------------------------------------- Cekura endpoints

    def _create(self, request: _Request, params: dict[str, str]) -> _Response:
        try:
            body = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _detail(400, f"JSON parse error - {exc}")
        try:
            new = parse_new_result(body, RUNNERS[params["action"]], self._catalogue)
        except InvalidRequestError as failed:
            return _json(400, failed.errors)
        return _json(201, self._store.create_result(new))

    def _scenario(self, _: _Request, params: dict[str, str]) -> _Response:
        scenario_id = int(params["scenario_id"])
        if not self._catalogue.has_scenario(scenario_id):
            return _detail(404, _NOT_FOUND)
        scenario = self._catalogue.scenario(scenario_id)
        return _json(200, objects.scenario_object(self._catalogue, scenario))

    def _list_scenarios(self, request: _Request, _: dict[str, str]) -> _Response:
        # Only listed scenarios: the unlisted ones exist too, but there are infinitely many.
        listed = [s for _, s in sorted(self._catalogue.scenarios.items()) if s.exists]
        return _paginated(request, [objects.scenario_object(self._catalogue, s) for s in listed])

    def _agent(self, _: _Request, params: dict[str, str]) -> _Response:
        agent_id = int(params["agent_id"])
        if not self._catalogue.has_agent(agent_id):
            return _detail(404, _NOT_FOUND)
        return _json(200, objects.agent_object(self._catalogue.agent(agent_id)))

    def _profile(self, _: _Request, params: dict[str, str]) -> _Response:
        profile_id = int(params["profile_id"])
        if profile_id <= 0:
            return _detail(404, _NOT_FOUND)
        # Like run requests, any positive id is a profile (a default one when not listed).
        return _json(200, self._catalogue.test_profile(profile_id).as_api_dict())

    def _list_profiles(self, request: _Request, _: dict[str, str]) -> _Response:
        listed = sorted(self._catalogue.test_profiles.items())
        return _paginated(request, [profile.as_api_dict() for _, profile in listed])

    def _result_detail(self, _: _Request, params: dict[str, str]) -> _Response:
        result = self._store.result_detail(int(params["result_id"]))
        return _json(200, result) if result is not None else _detail(404, _NOT_FOUND)

    def _list_results(self, request: _Request, _: dict[str, str]) -> _Response:
        errors: dict[str, list[str]] = {}
        where = ResultFilter(
            agent_id=_int_param(request, "agent_id", errors),
            name=request.last("name"),
            scenario_ids=_id_set_param(request, "scenarios", errors),
        )
        if errors:
            return _json(400, errors)
        page = _page_number(request.last("page"))
        size = _page_size(request.last("page_size"))
        found = self._store.list_results(where, page, size) if page is not None else None
        if page is None or found is None:
            return _detail(404, _INVALID_PAGE)
        return _json(200, _page_body(request, page, size, found.count, found.items))

    def _bulk(self, request: _Request, _: dict[str, str]) -> _Response:
        # The docs name the parameter run_ids, the official SDK sends ids: accept both.
        ids: list[int] = []
        for name in ("run_ids", "ids"):
            for value in request.query.get(name, []):
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
        unique = list(dict.fromkeys(ids))  # asked twice, answered once, first order kept
        return _json(200, self._store.runs(unique))

    def _run_detail(self, _: _Request, params: dict[str, str]) -> _Response:
        run = self._store.run(int(params["run_id"]))
        return _json(200, run) if run is not None else _detail(404, _NOT_FOUND)

    def _end_call(self, _: _Request, params: dict[str, str]) -> _Response:
        if not self._store.end_call(int(params["run_id"])):
            return _detail(404, _NOT_FOUND)
        return _detail(200, "Call ended.")

    def _rerun(self, request: _Request, params: dict[str, str]) -> _Response:
        try:
            body = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _detail(400, f"JSON parse error - {exc}")
        run_ids = body.get("run_ids") if isinstance(body, dict) else None
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
        return _json(201, created)

    def _end_calls(self, _: _Request, params: dict[str, str]) -> _Response:
        if not self._store.end_calls(int(params["result_id"])):
            return _detail(404, _NOT_FOUND)
        return _detail(200, "Calls ended.")

    # -------------------------------------------------------- control endpoints

    def _control_requests(self, _: _Request, __: dict[str, str]) -> _Response:
        return _json(200, [asdict(record) for record in self._store.requests()])

    def _control_runs(self, _: _Request, __: dict[str, str]) -> _Response:
        return _json(200, self._store.debug_runs())

    def _control_reset(self, _: _Request, __: dict[str, str]) -> _Response:
        self._store.reset()
        return _detail(200, "Emulator state cleared.")

    def _dashboard(self, _: _Request, params: dict[str, str]) -> _Response:
        result_id = int(params["result_id"])
        result = self._store.result_detail(result_id)
        if result is None:
            return _Response(404, dashboard.render_not_found(result_id).encode(), _HTML)
        return _Response(200, dashboard.render_result_page(result).encode(), _HTML)


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
        self._send(response)

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

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
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
        self._api = _Api(self._store, self.catalogue, api_key)  # the key lives only in _Api
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"Emulator({where}, time_scale={self.time_scale})"

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
        and ``ctx.room.metadata``), ``livekit_agent_name`` (the dispatch name, None when the
        agent has none) and ``publish_data_message`` (only when the request element had one).
        """
        return self._store.debug_runs()

    def reset(self) -> None:
        """Forget results, runs and logged requests; new ids continue where they left off."""
        self._store.reset()
