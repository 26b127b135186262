"""One pytest session's Cekura work: client, optional emulator, submission, poller, verdicts.

Pytest-free on purpose: ``plugin.py`` translates hooks into calls on ``CekuraSession``.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

from .client import CekuraClient
from .errors import AuthError, CekuraError, ConfigError
from .markers import ScenarioSpec
from .models import CekuraResult, Run
from .options import DEFAULT_DASHBOARD_URL, ENV_API_KEY, Settings
from .outcome import Verdict, judge
from .poller import Poller
from .secret import Secret
from .submit import Submission, plan_groups, submit_group

MISSING_KEY = (
    f"pytest-cekura: the {ENV_API_KEY} environment variable is not set, and the selected tests "
    "need Cekura. Set it to your Cekura API key, or run offline against the built-in emulator "
    "with --cekura-emulator, or deselect these tests with -m 'not cekura_scenario'."
)
AUTH_FAILED = (
    "pytest-cekura: Cekura rejected the API key ({error}). Check the {env} environment "
    "variable (and --cekura-url / {url_env} if you use another Cekura deployment). "
    "No Cekura test was run."
)
#: Upper bound on the time spent ending calls at session end, so Ctrl-C stays responsive.
CANCEL_BUDGET = 10.0


@dataclass
class TestRecord:
    spec: ScenarioSpec
    runs: tuple[Run, ...] = ()
    result_id: int | None = None
    problems: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    result: CekuraResult | None = None
    outcome: str = "not run"


class CekuraSession:
    def __init__(self, settings: Settings, session_id: str) -> None:
        self.settings = settings
        self.session_id = session_id
        self.dashboard_url = settings.dashboard_url
        self.records: dict[str, TestRecord] = {}
        self._client: CekuraClient | None = None
        self._emulator: object | None = None
        self._poller: Poller | None = None

    # -- client and emulator -----------------------------------------------------------------

    @property
    def client(self) -> CekuraClient:
        """The session's client, created (and the emulator started) on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> CekuraClient:
        if not self.settings.emulator:
            if self.settings.api_key is None:
                raise ConfigError(MISSING_KEY)
            return CekuraClient(self.settings.base_url, self.settings.api_key)
        from .emulator import CatalogueError, Emulator, load_catalogue

        path = self.settings.emulator_catalogue
        try:
            catalogue = load_catalogue(path) if path else None
        except CatalogueError as exc:
            raise ConfigError(f"pytest-cekura: {exc}") from None
        key = secrets.token_urlsafe(16)  # a fresh key: the user's real one never leaves home
        emulator = Emulator(catalogue, api_key=key, time_scale=self.settings.emulator_time_scale)
        self._emulator = emulator.start()
        if self.dashboard_url == DEFAULT_DASHBOARD_URL:
            self.dashboard_url = (
                emulator.url + "/_emulator/dashboard/results/{result_id}?run={run_id}#run-{run_id}"
            )
        return CekuraClient(emulator.url, Secret(key))

    @property
    def request_counts(self) -> dict[str, int]:
        return self._client.request_counts if self._client is not None else {}

    @property
    def emulator_url(self) -> str | None:
        return getattr(self._emulator, "url", None)

    # -- submission --------------------------------------------------------------------------

    def submit(self, specs: Mapping[str, ScenarioSpec]) -> None:
        """Start every group's runs, map them to tests and start polling."""
        self.records = {nodeid: TestRecord(spec) for nodeid, spec in specs.items()}
        if not specs:
            return
        client = self.client
        submissions: dict[object, Submission] = {}
        for group in plan_groups(specs.values(), self.session_id):
            try:
                submissions[group.key] = submit_group(client, group)
            except AuthError as exc:
                raise ConfigError(
                    AUTH_FAILED.format(error=exc, env=ENV_API_KEY, url_env="CEKURA_API_URL")
                ) from None
        poller = Poller(
            client,
            interval=self.settings.poll_interval,
            deadline=time.monotonic() + self.settings.timeout,
        )
        for record in self.records.values():
            submission = submissions[record.spec.group_key]
            record.result_id = submission.result_id
            if submission.error is not None:
                record.problems.append(submission.error)
                continue
            record.runs, problems = submission.runs_for(record.spec)
            record.problems.extend(problems)
            poller.track(record.runs)
        self._poller = poller
        poller.start()

    # -- verdicts ----------------------------------------------------------------------------

    def verdict(self, nodeid: str) -> TestRecord:
        """Wait for the test's runs (bounded by the deadline) and judge them; cached."""
        record = self.records[nodeid]
        if record.verdict is None:
            states = self._poller.wait([r.id for r in record.runs]) if self._poller else {}
            ordered = [states[run.id] for run in record.runs]
            record.verdict = judge(ordered, record.spec.min_success_rate, record.problems)
            record.result = CekuraResult(
                scenario_ids=record.spec.scenario_ids,
                runs=tuple(state.run for state in ordered),
                min_success_rate=record.spec.min_success_rate,
                result_ids=() if record.result_id is None else (record.result_id,),
            )
        return record

    # -- shutdown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop polling, end calls still in progress (they cost money), release everything."""
        if self._poller is not None:
            self._poller.stop()
            self._cancel(self._poller.outstanding())
        if self._client is not None:
            self._client.close()
        stop = getattr(self._emulator, "stop", None)
        if stop is not None:
            stop()

    def _cancel(self, run_ids: list[int]) -> None:
        if not run_ids or self._client is None:
            return
        client = self._client

        def end(run_id: int) -> None:
            with contextlib.suppress(CekuraError):  # best effort: the session is over anyway
                client.end_call(run_id)

        pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cekura-cancel")
        futures = [pool.submit(end, run_id) for run_id in run_ids]
        wait_futures(futures, timeout=CANCEL_BUDGET)
        pool.shutdown(wait=False, cancel_futures=True)
