"""Starting a session's runs: preflight, the budget check, then the run-starting POSTs.

Everything here happens once per test run (under xdist, in the one worker that submits) and
within the session's deadline; the result is each test's ``Assignment``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .cleanup import Ledger
from .client import CekuraClient
from .connection import sleep
from .errors import AuthError, ConfigError
from .gates import check_gates
from .hookspec import ModifyRequest
from .markers import GroupKey, ScenarioSpec
from .models import Run
from .options import ENV_API_KEY, ENV_API_URL, Settings
from .preflight import check_agents, check_scenarios, missing_scenario_message
from .providers import PROVIDERS
from .records import Assignment
from .rerun import rerun_failed
from .reuse import ResultCache
from .submit import Group, Submission, by_scenario, plan_groups, submit_group
from .tests_as_code import assignments_from_json, assignments_to_json
from .xdist_messages import Manifest

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
#: As NO_ANSWER, for an endpoint without ``name`` (its result cannot be looked up).
NO_ANSWER_NAMELESS = (
    "Cekura did not answer the request to start this group's runs within the session's time "
    "limit (--cekura-timeout {timeout:g}s). It was not re-sent, so you are not charged twice; "
    "an answer arriving before the session ends still has its calls ended, but provider "
    "{provider!r}'s endpoint takes no result name, so it cannot be looked up: check Cekura's "
    "dashboard for runs started now."
)
T = TypeVar("T")


@dataclass
class Started:
    """What starting the runs gave: each test's assignment, and what preflight learnt."""

    assignments: dict[str, Assignment]
    #: LiveKit settings the agents do not show (runs were started anyway).
    warnings: list[str] = field(default_factory=list)
    #: Scenario -> the agent it belongs to (dashboard links need its project).
    own_agents: dict[int, int | None] = field(default_factory=dict)
    #: Tests-as-Code cases: each test's spec and assignment (``tests_as_code.py``).
    cases: dict[str, tuple[ScenarioSpec, Assignment]] = field(default_factory=dict)
    #: Under --cekura-dry-run with cases: Cekura's plan, one line per case and the total.
    case_plan: list[str] | None = None

    def to_manifest(self) -> Manifest:
        """What the submitting xdist worker shares: every test's assignment (Tests-as-Code
        cases with theirs), preflight's warnings, the cases' plan."""
        assignments = {nodeid: a.to_json() for nodeid, a in self.assignments.items()}
        cases = assignments_to_json(self.cases)
        return Manifest(assignments, list(self.warnings), cases=cases, case_plan=self.case_plan)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Started:
        assignments = {n: Assignment.from_json(a) for n, a in manifest.assignments.items()}
        cases = assignments_from_json(manifest.cases)
        return cls(assignments, list(manifest.warnings), cases=cases, case_plan=manifest.case_plan)


def check_budget(groups: Sequence[Group], limit: int | None, *, dry_run: bool = False) -> None:
    """Refuse a session that would start more calls than --cekura-max-runs allows."""
    calls = sum(group.run_count for group in groups)
    if limit is not None and calls > limit:
        refused = "dry run: the real run would be refused: " if dry_run else ""
        raise ConfigError(
            f"pytest-cekura: {refused}this session would start {calls} calls in {len(groups)} "
            f"request(s), more than the limit of {limit} (--cekura-max-runs / "
            "cekura_max_runs). Nothing was started: select fewer tests with -k or -m, or "
            "raise the limit."
        )


