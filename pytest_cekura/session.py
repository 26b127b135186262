"""One pytest process's Cekura work: client, optional emulator, submission, poller, verdicts.

Pytest-free on purpose: ``plugin.py`` translates hooks into calls on ``CekuraSession``.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

import httpx

from .client import RERUN_LABEL, START_LABEL, CekuraClient
from .errors import AuthError, CekuraError, ConfigError
from .markers import GroupKey, ScenarioSpec
from .models import CekuraResult, Run
from .options import DEFAULT_DASHBOARD_URL, ENV_API_KEY, ENV_API_URL, Settings
from .outcome import Outcome, Verdict, against_baseline, judge
from .poller import Poller, RunState
from .preflight import check_agents, check_scenarios, missing_scenario_message
from .records import Assignment, TestRecord
from .reuse import ResultCache
from .secret import Secret
from .submit import Group, Submission, by_scenario, plan_groups, rerun_failed, submit_group
from .xdist import SubmitOnce

if TYPE_CHECKING:
    from .emulator import Catalogue, Emulator

MISSING_KEY = (
    f"pytest-cekura: the {ENV_API_KEY} environment variable is not set, and the selected tests "
    "need Cekura. Set it to your Cekura API key, or run offline against the built-in emulator "
    "with --cekura-emulator, or deselect these tests with -m 'not cekura_scenario'."
)
AUTH_FAILED = (
    "pytest-cekura: Cekura rejected the API key ({error}). Check the {env} environment "
    "variable (and --cekura-url / {url_env} if you use another Cekura deployment). "
)
NOTHING_STARTED = "The session stopped before any call was started."
MAYBE_STARTED = (
    "The session stopped, but calls it asked for before the rejection may have started: look "
    "for results named 'pytest-cekura {session_id} ...' in Cekura's dashboard."
)
#: Upper bound on the time spent ending calls at session end, so Ctrl-C stays responsive.
CANCEL_BUDGET = 10.0


class WaitCutShort(Exception):  # noqa: N818  (not an error of Cekura's: a bounded wait ended)
    """The wait for a test's runs ended at the caller's limit, before they all finished."""

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__(f"runs {', '.join(map(str, run_ids))} still going")
        self.run_ids = run_ids


EARLY_REASON = (
    "still going when the verdict was already decided; the call was ended to save money "
    "(--cekura-early-verdict)"
)
EMULATOR_DASHBOARD = "/_emulator/dashboard/results/{result_id}?run={run_id}#run-{run_id}"


class CekuraSession:
    """Submission and verdicts for the tests of this process.

    ``submit_once`` coordinates xdist workers so only one of them POSTs; ``emulator`` points a
    worker at the emulator its controller started. ``lazy`` makes the poller follow only runs
    whose tests are waiting: an xdist worker runs only some of the tests it collected.
    """

    def __init__(
        self,
        settings: Settings,
        session_id: str,
        *,
        submit_once: SubmitOnce | None = None,
        emulator: tuple[str, Secret] | None = None,
        lazy: bool = False,
    ) -> None:
        self.settings = settings
        self.session_id = session_id
        self.dashboard_url = settings.dashboard_url
        self.records: dict[str, TestRecord] = {}
        #: Set by a dry run: what would have been submitted.
        self.dry_run_groups: list[Group] | None = None
        self._submit_once = submit_once
        self._remote_emulator = emulator
        self._lazy = lazy
        self._client: CekuraClient | None = None
        self._emulator: Emulator | None = None
        self._emulator_key = Secret("")
        self._catalogue: Catalogue | None = None
        self._poller: Poller | None = None
        self._ended: set[int] = set()  # calls already ended: never ask twice
        self._own_agents: dict[int, int | None] = {}  # scenario -> its agent (from preflight)
        #: With --cekura-compare: test id -> committed success rate.
        self.baseline: Mapping[str, float] = {}
        #: Where results are remembered for --cekura-reuse (None without pytest's cache).
        self.result_cache: ResultCache | None = None

    # -- client and emulator -----------------------------------------------------------------

    @property
    def client(self) -> CekuraClient:
        """The session's client, created (and the emulator started) on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> CekuraClient:
        if self.settings.emulator:
            url, key = self._remote_emulator or self.start_emulator()
            if self.dashboard_url == DEFAULT_DASHBOARD_URL:
                self.dashboard_url = url + EMULATOR_DASHBOARD
            return CekuraClient(url, key, timeout=self._http_timeout())
        if self.settings.api_key is None:
            raise ConfigError(MISSING_KEY)
        return CekuraClient(
            self.settings.base_url, self.settings.api_key, timeout=self._http_timeout()
        )

    def _http_timeout(self) -> httpx.Timeout:
        # Connecting and queueing for a connection stay short whatever the read timeout is.
        seconds = self.settings.request_timeout
        return httpx.Timeout(seconds, connect=min(5.0, seconds), pool=min(5.0, seconds))

    def emulator_catalogue(self) -> Catalogue | None:
        """The emulator's catalogue, read (and checked) once; None without a file."""
        from .emulator import CatalogueError, load_catalogue

        path = self.settings.emulator_catalogue
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
                time_scale=self.settings.emulator_time_scale,
            ).start()
        return self._emulator.url, self._emulator_key

    @property
    def api_url(self) -> str:
        """Where this session's requests go (the emulator's URL under --cekura-emulator)."""
        return self._client.base_url if self._client is not None else self.settings.base_url

    @property
    def request_counts(self) -> dict[str, int]:
        return self._client.request_counts if self._client is not None else {}

    # -- submission --------------------------------------------------------------------------

    def submit(self, specs: Mapping[str, ScenarioSpec]) -> None:
        """Start every group's runs (once per test run), map them to tests, start polling."""
        self.records = {nodeid: TestRecord(spec) for nodeid, spec in specs.items()}
        if not specs:
            return
        if self.settings.dry_run:
            self.dry_run_groups = plan_groups(specs.values(), self.session_id)
            return
        client = self.client
        if self._submit_once is not None:
            manifest = self._submit_once.run(lambda: _to_json(self._start(client, specs)))
            assignments = {nodeid: Assignment.from_json(a) for nodeid, a in manifest.items()}
        else:
            assignments = self._start(client, specs)
        poller = Poller(
            client,
            interval=self.settings.poll_interval,
            deadline=time.monotonic() + self.settings.timeout,
        )
        for nodeid, record in self.records.items():
            record.assignment = assignments[nodeid]
            if not self._lazy:
                poller.track(record.assignment.runs)
        self._poller = poller
        poller.start()

    def _start(
        self, client: CekuraClient, specs: Mapping[str, ScenarioSpec]
    ) -> dict[str, Assignment]:
        """Preflight, budget check, then the POSTs. Raises ``ConfigError`` for the session."""
        try:
            excluded: dict[str, Assignment] = {}
            if self.settings.preflight:
                specs, excluded = self._preflight(client, specs)
            groups = plan_groups(specs.values(), self.session_id)
            self._check_budget(groups)
            return {**excluded, **self._post(client, groups, specs)}
        except AuthError as exc:
            # Only a rejection of the first call-starting POST proves nothing started.
            asked = client.request_counts.get(START_LABEL, 0) + client.request_counts.get(
                RERUN_LABEL, 0
            )
            nothing = asked == 0 or (asked == 1 and exc.method == "POST")
            outcome = NOTHING_STARTED if nothing else MAYBE_STARTED
            message = AUTH_FAILED.format(error=exc, env=ENV_API_KEY, url_env=ENV_API_URL)
            raise ConfigError(message + outcome.format(session_id=self.session_id)) from None

    def _preflight(
        self, client: CekuraClient, specs: Mapping[str, ScenarioSpec]
    ) -> tuple[dict[str, ScenarioSpec], dict[str, Assignment]]:
        """Drop tests whose scenarios do not exist (they error alone); check the agents."""
        found = check_scenarios(client, (s for spec in specs.values() for s in spec.scenario_ids))
        self._own_agents = dict(found.own_agents)
        kept: dict[str, ScenarioSpec] = {}
        excluded: dict[str, Assignment] = {}
        for nodeid, spec in specs.items():
            missing = [s for s in spec.scenario_ids if s in found.missing]
            if missing:
                problems = tuple(missing_scenario_message(s) for s in missing)
                excluded[nodeid] = Assignment(problems=problems)
            else:
                kept[nodeid] = spec
        check_agents(client, kept.values(), found.own_agents)
        return kept, excluded

    def _from_earlier(self, client: CekuraClient, group: Group) -> Submission | None:
        """Build on this group's last result: reuse it if every run succeeded
        (--cekura-reuse), or rerun only its failed runs (--cekura-rerun-failed)."""
        settings = self.settings
        wanted = settings.reuse_seconds is not None or settings.rerun_failed
        if not wanted or self.result_cache is None:
            return None
        max_age = settings.reuse_seconds if settings.reuse_seconds is not None else math.inf
        remembered = self.result_cache.recall(group, client.base_url, max_age)
        if remembered is None:
            return None
        snapshots = client.get_all_runs(remembered.run_ids)
        if not len(snapshots) == len(remembered.run_ids) == group.run_count:
            return None  # not a whole result of this exact shape: pay for a fresh one
        runs = [snapshot.run() for snapshot in snapshots]
        if all(run.succeeded for run in runs):
            return Submission(
                group,
                result_id=remembered.result_id,
                runs_by_scenario=by_scenario(runs),
                reused_age=self.result_cache.age(remembered),
            )
        # A failed result is never reused as it is: after fixing the agent, the calls that
        # failed must run again. With --cekura-rerun-failed only those are paid for.
        if not settings.rerun_failed or not all(run.is_terminal for run in runs):
            return None
        kept = [run for run in runs if run.succeeded]
        failed = [run.id for run in runs if not run.succeeded]
        return rerun_failed(client, group, remembered.result_id, kept, failed)

    def _check_budget(self, groups: list[Group]) -> None:
        limit = self.settings.max_runs
        calls = sum(group.run_count for group in groups)
        if limit is not None and calls > limit:
            raise ConfigError(
                f"pytest-cekura: this session would start {calls} calls in {len(groups)} "
                f"request(s), more than the limit of {limit} (--cekura-max-runs / "
                "cekura_max_runs). Nothing was started: select fewer tests with -k or -m, or "
                "raise the limit."
            )

    def _post(
        self, client: CekuraClient, groups: list[Group], specs: Mapping[str, ScenarioSpec]
    ) -> dict[str, Assignment]:
        submissions: dict[GroupKey, Submission] = {}
        for group in groups:
            # Cekura files a result under the request's agent, else the first scenario's own.
            agent = group.key.agent or self._own_agents.get(group.scenario_ids[0])
            submission = self._from_earlier(client, group) or submit_group(
                client, group, result_agent=agent
            )
            result_id = submission.result_id
            if submission.reused_age is None and result_id is not None and self.result_cache:
                run_ids = [r.id for runs in submission.runs_by_scenario.values() for r in runs]
                self.result_cache.remember(group, client.base_url, result_id, run_ids)
            submissions[group.key] = submission
        return {
            nodeid: _assign(submissions[spec.group_key], spec) for nodeid, spec in specs.items()
        }

    # -- verdicts ----------------------------------------------------------------------------

    def verdict(
        self,
        nodeid: str,
        on_tick: Callable[[dict[str, int]], None] | None = None,
        *,
        give_up_at: float | None = None,
    ) -> TestRecord:
        """Wait for the test's runs (bounded by the deadline) and judge them; cached.

        ``give_up_at`` (a ``time.monotonic()`` instant, e.g. just before the test's own
        timeout) stops the wait early with ``WaitCutShort``; the verdict stays undecided.
        """
        record = self.records[nodeid]
        if record.verdict is None:
            runs = record.assignment.runs
            spec = record.spec
            settings = self.settings

            def decide(states: Sequence[RunState], reason: str | None = None) -> Verdict:
                return judge(
                    states,
                    spec.min_success_rate,
                    record.assignment.problems,
                    confidence=settings.confidence,
                    unfinished_reason=reason,
                )

            def decided(now: Sequence[RunState]) -> bool:
                return decide(now).outcome is not Outcome.ERROR

            states: dict[int, RunState] = {}
            if self._poller is not None:
                if self._lazy:
                    self._poller.track(runs, poll_now=True)
                states = self._poller.wait(
                    [run.id for run in runs],
                    on_tick,
                    decided if settings.early_verdict else None,
                    give_up_at=give_up_at,
                )
            ordered = [states[run.id] for run in runs]
            going = [state.run.id for state in ordered if not state.done]
            if going and give_up_at is not None and time.monotonic() >= give_up_at:
                raise WaitCutShort(going)
            early = self._end_early(nodeid, ordered) if settings.early_verdict else 0
            record.verdict = decide(ordered, EARLY_REASON if early else None)
            if nodeid in self.baseline:
                record.verdict = against_baseline(
                    record.verdict, self.baseline[nodeid], settings.tolerance
                )
            record.ended_early = early
            record.result = _result(record, [state.run for state in ordered])
        elif record.result is None and self._poller is not None:
            # Released after an earlier report of this test (pytest-rerunfailures runs it
            # again): the same runs, read again from the poller's snapshots.
            states = self._poller.states([run.id for run in record.assignment.runs])
            record.result = _result(record, [state.run for state in states.values()])
        return record

    def ready(self, nodeid: str) -> bool:
        """True when the test can run without waiting for Cekura: it is not a Cekura test,
        its runs are all done, or the session's deadline has passed."""
        record = self.records.get(nodeid)
        poller = self._poller
        if record is None or record.verdict is not None or poller is None or poller.expired:
            return True
        return poller.all_done([run.id for run in record.assignment.runs])

    def wait_for_poll(self) -> None:
        """Block until the poller's next update (briefly; returns at once without one)."""
        if self._poller is not None:
            self._poller.wait_for_poll()

    def release(self, nodeid: str) -> None:
        """The test is reported: let go of its runs' full detail (transcripts, metrics).

        A session of 10,000 runs would otherwise hold them all until it ends. The verdict
        (with the failed runs it reports) and the summary row are kept.
        """
        record = self.records.get(nodeid)
        if record is not None:
            record.result = None

    def end_unfinished(self, run_ids: Sequence[int]) -> None:
        """End every call among ``run_ids`` that is still going (best effort, bounded)."""
        if not run_ids:
            return
        try:
            runs = self.client.get_all_runs(run_ids)
        except CekuraError:
            return  # the session is over; nothing more can be done from here
        self._cancel([run.id for run in runs if not run.is_terminal])

    def _end_early(self, nodeid: str, states: Sequence[RunState]) -> int:
        """End the calls of a test decided early, unless another test still needs them."""
        if self._poller is None or self._poller.expired:
            return 0
        needed = {
            run.id
            for other, record in self.records.items()
            if other != nodeid and record.verdict is None
            for run in record.assignment.runs
        }
        idle = [s.run.id for s in states if not s.done and s.run.id not in needed]
        self._cancel(idle)
        return len(idle)

    # -- shutdown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop polling, end calls still in progress (they cost money), release everything."""
        if self._poller is not None:
            self._poller.stop()
            self._cancel(self._poller.outstanding())
        if self._client is not None:
            self._client.close()
        if self._emulator is not None:
            self._emulator.stop()

    def _cancel(self, run_ids: list[int]) -> None:
        run_ids = [run_id for run_id in run_ids if run_id not in self._ended]
        if not run_ids or self._client is None:
            return
        self._ended.update(run_ids)
        client = self._client

        def end(run_id: int) -> None:
            with contextlib.suppress(CekuraError):  # best effort: the session is over anyway
                client.end_call(run_id)

        pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cekura-cancel")
        futures = [pool.submit(end, run_id) for run_id in run_ids]
        wait_futures(futures, timeout=CANCEL_BUDGET)
        pool.shutdown(wait=False, cancel_futures=True)


def _result(record: TestRecord, runs: Sequence[Run]) -> CekuraResult:
    assignment = record.assignment
    owners = [assignment.earlier_result_id, assignment.result_id]
    return CekuraResult(
        scenario_ids=record.spec.scenario_ids,
        runs=tuple(runs),
        min_success_rate=record.spec.min_success_rate,
        result_ids=tuple(owner for owner in owners if owner is not None),
    )


def _assign(submission: Submission, spec: ScenarioSpec) -> Assignment:
    name = submission.group.name
    if submission.error is not None:
        return Assignment(submission.result_id, (), (submission.error,), name)
    runs, problems = submission.runs_for(spec)
    return Assignment(
        submission.result_id,
        runs,
        tuple(problems),
        name,
        reused_age=submission.reused_age,
        earlier_result_id=submission.earlier_result_id,
        earlier_run_ids=submission.earlier_run_ids,
    )


def _to_json(assignments: Mapping[str, Assignment]) -> dict[str, Any]:
    return {nodeid: assignment.to_json() for nodeid, assignment in assignments.items()}
