"""Where a session's requests go: the client, and the in-process emulator it may point at.

Nothing here starts by itself: the client (and under ``--cekura-emulator`` the emulator) is
made by an explicit ``client()`` call, the first time a Cekura test needs it, so a session
that never talks to Cekura opens no connection and starts no server.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from .client import CekuraClient, RetryPolicy
from .errors import ConfigError
from .options import DEFAULT_DASHBOARD_URL, ENV_API_KEY, Settings
from .report import Links
from .secret import Secret

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .emulator import Catalogue, Emulator

MISSING_KEY = (
    f"pytest-cekura: the {ENV_API_KEY} environment variable is not set, and the selected tests "
    "need Cekura. Set it to your Cekura API key, or run offline against the built-in emulator "
    "with --cekura-emulator, or deselect these tests with -m 'not cekura_scenario'."
)
EMULATOR_DASHBOARD = "/_emulator/dashboard/results/{result_id}?run={run_id}#run-{run_id}"
#: Private, for pytest-cekura's own test suite: a factor from 0 to 1 applied to the waits a
#: test cannot otherwise shorten (retry backoff, the look-ups by name after an ambiguous
#: run-starting POST). Waits only get shorter; any other value is ignored. A Retry-After
#: Cekura asks for is always honoured in full.
ENV_DELAY_SCALE = "PYTEST_CEKURA_DELAY_SCALE"


class Connection:
    """The session's client and, under ``--cekura-emulator``, the emulator it talks to.

    ``emulator`` is an emulator another process started (an xdist worker gets its
    controller's): this process then starts none of its own.
    """

    def __init__(self, settings: Settings, *, emulator: tuple[str, Secret] | None = None) -> None:
        self._settings = settings
        self._remote_emulator = emulator
        self._client: CekuraClient | None = None
        self._emulator: Emulator | None = None
        self._emulator_key = Secret("")
        self._catalogue: Catalogue | None = None

    @property
    def connected(self) -> CekuraClient | None:
        """The client if one was made (never makes one)."""
        return self._client

    def client(self) -> CekuraClient:
        """The client, made (and the emulator started) on the first call."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> CekuraClient:
        settings = self._settings
        if settings.emulator:
            url, key = self._remote_emulator or self.start_emulator()
            return CekuraClient(url, key, timeout=self._http_timeout(), retry=retry_policy())
        if settings.api_key is None:
            raise ConfigError(MISSING_KEY)
        return CekuraClient(
            settings.base_url, settings.api_key, timeout=self._http_timeout(), retry=retry_policy()
        )

    def _http_timeout(self) -> httpx.Timeout:
        # Connecting and queueing for a connection stay short whatever the read timeout is.
        seconds = self._settings.request_timeout
        return httpx.Timeout(seconds, connect=min(5.0, seconds), pool=min(5.0, seconds))

    def emulator_catalogue(self) -> Catalogue | None:
        """The emulator's catalogue, read (and checked) once; None without a file."""
        from .emulator import CatalogueError, load_catalogue

        path = self._settings.emulator_catalogue
        if path is not None and self._catalogue is None:
            try:
                self._catalogue = load_catalogue(path)
            except CatalogueError as exc:
                raise ConfigError(f"pytest-cekura: {exc}") from None
        return self._catalogue

    def start_emulator(self) -> tuple[str, Secret]:
        """Start the in-process emulator (once) and return its URL and a fresh key."""
        from .emulator import Emulator

        if self._emulator is None:
            # A fresh key: the user's real one never leaves their machine for the emulator.
            self._emulator_key = Secret(secrets.token_urlsafe(16))
            self._emulator = Emulator(
                self.emulator_catalogue(),
                api_key=self._emulator_key.reveal(),
                time_scale=self._settings.emulator_time_scale,
            ).start()
        return self._emulator.url, self._emulator_key

    @property
    def api_url(self) -> str:
        """Where requests go (the emulator's URL under --cekura-emulator)."""
        return self._client.base_url if self._client is not None else self._settings.base_url

    def links(self, scenario_agents: Mapping[int, int | None]) -> Links:
        """Dashboard links, computed at report time from the settings (never stored in them):
        their template (the emulator's own page under --cekura-emulator, unless a template
        was given) and each agent's project, looked up once per agent."""
        template = self._settings.dashboard_url
        if self._settings.emulator and template == DEFAULT_DASHBOARD_URL:
            template = self.api_url + EMULATOR_DASHBOARD
        if self._client is None:
            return Links(template, scenario_agents=scenario_agents)
        return Links(template, self._client.project_of, scenario_agents)

    @property
    def api_notices(self) -> list[str]:
        """What the client decided on its own, e.g. to fall back to a v1 path (shown at -v)."""
        return self._client.notices if self._client is not None else []

    @property
    def request_counts(self) -> dict[str, int]:
        return self._client.request_counts if self._client is not None else {}

    def close(self) -> None:
        """Close the client and stop the emulator this process started."""
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self._emulator is not None:
                self._emulator.stop()


def _delay_scale() -> float:
    try:
        scale = float(os.environ.get(ENV_DELAY_SCALE, "1"))
    except ValueError:
        return 1.0
    return scale if 0 <= scale <= 1 else 1.0


def sleep(seconds: float) -> None:
    """``time.sleep``, shortened by ``PYTEST_CEKURA_DELAY_SCALE`` in pytest-cekura's tests."""
    time.sleep(seconds * _delay_scale())


def retry_policy() -> RetryPolicy:
    policy = RetryPolicy()
    scale = _delay_scale()
    return replace(
        policy, initial_delay=policy.initial_delay * scale, max_delay=policy.max_delay * scale
    )
