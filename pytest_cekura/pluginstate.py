"""The plugin's per-process state: settings, the Cekura session (built once, on first need,
with its collaborators), the xdist role, the agent worker, and the summary rows."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .options import Settings
from .secret import Secret
from .xdist import Serial

if TYPE_CHECKING:
    from .report import SummaryRow
    from .reuse import ResultCache
    from .session import CekuraSession
    from .worker import AgentWorker

MARKER_ERROR_KEY = pytest.StashKey[str]()
#: Name of the attribute carrying a test's summary row on its report (survives xdist).
REPORT_ATTR = "cekura"


@dataclass
class _State:
    config: pytest.Config
    settings: Settings
    #: With --cekura-compare: test id -> committed success rate. Loaded once here; the
    #: session is handed a read-only view in its ``Rules``.
    baseline: dict[str, float] = field(default_factory=dict)
    #: Where the agent worker's output goes (--cekura-agent-cmd), in every process.
    worker_log: Path | None = None
    worker: AgentWorker | None = None
    #: One row per test; a rerun (pytest-rerunfailures) replaces the attempt before it.
    rows_by_test: dict[str, SummaryRow] = field(default_factory=dict)
    #: The SIGINT and SIGTERM handlers the session replaced (``interrupts.install``).
    previous_handlers: dict[int, Any] = field(default_factory=dict)
    #: This process's part under xdist (``Serial`` without it: a null object); everything
    #: that passes between the controller and its workers goes through it.
    role: Serial = field(default_factory=Serial)
    session: CekuraSession | None = None
    #: When the session started (for the JSON report).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def rows(self) -> list[SummaryRow]:
        return list(self.rows_by_test.values())

    def cekura(self) -> CekuraSession:
        """The session's Cekura work, built (with its imports) on the first call; it starts
        nothing (no client, no emulator) until a test needs Cekura."""
        if self.session is None:
            self.session = _new_session(self.config, self.settings, self.baseline, self.role)
        return self.session

    def request_counts(self) -> Counter[str]:
        own = self.session.request_counts if self.session is not None else {}
        return Counter(own) + Counter(self.role.request_counts)

    # -- what the xdist controller asks of the plugin (``xdist.Host``) -----------------------

    @property
    def agent_log(self) -> Path | None:
        return self.worker_log

    def start_agent_worker(self) -> None:
        if not (self.config.option.collectonly or self.settings.dry_run):
            from .local_worker import start_worker

            start_worker(self)

    @property
    def livekit_agent_name(self) -> str | None:
        return self.settings.livekit_agent_name

    def start_emulator(self) -> tuple[str, Secret] | None:
        if not self.settings.emulator:
            return None
        try:
            return self.cekura().connection.start_emulator()
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None


STATE_KEY = pytest.StashKey[_State]()


def _result_cache(config: pytest.Config) -> ResultCache | None:
    from .reuse import CACHE_KEY, ResultCache

    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    return ResultCache(
        load=lambda: cache.get(CACHE_KEY, {}), save=lambda data: cache.set(CACHE_KEY, data)
    )


def _worker_output(state: _State, lines: int = 20) -> list[str]:
    if state.worker is not None:
        return state.worker.tail(lines)
    if state.worker_log is None or not state.worker_log.is_file():
        return []
    with state.worker_log.open(encoding="utf-8", errors="replace") as log:
        return [line.rstrip("\n") for line in deque(log, maxlen=lines)]


def _new_session(
    config: pytest.Config, settings: Settings, baseline: dict[str, float], role: Serial
) -> CekuraSession:
    """The session, built once with every collaborator it needs."""
    from types import MappingProxyType

    from .connection import Connection
    from .hookspec import request_modifier
    from .outcome import Rules
    from .poller import Poller
    from .session import CekuraSession

    return CekuraSession(
        settings,
        role.session_id(),
        connection=Connection(settings, emulator=role.emulator),
        rules=Rules(settings.confidence, MappingProxyType(baseline), settings.tolerance),
        role=role,
        # Started by the session once it has runs to follow, with the client and deadline.
        poller=Poller(interval=settings.poll_interval),
        result_cache=_result_cache(config),
        # Built when the session is about to submit; under xdist a replacement for a worker
        # that crashed gets the deadline the first worker set, not a fresh one.
        deadline=role.deadline(settings.timeout),
        modify_request=request_modifier(config, settings.api_key),
    )


def _state(config: pytest.Config) -> _State:
    return config.stash[STATE_KEY]


def _cekura(config: pytest.Config) -> CekuraSession:
    return config.stash[STATE_KEY].cekura()


def _started(config: pytest.Config) -> CekuraSession | None:
    """The session's Cekura work if any test needed it (hot per-test hooks must not start it)."""
    return config.stash[STATE_KEY].session if STATE_KEY in config.stash else None