class Starter:
    """Preflight, budget check and POSTs for one session, inside its deadline."""

    def __init__(
        self,
        settings: Settings,
        session_id: str,
        client: CekuraClient,
        *,
        ledger: Ledger,
        deadline: float | None,
        result_cache: ResultCache | None,
        modify_request: ModifyRequest | None,
        on_progress: Callable[[int, int, float], None] | None,
    ) -> None:
        self._settings = settings
        self._session_id = session_id
        self._client = client
        self._ledger = ledger
        self._until = deadline if deadline is not None else math.inf
        self._result_cache = result_cache
        self._modify_request = modify_request
        self._on_progress = on_progress
        self._own_agents: dict[int, int | None] = {}
        self._warnings: list[str] = []

    def start(self, specs: Mapping[str, ScenarioSpec]) -> Started:
        """Raises ``ConfigError`` for the session."""
        try:
            excluded: dict[str, Assignment] = {}
            if self._settings.preflight:
                checked = _in_threads([lambda: self._preflight(specs)], 1, self._until)
                if checked[0] is None:
                    raise ConfigError(PREFLIGHT_TOO_SLOW.format(timeout=self._settings.timeout))
                specs, excluded = _value(checked[0])
            groups = plan_groups(specs.values(), self._session_id)
            check_budget(groups, self._settings.max_runs)
            assignments = {**excluded, **self._post(groups, specs)}
        except AuthError as exc:
            # The ledger knows every POST answered with a result, and every one not answered.
            outcome = NOTHING_STARTED if self._ledger.empty else MAYBE_STARTED
            message = AUTH_FAILED.format(error=exc, env=ENV_API_KEY, url_env=ENV_API_URL)
            raise ConfigError(message + outcome.format(session_id=self._session_id)) from None
        return Started(assignments, list(self._warnings), dict(self._own_agents))

    def _preflight(
        self, specs: Mapping[str, ScenarioSpec]
    ) -> tuple[dict[str, ScenarioSpec], dict[str, Assignment]]:
        """Drop tests whose scenarios do not exist (they error alone); check the agents."""
        client = self._client
        found = check_scenarios(
            client,
            (s for spec in specs.values() for s in spec.scenario_ids),
            agents={spec.agent for spec in specs.values()},
        )
        if found.unreachable is not None:
            # Every POST would fail the same way after its own retries: stop the session here.
            raise ConfigError(unreachable(client, str(found.unreachable)))
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
        self._warnings = check_agents(client, kept.values(), found.own_agents)
        return kept, excluded

    def _from_earlier(self, group: Group, gated: Sequence[ScenarioSpec] = ()) -> Submission | None:
        """Build on this group's last result: reuse it if every run succeeded and held the
        metric gates of the ``gated`` tests that use it (--cekura-reuse), or rerun only its
        failed runs (--cekura-rerun-failed)."""
        settings = self._settings
        client = self._client
        wanted = settings.reuse_seconds is not None or settings.rerun_failed
        if not wanted or self._result_cache is None:
            return None
        max_age = settings.reuse_seconds if settings.reuse_seconds is not None else math.inf
        remembered = self._result_cache.recall(group, client.base_url, max_age)
        if remembered is None:
            return None
        snapshots = client.get_all_runs(remembered.run_ids)
        if not len(snapshots) == len(remembered.run_ids) == group.run_count:
            return None  # not a whole result of this exact shape: pay for a fresh one
        runs = [snapshot.run() for snapshot in snapshots]
        if all(run.succeeded for run in runs):
            if _breaks_gates(gated, runs):
                # After a fix (say, to latency) the calls must run again, as for failed runs.
                return None
            return Submission(
                group,
                result_id=remembered.result_id,
                runs_by_scenario=by_scenario(runs),
                reused_age=self._result_cache.age(remembered),
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
            ledger=self._ledger,
            sleep=sleep,
            modify=self._modify_request,
        )

    def _post(
        self, groups: list[Group], specs: Mapping[str, ScenarioSpec]
    ) -> dict[str, Assignment]:
        """Post every group within the session's deadline: the first alone (a rejected key
        then costs one request, and proves nothing started), the rest ``SUBMIT_CONCURRENCY``
        at a time. A group not answered by the deadline errors; its result, if Cekura
        created one, is looked up and its calls ended when the session ends."""
        client = self._client

        def task(group: Group) -> Callable[[], Submission]:
            # Cekura files a result under the request's agent, else the first scenario's own.
            agent = group.key.agent or self._own_agents.get(group.scenario_ids[0])
            gated = [s for s in specs.values() if s.gates and s.group_key == group.key]
            return lambda: (
                self._from_earlier(group, gated)
                or submit_group(
                    client,
                    group,
                    result_agent=agent,
                    ledger=self._ledger,
                    deadline=self._until,
                    sleep=sleep,
                    modify=self._modify_request,
                )
            )

        tasks = [task(group) for group in groups]
        started = time.monotonic()
        total = len(groups)

        def progress(done: int) -> None:
            if self._on_progress is not None:
                self._on_progress(done, total, time.monotonic() - started)

        outcomes = _in_threads(tasks[:1], 1, self._until, progress)
        # A first request rejected for the key, or not answered in time, says the rest would
        # fare no better: they are not sent.
        first = outcomes[0] if outcomes else None
        if isinstance(first, Submission) and first.unreachable is not None:
            # Nobody listens at the URL (checked here too when preflight is off): every other
            # POST would wait out the same retries only to fail the same way.
            raise ConfigError(unreachable(client, first.unreachable))
        if first is not None and not isinstance(first, AuthError | ConfigError):
            outcomes += _in_threads(
                tasks[1:], SUBMIT_CONCURRENCY, self._until, lambda n: progress(1 + n)
            )
        outcomes += [None] * (len(tasks) - len(outcomes))
        submissions: dict[GroupKey, Submission] = {}
        for group, outcome in zip(groups, outcomes, strict=False):
            submission = self._settle(group, outcome)
            result_id = submission.result_id
            if submission.reused_age is None and result_id is not None and self._result_cache:
                run_ids = [r.id for runs in submission.runs_by_scenario.values() for r in runs]
                self._result_cache.remember(group, client.base_url, result_id, run_ids)
            submissions[group.key] = submission
        return {
            nodeid: _assign(submissions[spec.group_key], spec) for nodeid, spec in specs.items()
        }

    def _settle(self, group: Group, outcome: Submission | BaseException | None) -> Submission:
        """One group's submission from what its thread produced; session errors re-raised."""
        timeout = self._settings.timeout
        if isinstance(outcome, Submission):
            return outcome
        if isinstance(outcome, AuthError | ConfigError):
            raise outcome
        if outcome is None:
            if self._ledger.in_flight(group.name):
                provider = group.key.provider
                text = NO_ANSWER if PROVIDERS[provider].takes_name else NO_ANSWER_NAMELESS
                error = text.format(timeout=timeout, name=group.name, provider=provider)
                return Submission(group, error=error, ambiguous=True)
            return Submission(group, error=NOT_SENT.format(timeout=timeout))
        # Anything else is one group's failure: its tests error, the other groups go on, and
        # the ledger still ends whatever it started.
        error = f"submitting this group failed: {type(outcome).__name__}: {outcome}"
        return Submission(group, error=error, ambiguous=self._ledger.in_flight(group.name))


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


def unreachable(client: CekuraClient, error: str) -> str:
    # "GET /path failed (ConnectError: ...)": the path adds nothing to the message.
    reason = error.partition(" failed (")[2].removesuffix(")") or error
    return UNREACHABLE.format(url=client.base_url, error=reason)


def _breaks_gates(specs: Sequence[ScenarioSpec], runs: Sequence[Run]) -> bool:
    """Some test's metric gates are broken by its runs among ``runs``."""
    for spec in specs:
        own = [run for run in runs if run.scenario in spec.scenario_ids]
        if any(result.broken for result in check_gates(spec.gates, own)):
            return True
    return False


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
