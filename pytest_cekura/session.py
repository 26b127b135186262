"""One pytest process's Cekura work: client, optional emulator, submission, poller, verdicts.

Pytest-free on purpose: ``plugin.py`` translates hooks into calls on ``CekuraSession``.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from .cleanup import (
    CLEANUP_BUDGET,
    CleanupReport,
    Created,
    Ledger,
    end_calls,
    record_created,
    run_bounded,
)
from .client import CekuraClient, RetryPolicy
from .errors import AuthError, CekuraError, ConfigError
from .hookspec import ModifyRequest
from .markers import GroupKey, ScenarioSpec
from .models import CekuraResult, Run
from .options import DEFAULT_DASHBOARD_URL, ENV_API_KEY, ENV_API_URL, Settings
from .outcome import Outcome, Verdict, against_baseline, judge
from .poller import Poller, RunState
from .preflight import check_agents, check_scenarios, missing_scenario_message
from .records import Assignment, TestRecord
from .report import Links
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
UNREACHABLE = (
    "pytest-cekura: cannot reach Cekura at {url} ({error}); nothing was started. Check "
    f"--cekura-url / {ENV_API_URL} (or unset it for Cekura's own API), and your network or proxy."
)
NOTHING_STARTED = "The session stopped before any call was started."
MAYBE_STARTED = (
    "The session stopped, but calls it asked for before the rejection may have started: look "
    "for results named 'pytest-cekura {session_id} ...' in Cekura's dashboard."
)
#: Upper bound on the time spent ending calls (the session's clean-up has its own budget,
#: ``cleanup.CLEANUP_BUDGET``), so Ctrl-C stays responsive.
CANCEL_BUDGET = CLEANUP_BUDGET
#: Groups whose POSTs are in flight at once, after the first (which goes alone: it proves the
#: key and the endpoint before more calls are asked for).
SUBMIT_CONCURRENCY = 4
#: How long the main thread blocks at a time while submitting, so Ctrl-C lands at once.
SUBMIT_SLICE = 0.25
PREFLIGHT_TOO_SLOW = (
    "pytest-cekura: the checks before starting runs (preflight) did not finish within the "
    "session's time limit (--cekura-timeout {timeout:g}s): Cekura answers too slowly or not "
    "at all. Nothing was started. Raise --cekura-timeout, or check --cekura-url."
)
NOT_SENT = (
    "the session's time limit (--cekura-timeout {timeout:g}s) ran out before this group's "
    "request was sent; nothing was started for it."
)
NO_ANSWER = (
    "Cekura did not answer the request to start this group's runs within the session's time "
    "limit (--cekura-timeout {timeout:g}s). It was not re-sent, so you are not charged twice; "
    "a result named {name!r} is looked for when the session ends, and its calls ended."
)
T = TypeVar("T")


class WaitCutShort(Exception):  # noqa: N818  (not an error of Cekura's: a bounded wait ended)
    """The wait for a test's runs ended at the caller's limit, before they all finished."""

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__(f"runs {', '.join(map(str, run_ids))} still going")
        self.run_ids = run_ids


EARLY_REASON = (
    "still going when the verdict was already decided; the call was ended to save money "
    "(--cekura-early-verdict)"
)
#: The xdist manifest's entry for preflight's warnings (a test id never starts with a space).
WARNINGS_KEY = " cekura preflight warnings"
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
        modify_request: ModifyRequest | None = None,
    ) -> None:
        self.settings = settings
        #: The ``pytest_cekura_modify_request`` hook, called on each body before its POST.
        self._modify_request = modify_request
        self.session_id = session_id
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
        #: LiveKit settings the agents do not show (runs were started anyway).
        self.preflight_warnings: list[str] = []
        #: With --cekura-compare: test id -> committed success rate.
        self.baseline: Mapping[str, float] = {}
        #: Where results are remembered for --cekura-reuse (None without pytest's cache).
        self.result_cache: ResultCache | None = None
        #: When the session's time is up (``time.monotonic()``): preflight, submission and the
        #: wait for the runs all fit inside --cekura-timeout. Set on submission unless given.
        self.deadline: float | None = None
        #: Every result this session created, from the moment Cekura answered.
        self.ledger = Ledger(
            record_created(submit_once.directory) if submit_once is not None else None
        )
        #: Called on the main thread while submitting: (requests answered, requests, seconds).
        self.on_progress: Callable[[int, int, float], None] | None = None
        #: What the clean-up at session end had to say (calls ended, or left going).
        self.cleanup_lines: list[str] = []
        #: Calls this session ended before they finished (early verdicts, clean-up), and the
        #: results whose calls it ended: reports show those runs as ended, not "running".
        self.ended_runs: set[int] = set()
        self.ended_results: set[int] = set()

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
            return CekuraClient(url, key, timeout=self._http_timeout(), retry=_retry_policy())
        if self.settings.api_key is None:
            raise ConfigError(MISSING_KEY)
        return CekuraClient(
            self.settings.base_url,
            self.settings.api_key,
            timeout=self._http_timeout(),
            retry=_retry_policy(),
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
    def links(self) -> Links:
        """Dashboard links, computed at report time: the settings' template (the emulator's
        own page under --cekura-emulator, unless a template was given) and each agent's
        project, looked up once per agent for the session."""
        template = self.settings.dashboard_url
        if self.settings.emulator and template == DEFAULT_DASHBOARD_URL:
            template = self.api_url + EMULATOR_DASHBOARD
        client = self._client
        if client is None:
            return Links(template, scenario_agents=self._own_agents)
        return Links(template, client.project_of, self._own_agents)

    @property
    def api_notices(self) -> list[str]:
        """What the client decided on its own, e.g. to fall back to a v1 path (shown at -v)."""
        return self._client.notices if self._client is not None else []

    @property
    def key_rejected(self) -> AuthError | None:
        """Cekura's rejection of the key while polling, if it came: polling has stopped."""
        return self._poller.rejected if self._poller is not None else None

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
            # A plan the real run would refuse is refused the same way (same exit status).
            self._check_budget(self.dry_run_groups, dry_run=True)
            return
        if self.deadline is None:
            self.deadline = time.monotonic() + self.settings.timeout
        client = self.client
        if self._submit_once is not None:
            manifest = self._submit_once.run(lambda: self._manifest(client, specs))
            # Every worker learns preflight's warnings, whichever of them submitted.
            self.preflight_warnings = [str(w) for w in manifest.pop(WARNINGS_KEY, [])]
            assignments = {nodeid: Assignment.from_json(a) for nodeid, a in manifest.items()}
        else:
            assignments = self._start(client, specs)
        poller = Poller(client, interval=self.settings.poll_interval, deadline=self.deadline)
        for nodeid, record in self.records.items():
            record.assignment = assignments[nodeid]
            if not self._lazy:
                poller.track(record.assignment.runs)
        self._poller = poller
        poller.start()

    def _manifest(self, client: CekuraClient, specs: Mapping[str, ScenarioSpec]) -> dict[str, Any]:
        """What the submitting xdist worker shares: every test's assignment, and the
        warnings of preflight (under a key no test id can be)."""
        assignments = _to_json(self._start(client, specs))
        return {**assignments, WARNINGS_KEY: list(self.preflight_warnings)}

    def _start(
        self, client: CekuraClient, specs: Mapping[str, ScenarioSpec]
    ) -> dict[str, Assignment]:
        """Preflight, budget check, then the POSTs. Raises ``ConfigError`` for the session."""
        try:
            excluded: dict[str, Assignment] = {}
            if self.settings.preflight:
                checked = _in_threads([lambda: self._preflight(client, specs)], 1, self._until)
                if checked[0] is None:
                    raise ConfigError(PREFLIGHT_TOO_SLOW.format(timeout=self.settings.timeout))
                specs, excluded = _value(checked[0])
            groups = plan_groups(specs.values(), self.session_id)
            self._check_budget(groups)
            return {**excluded, **self._post(client, groups, specs)}
        except AuthError as exc:
            # The ledger knows every POST answered with a result, and every one not answered.
            outcome = NOTHING_STARTED if self.ledger.empty else MAYBE_STARTED
            message = AUTH_FAILED.format(error=exc, env=ENV_API_KEY, url_env=ENV_API_URL)
            raise ConfigError(message + outcome.format(session_id=self.session_id)) from None

    def _preflight(
        self, client: CekuraClient, specs: Mapping[str, ScenarioSpec]
    ) -> tuple[dict[str, ScenarioSpec], dict[str, Assignment]]:
        """Drop tests whose scenarios do not exist (they error alone); check the agents."""
        found = check_scenarios(
            client,
            (s for spec in specs.values() for s in spec.scenario_ids),
            agents={spec.agent for spec in specs.values()},
        )
        if found.unreachable is not None:
            # Every POST would fail the same way after its own retries: stop the session here.
            raise ConfigError(_unreachable(client, str(found.unreachable)))
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
        self.preflight_warnings = check_agents(client, kept.values(), found.own_agents)
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
        failed = [run for run in runs if not run.succeeded]
        return rerun_failed(
            client,
            group,
            remembered.result_id,
            kept,
            failed,
            ledger=self.ledger,
            sleep=_sleep,
            modify=self._modify_request,
        )

    def _check_budget(self, groups: list[Group], *, dry_run: bool = False) -> None:
        limit = self.settings.max_runs
        calls = sum(group.run_count for group in groups)
        if limit is not None and calls > limit:
            refused = "dry run: the real run would be refused: " if dry_run else ""
            raise ConfigError(
                f"pytest-cekura: {refused}this session would start {calls} calls in {len(groups)} "
                f"request(s), more than the limit of {limit} (--cekura-max-runs / "
                "cekura_max_runs). Nothing was started: select fewer tests with -k or -m, or "
                "raise the limit."
            )

    @property
    def _until(self) -> float:
        return self.deadline if self.deadline is not None else math.inf

    def _post(
        self, client: CekuraClient, groups: list[Group], specs: Mapping[str, ScenarioSpec]
    ) -> dict[str, Assignment]:
        """Post every group within the session's deadline: the first alone (a rejected key
        then costs one request, and proves nothing started), the rest ``SUBMIT_CONCURRENCY``
        at a time. A group not answered by the deadline errors; its result, if Cekura
        created one, is looked up and its calls ended when the session ends."""

        def task(group: Group) -> Callable[[], Submission]:
            # Cekura files a result under the request's agent, else the first scenario's own.
            agent = group.key.agent or self._own_agents.get(group.scenario_ids[0])
            return lambda: (
                self._from_earlier(client, group)
                or submit_group(
                    client,
                    group,
                    result_agent=agent,
                    ledger=self.ledger,
                    deadline=self._until,
                    sleep=_sleep,
                    modify=self._modify_request,
                )
            )

        tasks = [task(group) for group in groups]
        started = time.monotonic()
        total = len(groups)

        def progress(done: int) -> None:
            if self.on_progress is not None:
                self.on_progress(done, total, time.monotonic() - started)

        outcomes = _in_threads(tasks[:1], 1, self._until, progress)
        # A first request rejected for the key, or not answered in time, says the rest would
        # fare no better: they are not sent.
        first = outcomes[0] if outcomes else None
        if isinstance(first, Submission) and first.unreachable is not None:
            # Nobody listens at the URL (checked here too when preflight is off): every other
            # POST would wait out the same retries only to fail the same way.
            raise ConfigError(_unreachable(client, first.unreachable))
        if first is not None and not isinstance(first, AuthError | ConfigError):
            outcomes += _in_threads(
                tasks[1:], SUBMIT_CONCURRENCY, self._until, lambda n: progress(1 + n)
            )
        outcomes += [None] * (len(tasks) - len(outcomes))
        submissions: dict[GroupKey, Submission] = {}
        for group, outcome in zip(groups, outcomes, strict=False):
            submission = self._settle(group, outcome)
            result_id = submission.result_id
            if submission.reused_age is None and result_id is not None and self.result_cache:
                run_ids = [r.id for runs in submission.runs_by_scenario.values() for r in runs]
                self.result_cache.remember(group, client.base_url, result_id, run_ids)
            submissions[group.key] = submission
        return {
            nodeid: _assign(submissions[spec.group_key], spec) for nodeid, spec in specs.items()
        }

    def _settle(self, group: Group, outcome: Submission | BaseException | None) -> Submission:
        """One group's submission from what its thread produced; session errors re-raised."""
        timeout = self.settings.timeout
        if isinstance(outcome, Submission):
            return outcome
        if isinstance(outcome, AuthError | ConfigError):
            raise outcome
        if outcome is None:
            if self.ledger.in_flight(group.name):
                return Submission(
                    group, error=NO_ANSWER.format(timeout=timeout, name=group.name), ambiguous=True
                )
            return Submission(group, error=NOT_SENT.format(timeout=timeout))
        # Anything else is one group's failure: its tests error, the other groups go on, and
        # the ledger still ends whatever it started.
        error = f"submitting this group failed: {type(outcome).__name__}: {outcome}"
        return Submission(group, error=error, ambiguous=self.ledger.in_flight(group.name))

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

            def decide(states: Sequence[RunState], ended: int = 0) -> Verdict:
                return judge(
                    states,
                    spec.min_success_rate,
                    record.assignment.problems,
                    confidence=settings.confidence,
                    unfinished_reason=EARLY_REASON if ended else None,
                    ended_early=ended,
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
            record.verdict = decide(ordered, early)
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

    def end_unfinished(self, run_ids: Sequence[int], created: Created | None = None) -> None:
        """End every call among ``run_ids`` and of the results ``created`` by an xdist
        worker that may have died (best effort, bounded): a result with a call going is
        ended in one request; a POST it never saw answered is looked up by name."""
        created = created or Created()
        results = created.results
        owner = {run_id: rid for rid, runs in results.items() for run_id in runs}
        every = sorted({*run_ids, *owner})
        if not every and not created.names:
            return
        try:
            going = [run.id for run in self.client.get_all_runs(every) if not run.call_over]
        except CekuraError:
            # Cannot tell what is still going: end every result we know of.
            going = every
        by_result: dict[int, list[int]] = {}
        loose = []
        for run_id in going:
            if run_id in owner:
                by_result.setdefault(owner[run_id], []).append(run_id)
            else:
                loose.append(run_id)
        # A created result whose runs nobody listed may still have calls: end it too.
        by_result.update({rid: [] for rid, runs in results.items() if not runs})
        self._end_calls(by_result, loose, created.names, patient=True)

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
        idle = [
            s.run.id
            for s in states
            if not s.done and not s.run.call_over and s.run.id not in needed
        ]
        self._cancel(idle)
        return len(idle)

    # -- shutdown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop polling, end calls still in progress (they cost money), release everything.

        Every result the session created is ended unless its runs are known to be finished,
        whatever stopped the session (an interrupt during submission, a failed group, the
        deadline); POSTs never answered are looked up by name once more. Bounded by
        ``CLEANUP_BUDGET`` on daemon threads; a second Ctrl-C cuts it short."""
        try:
            if self._poller is not None:
                self._poller.stop()
            if self._client is not None:
                self._end_all(self._client)
        finally:
            if self._client is not None:
                self._client.close()
            if self._emulator is not None:
                self._emulator.stop()

    def _end_all(self, client: CekuraClient) -> None:
        poller = self._poller
        going, names = self.ledger.pending()
        # Calls over but still being scored are left alone: there is nothing to end.
        outstanding = set(poller.calls_going()) if poller is not None else set()
        if self._lazy and poller is not None:
            # An xdist worker that got the manifest: other workers may still need runs of
            # these results; each worker ends the runs it waited for, the controller the rest.
            self._end_calls({}, sorted(outstanding), {})
            return
        assigned = {run.id for record in self.records.values() for run in record.assignment.runs}
        results: dict[int, list[int]] = {}
        for rid, run_ids in going.items():
            if poller is None:
                results[rid] = run_ids  # never polled: nothing is known to be finished
                continue
            # Runs nobody waited for (not assigned to a test) may be going too.
            still = [r for r in run_ids if r in outstanding or r not in assigned]
            still = [r for r in still if r not in self._ended]
            if still:
                results[rid] = still
        covered = {run_id for run_ids in results.values() for run_id in run_ids}
        owned = {run_id for run_ids in going.values() for run_id in run_ids}
        loose = sorted(outstanding - covered - owned)
        self._end_calls(results, loose, names)

    def _end_calls(
        self,
        results: Mapping[int, Sequence[int]],
        runs: Sequence[int],
        names: Mapping[str, int | None],
        *,
        patient: bool = False,
    ) -> CleanupReport:
        """End these calls within the clean-up budget; note what was (not) ended."""
        runs = [run_id for run_id in runs if run_id not in self._ended]
        if (not results and not runs and not names) or self._client is None:
            return CleanupReport()
        self._ended.update(runs)
        self._ended.update(run_id for run_ids in results.values() for run_id in run_ids)
        report = end_calls(
            self._client, results, runs=runs, names=names, ledger=self.ledger, patient=patient
        )
        self.cleanup_lines += report.lines()
        left = {
            *report.left_runs,
            *(r for rid in report.left_results for r in results.get(rid, ())),
        }
        self.ended_runs.update({*runs, *(r for ids in results.values() for r in ids)} - left)
        self.ended_results.update(report.ended_results)
        return report

    def _cancel(self, run_ids: list[int]) -> None:
        """End these calls (the early verdict's), each on its own: other runs of the same
        result may still be needed. Daemon threads, bounded; Ctrl-C is not swallowed."""
        run_ids = [run_id for run_id in run_ids if run_id not in self._ended]
        if not run_ids or self._client is None:
            return
        self._ended.update(run_ids)
        client = self._client
        jobs = [lambda run_id=run_id: client.end_call(run_id) for run_id in run_ids]
        self.ended_runs.update(run_ids)
        if run_bounded(jobs, 8, time.monotonic() + CANCEL_BUDGET) is None:
            raise KeyboardInterrupt


#: Private, for pytest-cekura's own test suite: a factor from 0 to 1 applied to the waits a
#: test cannot otherwise shorten (retry backoff, the look-ups by name after an ambiguous
#: run-starting POST). Waits only get shorter; any other value is ignored. A Retry-After
#: Cekura asks for is always honoured in full.
ENV_DELAY_SCALE = "PYTEST_CEKURA_DELAY_SCALE"


def _delay_scale() -> float:
    try:
        scale = float(os.environ.get(ENV_DELAY_SCALE, "1"))
    except ValueError:
        return 1.0
    return scale if 0 <= scale <= 1 else 1.0


def _sleep(seconds: float) -> None:
    time.sleep(seconds * _delay_scale())


def _retry_policy() -> RetryPolicy:
    policy = RetryPolicy()
    scale = _delay_scale()
    return replace(
        policy, initial_delay=policy.initial_delay * scale, max_delay=policy.max_delay * scale
    )


def _in_threads(
    tasks: Sequence[Callable[[], T]],
    concurrency: int,
    deadline: float,
    on_progress: Callable[[int], None] | None = None,
) -> list[T | BaseException | None]:
    """Run ``tasks`` on at most ``concurrency`` daemon threads; what each returned or raised,
    None for those not finished by ``deadline`` (never started ones included).

    The main thread waits in short slices, so Ctrl-C and SIGTERM land at once (and stop any
    task not yet started); a thread still waiting on Cekura is a daemon, so it cannot keep
    the process alive, and whatever it started is in the session's ledger.
    """
    outcomes: list[T | BaseException | None] = [None] * len(tasks)
    if not tasks:
        return outcomes
    lock = threading.Condition()
    queue = iter(range(len(tasks)))
    stop = threading.Event()
    finished = [0]

    def work() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            outcome: T | BaseException
            try:
                outcome = tasks[index]()
            except Exception as exc:  # handed to the main thread, which decides
                outcome = exc
            with lock:
                outcomes[index] = outcome
                finished[0] += 1
                lock.notify_all()

    for number in range(min(concurrency, len(tasks))):
        threading.Thread(target=work, name=f"cekura-submit-{number}", daemon=True).start()
    try:
        with lock:
            while finished[0] < len(tasks):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                lock.wait(min(SUBMIT_SLICE, remaining))
                if on_progress is not None:
                    on_progress(finished[0])
            return list(outcomes)
    finally:
        stop.set()


def _value(outcome: T | BaseException | None) -> T:
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome is not None
    return outcome


def _unreachable(client: CekuraClient, error: str) -> str:
    # "GET /path failed (ConnectError: ...)": the path adds nothing to the message.
    reason = error.partition(" failed (")[2].removesuffix(")") or error
    return UNREACHABLE.format(url=client.base_url, error=reason)


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
