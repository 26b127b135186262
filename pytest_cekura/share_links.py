"""``--cekura-share-links[=DAYS]``: a link to each of the session's results that anyone can open.

Opt-in only: anyone holding such a link reads the calls' transcripts and hears their
recordings without a Cekura account, for as long as the link is valid, so it must never be
posted where the public can see it (a public repository's pull requests or job pages). The
header says so whenever the option is on.

After the runs are done, the reporting process (the xdist controller, or the only process)
asks Cekura once per result for a token (``POST results/{id}/create_shareable_link_token/``
with ``{"expire_at": now + DAYS}``, cekura-api.md 10.1) and puts the link on every summary row
of that result, before the Markdown summary, JSON report and HTML report are written. A link
that cannot be made is a warning line, never a failed test: the summary then links to Cekura's
dashboard as it does without the option.

Imported and registered by ``plugin.py``'s ``pytest_configure`` only when the option is on
(the HTTP stack is imported only when links are made).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .pluginstate import _State, _state

if TYPE_CHECKING:
    from .client import CekuraClient
    from .report_data import SummaryRow

PLUGIN_NAME = "cekura-share-links"
#: Seconds all links together may take (retries included): they come before the session ends
#: calls left unfinished, and a slow Cekura must not hold that up.
SHARE_BUDGET = 20.0
#: What the header and the docs say about every shareable link.
EXPOSURE = (
    "anyone with a link can read the transcripts and hear the recordings of these calls "
    "without a Cekura account; never use it on a public repository"
)


def register(config: pytest.Config) -> None:
    """Register the hooks when ``--cekura-share-links`` is on (in every process: the header
    and the links are the reporting process's alone)."""
    state = _state(config)
    if state.settings.share_links_days is None:
        return
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        public = public_repository(os.environ)
        config.pluginmanager.register(ShareLinkHooks(state, public), PLUGIN_NAME)


def public_repository(env: Mapping[str, str]) -> str | None:
    """The repository the CI job runs for, named, when the CI system says it is public
    (GitHub Actions: the event's ``repository.visibility``/``private``; GitLab CI:
    ``CI_PROJECT_VISIBILITY``); None when it is not, or nothing says."""
    if env.get("CI_PROJECT_VISIBILITY", "").lower() == "public":
        return f"GitLab project {env.get('CI_PROJECT_PATH') or '(unnamed)'}"
    if env.get("GITHUB_ACTIONS", "").lower() != "true" or not env.get("GITHUB_EVENT_PATH"):
        return None
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
        repository = event["repository"]
        public = repository.get("visibility") == "public" or repository.get("private") is False
        name = str(repository.get("full_name") or env.get("GITHUB_REPOSITORY") or "(unnamed)")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # an event file we cannot read says nothing either way
    return f"GitHub repository {name}" if public else None


class ShareLinkHooks:
    def __init__(self, state: _State, public: str | None = None) -> None:
        self._state = state
        #: Set when the CI system says the repository is public: then no link is made.
        self._public = public

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        if self._public is not None:
            return [self._refusal()]
        days = self._state.settings.share_links_days
        return [
            f"cekura: shareable result links, valid {days} day(s) (--cekura-share-links): "
            + EXPOSURE
        ]

    def _refusal(self) -> str:
        return (
            f"cekura: --cekura-share-links makes no links: the {self._public} is public, so "
            "anyone could open them from its job summaries and comments and read the calls' "
            "transcripts and hear their recordings"
        )

    # First, so the reports the plugin writes at session finish carry the links.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self._state
        days = state.settings.share_links_days
        if days is None or not state.role.reports or not state.rows:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return  # ending the paid calls comes first, within CI's few seconds
        if self._public is not None:
            _warn(session.config, "pytest-" + self._refusal())
            return
        expire_at = datetime.now(UTC) + timedelta(days=days)
        links, problems = create_links(
            lambda: state.cekura().client(), _result_ids(state.rows), expire_at
        )
        for problem in problems:
            _warn(session.config, problem)
        for nodeid, row in list(state.rows_by_test.items()):
            link = links.get(row.result_id) if row.result_id is not None else None
            if link is not None:
                state.rows_by_test[nodeid] = dataclasses.replace(row, share_link=link)


def _result_ids(rows: Iterable[SummaryRow]) -> list[int]:
    """Each result a row names, once, in order of first appearance."""
    return list(dict.fromkeys(row.result_id for row in rows if row.result_id is not None))


def create_links(
    make_client: Callable[[], CekuraClient],
    result_ids: Iterable[int],
    expire_at: datetime,
    budget: float = SHARE_BUDGET,
) -> tuple[dict[int, str], list[str]]:
    """A shareable link per result, and a warning for each one that could not be made.
    ``make_client`` is called only when there is a result to share."""
    from .errors import CekuraError

    links: dict[int, str] = {}
    problems: list[str] = []
    deadline = time.monotonic() + budget
    pending = list(result_ids)
    for index, result_id in enumerate(pending):
        if time.monotonic() >= deadline:
            skipped = ", ".join(map(str, pending[index:]))
            problems.append(
                f"pytest-cekura warning: no shareable link for result(s) {skipped}: the "
                f"{budget:g} s allowed for links ran out; the summary links to Cekura's "
                "dashboard instead"
            )
            break
        try:
            client = make_client()
            links[result_id] = client.create_share_link(result_id, expire_at, deadline=deadline)
        except CekuraError as exc:
            problems.append(
                f"pytest-cekura warning: no shareable link for result {result_id} ({exc}); the "
                "summary links to Cekura's dashboard instead"
            )
    return links, problems


def _warn(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, yellow=True)
