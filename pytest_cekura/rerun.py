"""``--cekura-rerun-failed`` for marked tests: the failed scenarios of an earlier result
started again, in the group's own request shape, while its passed runs are kept.

Cekura's ``results/{id}/rerun/`` takes no body and re-executes *every* scenario of the result,
billed per run (cekura-api.md 10.1), so it is never used: the run endpoint is, through
``submit.post_resolved`` like any other start. Which result is rerun is ``reuse.py``'s and
``starter.py``'s choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from .cleanup import Ledger
from .client import CekuraClient
from .hookspec import HookError, ModifyRequest
from .models import Run
from .submit import Group, Submission, by_scenario, post_resolved, request_body


def rerun_failed(
    client: CekuraClient,
    group: Group,
    earlier: int,
    kept: Sequence[Run],
    failed: Sequence[Run],
    *,
    ledger: Ledger | None = None,
    sleep: Callable[[float], None] = time.sleep,
    modify: ModifyRequest | None = None,
) -> Submission:
    """Start the scenarios of the ``failed`` runs of result ``earlier`` again, through the run
    endpoint and in the group's own request shape; keep the ``kept`` runs.

    Cekura's ``results/{id}/rerun/`` takes no body and re-executes *every* scenario of the
    result, billed per run (cekura-api.md 10.1), so it is never used. ``frequency`` applies to
    a whole request, so scenarios that lost a different number of runs go in separate requests
    (one request when every failed scenario lost as many runs, as with ``frequency=1``). Each
    request has its own unique name, so an ambiguous failure is resolved by name like any
    other start.
    """
    lost: dict[int, int] = {}
    for run in failed:
        if run.scenario is None:
            return Submission(
                group,
                error=f"run {run.id} of result {earlier} names no scenario, so it cannot be "
                "started again; run without --cekura-rerun-failed",
            )
        lost[run.scenario] = lost.get(run.scenario, 0) + 1
    by_count: dict[int, list[int]] = {}
    for scenario_id in group.scenario_ids:  # the group's order, so requests are stable
        if scenario_id in lost:
            by_count.setdefault(lost[scenario_id], []).append(scenario_id)
    started: list[Submission] = []
    for count, scenario_ids in sorted(by_count.items()):
        sub = Group(
            replace(group.key, frequency=count),
            tuple(scenario_ids),
            f"{group.name} rerun x{count}" if len(by_count) > 1 else f"{group.name} rerun",
        )
        body = request_body(sub)
        try:
            if modify is not None:
                modify(sub.key.provider, body)
        except HookError as exc:
            submission = Submission(sub, error=f"{exc}. This request was not sent.")
        else:
            submission = post_resolved(
                client,
                sub,
                partial(client.start_runs, sub.key.provider, body),
                result_agent=group.key.agent,
                sleep=sleep,
                ledger=ledger,
            )
        if submission.error is not None:
            done = ", ".join(str(s.result_id) for s in started)
            also = f" (result(s) {done} started the other failed scenarios)" if done else ""
            error = submission.error + also
            return Submission(group, error=error, ambiguous=submission.ambiguous)
        started.append(submission)
    new = [run for s in started for runs in s.runs_by_scenario.values() for run in runs]
    return Submission(
        group,
        result_id=started[0].result_id if started else earlier,
        runs_by_scenario=by_scenario([*kept, *new]),
        earlier_result_id=earlier,
        earlier_run_ids=frozenset(run.id for run in kept),
    )


__all__ = ["rerun_failed"]
