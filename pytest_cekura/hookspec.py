"""Hooks a ``conftest.py`` (or another plugin) may implement; registered by ``pytest_addhooks``.

The pattern of pytest-xdist's ``newhooks.py``: the specifications live in a module of their
own, and the plugin calls them through ``config.hook``. See docs/architecture.md ("Hooks").
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from .secret import Secret, redact

if TYPE_CHECKING:
    from .models import CekuraResult

#: What the submission code calls for each run-starting request body, just before its POST:
#: ``(provider, body)``; it changes ``body`` in place or raises ``HookError``.
ModifyRequest = Callable[[str, dict[str, Any]], None]


@pytest.hookspec
def pytest_cekura_modify_request(
    config: pytest.Config, provider: str, body: dict[str, Any]
) -> None:
    """Adjust a run-starting request body in place, just before it is POSTed.

    Called once for each request that starts calls (one per group of tests sharing a request
    shape, and one per ``--cekura-rerun-failed`` request), never for a dry run, a reused
    result or ``--collect-only``. ``provider`` is the marker's provider (``"livekit"``,
    ``"vapi"``, ...); ``body`` is the JSON object about to be sent (cekura-api.md section 2).
    Tests-as-Code requests (``run_scenarios_json``: ``spec`` holds the suite document) get it
    before they are validated and priced, so also in a dry run and before a reuse; their cases
    must keep their ``key``s and order.
    The body never holds the API key (it travels in a header the hook does not see).

    Change ``body`` in place and return None. Its ``"name"`` must stay as it is: it is how
    the session finds the result if the answer is lost. It may be called from a submission
    thread, concurrently for different requests. If it raises, the requests it was called
    for are not sent and their tests error with the hook's exception.
    """


@pytest.hookspec
def pytest_cekura_runs_final(item: pytest.Item, result: CekuraResult) -> None:
    """Called once per Cekura test when its runs are final (finished, ended or given up on),
    before the test's own body runs and before its verdict is reported.

    ``result`` is what the ``cekura_result`` fixture gives: the runs, their success rate and
    the result ids. Use it to export results to another system; return None. If it raises,
    the test errors with the hook's exception (the runs are not affected).
    """


class HookError(Exception):
    """A hook implementation raised, or broke the rules of its hook: the message says which."""


def hook_failure(name: str, exc: BaseException, api_key: Secret | None) -> str:
    """One line naming the hook, the exception and where it was raised (file:line); the key
    is redacted from the exception's text (a hook may have read the environment)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return redact(f"the {name} hook raised {type(exc).__name__}: {exc}{where}", api_key)


def request_modifier(config: pytest.Config, api_key: Secret | None) -> ModifyRequest:
    """The ``pytest_cekura_modify_request`` hook as the submission code calls it. ``api_key``
    is only redacted from a failing hook's message; the hook never gets it."""

    def modify(provider: str, body: dict[str, Any]) -> None:
        # Looked up at each call, not once: a conftest.py in a sub-folder registers its
        # hooks during collection, after the session may have been created.
        hook = config.hook.pytest_cekura_modify_request
        if not hook.get_hookimpls():
            return
        name = body.get("name")
        try:
            returned = hook(config=config, provider=provider, body=body)
        except Exception as exc:
            raise HookError(hook_failure("pytest_cekura_modify_request", exc, api_key)) from None
        if any(value is not None for value in returned):
            raise HookError(
                "the pytest_cekura_modify_request hook returned a value: change the body "
                "in place and return None"
            )
        if body.get("name") != name:
            raise HookError(
                'the pytest_cekura_modify_request hook changed the request\'s "name": leave '
                "it as it is (the session finds the result by it if the answer is lost)"
            )

    return modify
