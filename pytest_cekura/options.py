"""Command-line options, ini keys and environment variables, resolved once into ``Settings``.

Each option is declared once, as a typed ``Option[T]`` attribute of ``Settings``: its flag, ini
key, environment variable, help, the command line's ``choices`` and the parser that turns the
raw value into the ``T`` the attribute gives (checked by mypy). ``add_options`` registers them
all and ``Settings.from_config`` resolves them all; adding an option touches ``Settings`` alone.

Precedence for every setting: command line > environment variable > ini key > default.
The API key is read from the environment only: a command-line value would show up in process
listings and in pytest's own "invocation params".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import values as v
from .errors import ConfigError
from .markers import MAX_ID, MarkerDefaults
from .option import Option as Option  # re-exported: tests and callers import it here
from .order import ORDERS
from .providers import DEFAULT_BASE_URL, PROVIDERS
from .secret import Secret, refuse_in_values
from .values import ENV_API_KEY as ENV_API_KEY  # re-exported: the API key's variable

ENV_API_URL = "CEKURA_API_URL"
ENV_AGENT_ID = "CEKURA_AGENT_ID"
ENV_CONCURRENCY_LIMIT = "CEKURA_CONCURRENCY_LIMIT"
ENV_LIVEKIT_AGENT_NAME = "CEKURA_LIVEKIT_AGENT_NAME"
ENV_LIVEKIT_URL = "CEKURA_LIVEKIT_URL"
DEFAULT_POLL_INTERVAL = 5.0  # what Cekura's own CLI uses
DEFAULT_TIMEOUT = 3600.0  # Cekura's CLI default for --wait
EMULATOR_POLL_INTERVAL = 0.1
EMULATOR_TIMEOUT = 60.0
DEFAULT_TIME_SCALE = 0.01  # a 30 s emulated call takes 0.3 s
DEFAULT_AGENT_READY_TIMEOUT = 60.0
#: The start of a local worker's agent name when neither the options nor the agent give one.
DEFAULT_AGENT_NAME_BASE = "cekura-agent"
#: ``concurrency_limit`` when pytest starts the worker and none is given: one machine serves
#: every call of the session, and more calls than it can take would fail on its side.
LOCAL_WORKER_CONCURRENCY = 3
DEFAULT_TOLERANCE = 0.1
DEFAULT_REQUEST_TIMEOUT = 30.0
#: Where Cekura's dashboard shows a run (cekura-api.md 10.1: a result is
#: ``{project_id}/results/{result_id}``, a run adds ``?call_id={run_id}``); overridable.
DEFAULT_DASHBOARD_URL = (
    "https://dashboard.cekura.ai/{project_id}/results/{result_id}?call_id={run_id}"
)


class Settings:
    """Every setting, resolved: each ``Option`` attribute reads as its parsed value.

    Built by ``from_config`` (or ``resolve``); read-only. The attribute order is the order of
    ``--help`` and of validation.
    """

    base_url = Option[str](
        "--cekura-url",
        f"Base URL of the Cekura API (env {ENV_API_URL}; default {DEFAULT_BASE_URL}).",
        lambda value, source, _: DEFAULT_BASE_URL if value is None else v.api_url(value, source),
        env=ENV_API_URL,
        metavar="URL",
    )
    provider = Option[str](
        "--cekura-provider",
        f"Default provider for markers that give none: {', '.join(PROVIDERS)} (default livekit).",
        lambda value, source, _: v.choice(value, source, choices=PROVIDERS, default="livekit"),
        metavar="NAME",
        choices=tuple(PROVIDERS),
    )
    agent = Option[int | None](
        "--cekura-agent",
        f"Default Cekura agent id for markers that give none (env {ENV_AGENT_ID}); without it "
        "each scenario's own agent is used.",
        lambda value, source, _: v.cekura_id(value, source, what="agent"),
        env=ENV_AGENT_ID,
        metavar="ID",
    )
    concurrency_limit = Option[int | None](
        "--cekura-concurrency-limit",
        f"Most calls Cekura may run at once for each request (env {ENV_CONCURRENCY_LIMIT}); "
        "default: Cekura's plan limit. A marker's concurrency_limit= overrides it.",
        lambda value, source, _: v.positive_int(value, source, maximum=MAX_ID),
        env=ENV_CONCURRENCY_LIMIT,
        metavar="N",
    )
    mock_tool_names = Option[tuple[str, ...] | None](
        "--cekura-mock-tool-names",
        "Comma-separated tool names Cekura answers with mocks instead of calling your tools "
        "(mock_tool_names); a marker's mock_tool_names= overrides it.",
        lambda value, source, _: v.tool_names(value, source),
        metavar="NAMES",
    )
    livekit_agent_name = Option[str | None](
        "--cekura-livekit-agent-name",
        "LiveKit v2: dispatch every call to the LiveKit agent of this name (livekit_data."
        f"agent_name; env {ENV_LIVEKIT_AGENT_NAME}), e.g. a pull request's own worker.",
        lambda value, source, _: v.livekit_agent_name(value, source),
        env=ENV_LIVEKIT_AGENT_NAME,
        metavar="NAME",
    )
    livekit_url = Option[str | None](
        "--cekura-livekit-url",
        f"LiveKit v2: the LiveKit server URL for the calls (livekit_data.url; env "
        f"{ENV_LIVEKIT_URL}), instead of the one saved on the agent.",
        lambda value, source, _: v.livekit_server_url(value, source),
        env=ENV_LIVEKIT_URL,
        metavar="URL",
    )
    livekit_config = Option[dict[str, Any] | None](
        "--cekura-livekit-config",
        "LiveKit v2: a JSON object (or the path of a JSON file) that replaces the agent's saved "
        "LiveKit Config, i.e. the room metadata your agent receives (livekit_data.config).",
        v.livekit_config,
        metavar="JSON|PATH",
    )
    preflight = Option[bool](
        "--cekura-no-preflight",
        "Skip the checks made before any run is started (scenarios exist, the agent's LiveKit "
        "settings are complete). Ini: cekura_preflight = false.",
        v.switch,
        ini="cekura_preflight",
        switch=False,
    )
    dry_run = Option[bool](
        "--cekura-dry-run",
        "Show what would be submitted (groups, scenarios, number of calls) and start nothing.",
        v.switch,
        switch=True,
    )
    max_runs = Option[int | None](
        "--cekura-max-runs",
        "Refuse to start a session that would start more than N calls.",
        lambda value, source, _: v.positive_int(value, source),
        metavar="N",
    )
    max_cost = Option[float | None](
        "--cekura-max-cost",
        "Refuse to start Tests-as-Code cases whose estimated cost (Cekura's plan, in credits) "
        "is more than N.",
        lambda value, source, _: v.credits(value, source),
        metavar="N",
    )
    report_path = Option[Path | None](
        "--cekura-report",
        "Write a JSON report of every group, result and run to PATH.",
        v.output,
        metavar="PATH",
    )
    summary_md_path = Option[Path | None](
        "--cekura-summary-md",
        "Write a Markdown summary (a table of tests with verdict, runs passed and reason, then "
        "links to failing runs) to PATH, e.g. for a sticky pull-request comment.",
        v.output,
        metavar="PATH",
    )
    html_path = Option[Path | None](
        "--cekura-html",
        "Write one self-contained HTML report (charts, a card per test with its transcript, "
        "recording player, metrics and links; no network needed to view it) to PATH.",
        v.output,
        metavar="PATH",
    )
    step_summary = Option[bool](
        "--cekura-no-step-summary",
        "Under GitHub Actions, do not append the Markdown summary to $GITHUB_STEP_SUMMARY (the "
        "job summary). Ini: cekura_step_summary = false.",
        v.switch,
        ini="cekura_step_summary",
        switch=False,
    )
    share_links_days = Option[int | None](
        "--cekura-share-links",
        "Create a shareable link to each result once its runs are done (valid DAYS days, "
        f"default {v.DEFAULT_SHARE_DAYS}) and use it in the Markdown summary and JSON report. "
        "Anyone with a link can read the transcripts and hear the recordings: never on a "
        "public repository.",
        lambda value, source, _: v.share_days(value, source),
        metavar="DAYS",
        optional_value=str(v.DEFAULT_SHARE_DAYS),
    )
    early_verdict = Option[bool](
        "--cekura-early-verdict",
        "Decide a test as soon as its remaining runs cannot change the outcome, and end those "
        "calls to save money.",
        v.switch,
        switch=True,
    )
    confidence = Option[float | None](
        "--cekura-confidence",
        "Statistical gate: pass when the Wilson lower bound of the success rate at this "
        "one-sided confidence (e.g. 0.95) reaches min_success_rate.",
        lambda value, source, _: v.fraction(value, source, default=None, open_interval=True),
        metavar="LEVEL",
    )
    gates = Option[v.Gates](
        "--cekura-gates",
        'Metric gates for every Cekura test, e.g. "Latency: p95 <= 1200; Greeting: pass_rate '
        ">= 0.8\" (one per line in the ini file); a marker's gates= replaces them metric by "
        "metric.",
        lambda value, source, _: v.gates(value, source),
        metavar="GATES",
    )
    reuse_seconds = Option[float | None](
        "--cekura-reuse",
        "Reuse the newest completed result of the same scenarios and options if it is younger "
        "than DURATION (e.g. 90s, 30m, 1h, 2d) instead of starting new calls.",
        lambda value, source, _: v.duration(value, source),
        metavar="DURATION",
    )
    rerun_failed = Option[bool](
        "--cekura-rerun-failed",
        "Ask Cekura to rerun only the failed runs of each group's previous result (keeping its "
        "successful ones) instead of starting every call again.",
        v.switch,
        switch=True,
    )
    baseline_path = Option[Path | None](
        "--cekura-baseline",
        "Write each Cekura test's success rate to PATH (JSON), to commit as a baseline.",
        v.output,
        metavar="PATH",
    )
    compare_path = Option[Path | None](
        "--cekura-compare",
        "Compare with a baseline file: fail only tests whose success rate fell by more than "
        "the tolerance, and print the differences.",
        lambda value, source, ctx: v.input_path(value, source, ctx.ini_dir, kind="JSON baseline"),
        metavar="PATH",
    )
    tolerance = Option[float](
        "--cekura-tolerance",
        f"How far a success rate may fall below the baseline (default {DEFAULT_TOLERANCE:g}).",
        lambda value, source, _: v.fraction(value, source, default=DEFAULT_TOLERANCE) or 0.0,
        metavar="FRACTION",
    )
    order = Option[str](
        "--cekura-order",
        "Order in which tests run: 'collection' (pytest's, the default) or 'finish' (tests "
        "that need no waiting first, each Cekura test as soon as its runs are done).",
        lambda value, source, _: v.choice(value, source, choices=ORDERS, default="collection"),
        metavar="ORDER",
        choices=tuple(ORDERS),
    )
    poll_interval = Option[float](
        "--cekura-poll-interval",
        f"Seconds between polls for run status (default {DEFAULT_POLL_INTERVAL:g}, "
        f"{EMULATOR_POLL_INTERVAL:g} on the emulator).",
        v.seconds(DEFAULT_POLL_INTERVAL, EMULATOR_POLL_INTERVAL),
        metavar="SECONDS",
    )
    timeout = Option[float](
        "--cekura-timeout",
        f"Seconds to wait, from submission, for all runs to finish (default {DEFAULT_TIMEOUT:g}, "
        f"{EMULATOR_TIMEOUT:g} on the emulator). Unfinished runs make their tests error.",
        v.seconds(DEFAULT_TIMEOUT, EMULATOR_TIMEOUT),
        metavar="SECONDS",
    )
    request_timeout = Option[float](
        "--cekura-request-timeout",
        f"Seconds to wait for each API answer (default {DEFAULT_REQUEST_TIMEOUT:g}); a "
        "run-starting request that times out is looked up by name, never sent again.",
        v.seconds(DEFAULT_REQUEST_TIMEOUT),
        metavar="SECONDS",
    )
    dashboard_url = Option[str](
        "--cekura-dashboard-url",
        "Link template for a run in Cekura's web app, with {project_id}, {result_id} and {run_id}.",
        lambda value, source, _: (
            DEFAULT_DASHBOARD_URL if value is None else v.dashboard_template(value, source)
        ),
        metavar="TEMPLATE",
    )
    agent_cmd = Option[str | None](
        "--cekura-agent-cmd",
        "Start your agent worker with this command before any run is started, wait until it "
        "is ready, and stop it at the end, e.g. 'python agent.py dev'.",
        lambda value, source, _: v.command(value, source),
        metavar="COMMAND",
    )
    agent_ready = Option[str | None](
        "--cekura-agent-ready",
        "Regular expression matching the line the agent worker prints once it is ready "
        "(default: LiveKit Agents' 'registered worker').",
        lambda value, source, _: v.regex(value, source),
        metavar="REGEX",
    )
    agent_ready_timeout = Option[float](
        "--cekura-agent-ready-timeout",
        f"Seconds to wait for the agent worker to be ready (default "
        f"{DEFAULT_AGENT_READY_TIMEOUT:g}).",
        v.seconds(DEFAULT_AGENT_READY_TIMEOUT),
        metavar="SECONDS",
    )
    agent_name_base = Option[str | None](
        "--cekura-agent-name-base",
        "With --cekura-agent-cmd: the start of the worker's own LiveKit agent name, "
        "<base>-pytest-<id>, unique to the session (default: the agent's saved LiveKit agent "
        f"name, else {DEFAULT_AGENT_NAME_BASE}).",
        lambda value, source, _: v.agent_name_base(value, source),
        metavar="BASE",
    )
    agent_name_env = Option[str](
        "--cekura-agent-name-env",
        "With --cekura-agent-cmd: the environment variable the worker reads its agent name "
        "from, set to the session's name besides LIVEKIT_AGENT_NAME_OVERRIDE (default "
        "LIVEKIT_AGENT_NAME).",
        lambda value, source, _: v.env_name(value, source, default="LIVEKIT_AGENT_NAME"),
        metavar="NAME",
    )
    emulator = Option[bool](
        "--cekura-emulator",
        "Run Cekura tests against the built-in emulator: offline, free, no API key needed.",
        v.switch,
        switch=True,
    )
    emulator_catalogue = Option[Path | None](
        "--cekura-emulator-catalogue",
        "TOML file describing the emulator's scenarios, agents and test profiles.",
        lambda value, source, ctx: v.input_path(value, source, ctx.ini_dir, kind="TOML catalogue"),
        metavar="PATH",
    )
    emulator_time_scale = Option[float](
        "--cekura-emulator-time-scale",
        f"Real seconds per emulated second of a call (default {DEFAULT_TIME_SCALE}).",
        lambda value, source, _: v.positive(
            value,
            source,
            default=DEFAULT_TIME_SCALE,
            unit="real seconds per emulated second, e.g. 0.01",
        ),
        metavar="FACTOR",
    )

    __slots__ = ("_values", "api_key")
    _values: dict[str, Any]
    #: From the environment only (never an option): see the module's docstring.
    api_key: Secret | None

    def __init__(self, values: Mapping[str, Any], api_key: Secret | None) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "api_key", api_key)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Settings are read-only: {name}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"Settings({shown}, api_key={self.api_key!r})"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some resolved values replaced (e.g. the session's own LiveKit agent
        name once ``--cekura-agent-cmd`` has chosen it)."""
        unknown = set(changes) - set(self._values)
        if unknown:
            raise AttributeError(f"no such setting: {', '.join(sorted(unknown))}")
        return Settings({**self._values, **changes}, self.api_key)

    @property
    def livekit_data(self) -> dict[str, Any]:
        """The session's ``livekit_data`` keys (LiveKit v2 only); a marker's keys override."""
        data: dict[str, Any] = {}
        if self.livekit_agent_name is not None:
            data["agent_name"] = self.livekit_agent_name
        if self.livekit_url is not None:
            data["url"] = self.livekit_url
        if self.livekit_config is not None:
            data["config"] = self.livekit_config
        return data

    def marker_defaults(self) -> MarkerDefaults:
        """What a ``cekura_scenario`` marker gets for each argument it leaves out."""
        return MarkerDefaults(
            self.provider,
            self.agent,
            self.concurrency_limit,
            self.mock_tool_names,
            self.livekit_data,
            self.gates,
        )

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        return resolve(
            cli=lambda opt: config.getoption(opt.dest),
            ini=lambda opt: _getini(config, opt),
            env=os.environ,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
        )


