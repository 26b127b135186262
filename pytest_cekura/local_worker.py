"""The session's local agent worker (``--cekura-agent-cmd``): the LiveKit agent name it
registers under, where its output goes, and starting it once per test run.

Imported by ``plugin.py`` only when ``--cekura-agent-cmd`` is given; the worker process code
(``worker.py``) loads only when a worker is started.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import ConfigError
from .options import Settings
from .xdist import Serial

if TYPE_CHECKING:
    from .pluginstate import _State


def own_worker_name(config: pytest.Config, settings: Settings) -> Settings:
    """With --cekura-agent-cmd, the session's own LiveKit agent name: the worker is started
    under it and every LiveKit request dispatches to it (livekit_data.agent_name), so the calls
    reach this worker alone and it joins no other pool. Chosen once, by the controller."""
    if settings.agent_cmd is None or settings.provider != "livekit":
        return settings
    from .options import DEFAULT_AGENT_NAME_BASE, LOCAL_WORKER_CONCURRENCY

    # One machine serves every call: a small default, unless a limit was given.
    limit = settings.concurrency_limit or LOCAL_WORKER_CONCURRENCY
    # An xdist worker takes the controller's (xdist.Controller.pytest_configure_node).
    given = getattr(config, "workerinput", {}).get("cekura_livekit_agent_name")
    if given:
        return settings.replace(livekit_agent_name=str(given), concurrency_limit=limit)
    if settings.livekit_agent_name is not None:
        raise ConfigError(
            "pytest-cekura: --cekura-agent-cmd starts a worker under a LiveKit agent name of "
            "the session's own, and --cekura-livekit-agent-name (or CEKURA_LIVEKIT_AGENT_NAME) "
            f"{settings.livekit_agent_name!r} dispatches the calls to a worker that is already "
            "running: give one of them (the first to test a local worker, the second for a "
            "deployed preview)"
        )
    import secrets

    base = settings.agent_name_base or saved_name_base(config, settings) or DEFAULT_AGENT_NAME_BASE
    name = f"{base}-pytest-{secrets.token_hex(4)}"
    return settings.replace(livekit_agent_name=name, concurrency_limit=limit)


def saved_name_base(config: pytest.Config, settings: Settings) -> str | None:
    """The session agent's saved LiveKit agent name (production's), as the base of the
    session's own name, so the test worker is recognisably the agent's: ``pharmacy-agent``
    gives ``pharmacy-agent-pytest-<id>``. Looked up once, before the worker starts.

    None (the default base is used) without a session agent (``--cekura-agent``), when no
    worker will start (``--collect-only``, ``--cekura-dry-run``), without an API key, or when
    the look-up fails: the name only labels the worker, and the preflight reports an agent
    that cannot be found.
    """
    if settings.agent is None or settings.dry_run or config.option.collectonly:
        return None
    import re

    from .connection import Connection
    from .errors import CekuraError

    connection = Connection(settings)
    try:
        if settings.emulator:  # the catalogue says it: no emulator is started for this
            from .emulator import Catalogue

            catalogue = connection.emulator_catalogue() or Catalogue()
            saved = catalogue.agent(settings.agent).livekit_agent_name
        else:
            saved = connection.client().get_agent(settings.agent).livekit_agent_name
    except CekuraError:
        return None
    finally:
        connection.close()
    # Kept to what --cekura-agent-name-base accepts (values.agent_name_base).
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", saved or "").strip("-._")[:64]
    return base or None


def worker_log(config: pytest.Config, settings: Settings, role: Serial) -> Path | None:
    """Where the agent worker's output goes, in every process (an xdist worker is told the
    controller's)."""
    if settings.agent_cmd is None:
        return None
    given = role.agent_log
    if given is not None:
        return given
    cache = getattr(config, "cache", None)
    # In pytest's cache folder the log is overwritten by the next session instead of piling up
    # in the temp folder; without the cache provider, a temp folder it is.
    folder = (
        cache.mkdir("cekura") if cache is not None else Path(tempfile.mkdtemp(prefix="cekura-"))
    )
    return folder / "agent-worker.log"


def start_worker(state: _State) -> None:
    """Start the user's agent worker and wait until it is ready (once per test run)."""
    settings = state.settings
    if state.worker is not None or settings.agent_cmd is None or state.worker_log is None:
        return
    from .worker import DEFAULT_READY_PATTERN, AgentWorker, WorkerError, WorkerSpec

    spec = WorkerSpec(
        settings.agent_cmd,
        log_path=state.worker_log,
        ready_pattern=settings.agent_ready or DEFAULT_READY_PATTERN,
        ready_timeout=settings.agent_ready_timeout,
        agent_name=settings.livekit_agent_name if settings.provider == "livekit" else None,
        agent_name_env=settings.agent_name_env,
        production_name=lambda: _saved_agent_name(state),
    )
    state.worker = AgentWorker(spec)
    try:
        state.worker.start()
        state.worker.wait_ready()
    except WorkerError as exc:
        raise pytest.UsageError(f"pytest-cekura: nothing was submitted. {exc}") from None


def _saved_agent_name(state: _State) -> str | None:
    """The LiveKit agent name saved on --cekura-agent's agent (production's), asked only to
    word the refusal of a worker that registered under another name than the session's."""
    if state.settings.agent is None:
        return None
    return state.cekura().connection.client().get_agent(state.settings.agent).livekit_agent_name
