"""``Emulator``: the Cekura emulator's public face, which starts and stops the server.

The layers below it, each in its own module: ``transport`` (sockets and HTTP framing),
``routing`` (paths, authentication, faults, the request log), ``handlers`` (one method per
endpoint), ``queries`` (query parameters and pages), ``wire`` (request and response values),
``faults`` (the fault actions) and ``state`` (results and runs). Names other code imported
from here before the split (``API_KEY_HEADER``, ``MAX_PAGE_SIZE``, ...) are re-exported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal

from pytest_cekura.emulator.catalogue import (
    Catalogue,
    DropMode,
    FaultAction,
    FaultMatch,
    FaultRule,
    parse_fault,
)
from pytest_cekura.emulator.handlers import CONTROL_PREFIX
from pytest_cekura.emulator.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from pytest_cekura.emulator.routing import API_KEY_HEADER, Api
from pytest_cekura.emulator.state import RequestRecord, Store, SuccessRateFormat
from pytest_cekura.emulator.transport import Server, shutdown_promptly

__all__ = [
    "API_KEY_HEADER",
    "CONTROL_PREFIX",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Emulator",
]


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
        # The key lives only in the Api.
        self._api = Api(self._store, self.catalogue, api_key, strict=strict)
        self._server: Server | None = None
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
        return self._api.cekura.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._api.cekura.strict = value

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
        server = Server((self.host, self.port), self._api)
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
        shutdown_promptly(server)
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
        ``concurrency_limit``, ``line_held_from``/``line_held_until`` (ISO times between which
        the call held one of the request's lines; until None: a ``hang`` call) and
        ``publish_data_message`` (only when the request element had one).
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
        self._api.faults.add([rule])
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule, those of the catalogue too (``never_finish`` runs then end
        as their clocks say)."""
        self._api.faults.replace([])

    @property
    def faults(self) -> list[dict[str, Any]]:
        """The installed rules in order, as ``GET /_emulator/faults`` lists them: the rule's
        fields plus ``fired`` (requests it applied to) and ``remaining`` (None = unlimited)."""
        return self._api.faults.describe()