#: Every option, in declaration (and ``--help``) order.
OPTIONS: tuple[Option[Any], ...] = tuple(
    attr for attr in vars(Settings).values() if isinstance(attr, Option)
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cekura", "Cekura voice-agent scenarios")
    for opt in OPTIONS:
        opt.register(group, parser)


def resolve(
    *,
    cli: Callable[[Option[Any]], Any],
    ini: Callable[[Option[Any]], Any],
    env: Mapping[str, str],
    ini_dir: Path,
) -> Settings:
    """Merge the sources by precedence and validate; raise ``ConfigError`` on a bad value."""
    raw = {opt.name: opt.pick(cli(opt), ini(opt), env) for opt in OPTIONS}
    emulator = Settings.emulator.parse(*raw[Settings.emulator.name], v.Context(ini_dir, False))
    key = env.get(ENV_API_KEY, "").strip()
    if key and not emulator:  # the emulator never uses the user's key
        v.check_key(key)
    context = v.Context(ini_dir, emulator)
    parsed = {opt.name: opt.parse(*raw[opt.name], context) for opt in OPTIONS}
    secret = Secret(key) if key else None
    if secret is not None and not emulator:
        # The header, the reports and their links print option values as given (a URL, a
        # dashboard template, a worker command): the key must not travel inside one of them.
        given = ((raw[opt.name][1], parsed[opt.name]) for opt in OPTIONS)
        refuse_in_values(given, secret, ENV_API_KEY)
    return Settings(parsed, secret)


def _getini(config: pytest.Config, opt: Option[Any]) -> Any:
    try:
        return config.getini(opt.ini)
    except (ValueError, pytest.UsageError) as exc:
        # pytest's own error for a bad bool ("invalid truth value 'maybe'") names no key
        # (a ValueError before pytest 9, a UsageError since); it names the value.
        raise ConfigError(
            f"ini key {opt.ini} is invalid ({exc}): use true or false"
            + (f" (or {opt.flag} on the command line)" if opt.switch is not None else "")
        ) from None
