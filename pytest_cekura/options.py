"""Command-line options, ini keys and environment variables, resolved once into ``Settings``.

Precedence for every setting: command line > environment variable > ini key > default.
The API key is read from the environment only: a command-line value would show up in process
listings and in pytest's own "invocation params".
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .errors import ConfigError
from .markers import MAX_ID, MarkerDefaults, livekit_url_problem
from .order import ORDERS
from .providers import DEFAULT_BASE_URL, PROVIDERS
from .secret import Secret

ENV_API_KEY = "CEKURA_API_KEY"
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
DEFAULT_TOLERANCE = 0.1
DEFAULT_REQUEST_TIMEOUT = 30.0
#: Where Cekura's dashboard shows a run (cekura-api.md 10.1: a result is
#: ``{project_id}/results/{result_id}``, a run adds ``?call_id={run_id}``); overridable.
DEFAULT_DASHBOARD_URL = (
    "https://dashboard.cekura.ai/{project_id}/results/{result_id}?call_id={run_id}"
)


@dataclass(frozen=True)
class _Option:
    flag: str
    ini: str
    help: str
    env: str | None = None
    #: "flag" options take no value; with ``flag_value=False`` the flag turns a default off.
    kind: str = "value"
    flag_value: bool = True
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


_OPTIONS = (
    _Option(
        "--cekura-url",
        "cekura_url",
        f"Base URL of the Cekura API (env {ENV_API_URL}; default {DEFAULT_BASE_URL}).",
        env=ENV_API_URL,
        metavar="URL",
    ),
    _Option(
        "--cekura-provider",
        "cekura_provider",
        f"Default provider for markers that give none: {', '.join(PROVIDERS)} (default livekit).",
        metavar="NAME",
    ),
    _Option(
        "--cekura-agent",
        "cekura_agent",
        f"Default Cekura agent id for markers that give none (env {ENV_AGENT_ID}); without it "
        "each scenario's own agent is used.",
        env=ENV_AGENT_ID,
        metavar="ID",
    ),
    _Option(
        "--cekura-concurrency-limit",
        "cekura_concurrency_limit",
        f"Most calls Cekura may run at once for each request (env {ENV_CONCURRENCY_LIMIT}); "
        "default: Cekura's plan limit. A marker's concurrency_limit= overrides it.",
        env=ENV_CONCURRENCY_LIMIT,
        metavar="N",
    ),
    _Option(
        "--cekura-mock-tool-names",
        "cekura_mock_tool_names",
        "Comma-separated tool names Cekura answers with mocks instead of calling your tools "
        "(mock_tool_names); a marker's mock_tool_names= overrides it.",
        metavar="NAMES",
    ),
    _Option(
        "--cekura-livekit-agent-name",
        "cekura_livekit_agent_name",
        "LiveKit v2: dispatch every call to the LiveKit agent of this name (livekit_data."
        f"agent_name; env {ENV_LIVEKIT_AGENT_NAME}), e.g. a pull request's own worker.",
        env=ENV_LIVEKIT_AGENT_NAME,
        metavar="NAME",
    ),
    _Option(
        "--cekura-livekit-url",
        "cekura_livekit_url",
        f"LiveKit v2: the LiveKit server URL for the calls (livekit_data.url; env "
        f"{ENV_LIVEKIT_URL}), instead of the one saved on the agent.",
        env=ENV_LIVEKIT_URL,
        metavar="URL",
    ),
    _Option(
        "--cekura-livekit-config",
        "cekura_livekit_config",
        "LiveKit v2: a JSON object (or the path of a JSON file) that replaces the agent's saved "
        "LiveKit Config, i.e. the room metadata your agent receives (livekit_data.config).",
        metavar="JSON|PATH",
    ),
    _Option(
        "--cekura-no-preflight",
        "cekura_preflight",
        "Skip the checks made before any run is started (scenarios exist, the agent's LiveKit "
        "settings are complete). Ini: cekura_preflight = false.",
        kind="flag",
        flag_value=False,
    ),
    _Option(
        "--cekura-dry-run",
        "cekura_dry_run",
        "Show what would be submitted (groups, scenarios, number of calls) and start nothing.",
        kind="flag",
    ),
    _Option(
        "--cekura-max-runs",
        "cekura_max_runs",
        "Refuse to start a session that would start more than N calls.",
        metavar="N",
    ),
    _Option(
        "--cekura-report",
        "cekura_report",
        "Write a JSON report of every group, result and run to PATH.",
        metavar="PATH",
    ),
    _Option(
        "--cekura-early-verdict",
        "cekura_early_verdict",
        "Decide a test as soon as its remaining runs cannot change the outcome, and end those "
        "calls to save money.",
        kind="flag",
    ),
    _Option(
        "--cekura-confidence",
        "cekura_confidence",
        "Statistical gate: pass when the Wilson lower bound of the success rate at this "
        "one-sided confidence (e.g. 0.95) reaches min_success_rate.",
        metavar="LEVEL",
    ),
    _Option(
        "--cekura-reuse",
        "cekura_reuse",
        "Reuse the newest completed result of the same scenarios and options if it is younger "
        "than DURATION (e.g. 90s, 30m, 1h, 2d) instead of starting new calls.",
        metavar="DURATION",
    ),
    _Option(
        "--cekura-rerun-failed",
        "cekura_rerun_failed",
        "Ask Cekura to rerun only the failed runs of each group's previous result (keeping its "
        "successful ones) instead of starting every call again.",
        kind="flag",
    ),
    _Option(
        "--cekura-baseline",
        "cekura_baseline",
        "Write each Cekura test's success rate to PATH (JSON), to commit as a baseline.",
        metavar="PATH",
    ),
    _Option(
        "--cekura-compare",
        "cekura_compare",
        "Compare with a baseline file: fail only tests whose success rate fell by more than "
        "the tolerance, and print the differences.",
        metavar="PATH",
    ),
    _Option(
        "--cekura-tolerance",
        "cekura_tolerance",
        f"How far a success rate may fall below the baseline (default {DEFAULT_TOLERANCE:g}).",
        metavar="FRACTION",
    ),
    _Option(
        "--cekura-order",
        "cekura_order",
        "Order in which tests run: 'collection' (pytest's, the default) or 'finish' (tests "
        "that need no waiting first, each Cekura test as soon as its runs are done).",
        metavar="ORDER",
    ),
    _Option(
        "--cekura-poll-interval",
        "cekura_poll_interval",
        f"Seconds between polls for run status (default {DEFAULT_POLL_INTERVAL:g}, "
        f"{EMULATOR_POLL_INTERVAL:g} on the emulator).",
        metavar="SECONDS",
    ),
    _Option(
        "--cekura-timeout",
        "cekura_timeout",
        f"Seconds to wait, from submission, for all runs to finish (default {DEFAULT_TIMEOUT:g}, "
        f"{EMULATOR_TIMEOUT:g} on the emulator). Unfinished runs make their tests error.",
        metavar="SECONDS",
    ),
    _Option(
        "--cekura-request-timeout",
        "cekura_request_timeout",
        f"Seconds to wait for each API answer (default {DEFAULT_REQUEST_TIMEOUT:g}); a "
        "run-starting request that times out is looked up by name, never sent again.",
        metavar="SECONDS",
    ),
    _Option(
        "--cekura-dashboard-url",
        "cekura_dashboard_url",
        "Link template for a run in Cekura's web app, with {project_id}, {result_id} and {run_id}.",
        metavar="TEMPLATE",
    ),
    _Option(
        "--cekura-agent-cmd",
        "cekura_agent_cmd",
        "Start your agent worker with this command before any run is started, wait until it "
        "is ready, and stop it at the end, e.g. 'python agent.py dev'.",
        metavar="COMMAND",
    ),
    _Option(
        "--cekura-agent-ready",
        "cekura_agent_ready",
        "Regular expression matching the line the agent worker prints once it is ready "
        "(default: LiveKit Agents' 'registered worker').",
        metavar="REGEX",
    ),
    _Option(
        "--cekura-agent-ready-timeout",
        "cekura_agent_ready_timeout",
        f"Seconds to wait for the agent worker to be ready (default "
        f"{DEFAULT_AGENT_READY_TIMEOUT:g}).",
        metavar="SECONDS",
    ),
    _Option(
        "--cekura-emulator",
        "cekura_emulator",
        "Run Cekura tests against the built-in emulator: offline, free, no API key needed.",
        kind="flag",
    ),
    _Option(
        "--cekura-emulator-catalogue",
        "cekura_emulator_catalogue",
        "TOML file describing the emulator's scenarios, agents and test profiles.",
        metavar="PATH",
    ),
    _Option(
        "--cekura-emulator-time-scale",
        "cekura_emulator_time_scale",
        f"Real seconds per emulated second of a call (default {DEFAULT_TIME_SCALE}).",
        metavar="FACTOR",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cekura", "Cekura voice-agent scenarios")
    for opt in _OPTIONS:
        if opt.kind == "flag":
            action = "store_true" if opt.flag_value else "store_false"
            group.addoption(opt.flag, action=action, default=None, dest=opt.dest, help=opt.help)
            parser.addini(opt.ini, opt.help, type="bool", default=not opt.flag_value)
        else:
            group.addoption(
                opt.flag, default=None, dest=opt.dest, metavar=opt.metavar, help=opt.help
            )
            parser.addini(opt.ini, opt.help, default=None)


@dataclass(frozen=True)
class Settings:
    base_url: str
    api_key: Secret | None
    provider: str
    agent: int | None
    preflight: bool
    dry_run: bool
    max_runs: int | None
    report_path: Path | None
    early_verdict: bool
    confidence: float | None
    reuse_seconds: float | None
    rerun_failed: bool
    baseline_path: Path | None
    compare_path: Path | None
    tolerance: float
    order: str
    poll_interval: float
    timeout: float
    request_timeout: float
    dashboard_url: str
    agent_cmd: str | None
    agent_ready: str | None
    agent_ready_timeout: float
    emulator: bool
    emulator_catalogue: Path | None
    emulator_time_scale: float
    concurrency_limit: int | None = None
    mock_tool_names: tuple[str, ...] | None = None
    #: The session's ``livekit_data`` keys (LiveKit v2 only); a marker's keys override them.
    livekit_data: Mapping[str, Any] = field(default_factory=dict)

    def marker_defaults(self) -> MarkerDefaults:
        """What a ``cekura_scenario`` marker gets for each argument it leaves out."""
        return MarkerDefaults(
            self.provider,
            self.agent,
            self.concurrency_limit,
            self.mock_tool_names,
            self.livekit_data,
        )

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        return resolve(
            cli=lambda opt: config.getoption(opt.dest),
            ini=lambda opt: _getini(config, opt),
            env=os.environ,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
        )


def resolve(
    *,
    cli: Callable[[_Option], Any],
    ini: Callable[[_Option], Any],
    env: Mapping[str, str],
    ini_dir: Path,
) -> Settings:
    """Merge the sources by precedence and validate; raise ``ConfigError`` on a bad value."""
    raw = {opt.ini: _pick(opt, cli(opt), ini(opt), env) for opt in _OPTIONS}

    def value(name: str) -> tuple[Any, str]:
        return raw[name]

    emulator = bool(value("cekura_emulator")[0])
    key = env.get(ENV_API_KEY, "").strip()
    if key and not emulator:  # the emulator never uses the user's key
        _check_key(key)
    url = value("cekura_url")
    return Settings(
        base_url=_url(*url) if url[0] is not None else DEFAULT_BASE_URL,
        api_key=Secret(key) if key else None,
        provider=_choice(*value("cekura_provider"), choices=PROVIDERS, default="livekit"),
        agent=_id(*value("cekura_agent"), what="agent"),
        preflight=bool(value("cekura_preflight")[0]),
        dry_run=bool(value("cekura_dry_run")[0]),
        max_runs=_positive_int(*value("cekura_max_runs")),
        report_path=_output_path(*value("cekura_report"), ini_dir),
        early_verdict=bool(value("cekura_early_verdict")[0]),
        confidence=_fraction(*value("cekura_confidence"), default=None, open_interval=True),
        reuse_seconds=_duration(*value("cekura_reuse")),
        rerun_failed=bool(value("cekura_rerun_failed")[0]),
        baseline_path=_output_path(*value("cekura_baseline"), ini_dir),
        compare_path=_input_path(*value("cekura_compare"), ini_dir, kind="JSON baseline"),
        tolerance=_fraction(*value("cekura_tolerance"), default=DEFAULT_TOLERANCE) or 0.0,
        order=_choice(*value("cekura_order"), choices=ORDERS, default="collection"),
        poll_interval=_positive(
            *value("cekura_poll_interval"),
            default=EMULATOR_POLL_INTERVAL if emulator else DEFAULT_POLL_INTERVAL,
        ),
        timeout=_positive(
            *value("cekura_timeout"), default=EMULATOR_TIMEOUT if emulator else DEFAULT_TIMEOUT
        ),
        request_timeout=_positive(
            *value("cekura_request_timeout"), default=DEFAULT_REQUEST_TIMEOUT
        ),
        dashboard_url=_template(*value("cekura_dashboard_url")),
        agent_cmd=_text(*value("cekura_agent_cmd")),
        agent_ready=_regex(*value("cekura_agent_ready")),
        agent_ready_timeout=_positive(
            *value("cekura_agent_ready_timeout"), default=DEFAULT_AGENT_READY_TIMEOUT
        ),
        emulator=emulator,
        emulator_catalogue=_input_path(
            *value("cekura_emulator_catalogue"), ini_dir, kind="TOML catalogue"
        ),
        emulator_time_scale=_positive(
            *value("cekura_emulator_time_scale"),
            default=DEFAULT_TIME_SCALE,
            unit="real seconds per emulated second, e.g. 0.01",
        ),
        concurrency_limit=_positive_int(*value("cekura_concurrency_limit"), maximum=MAX_ID),
        mock_tool_names=_names(*value("cekura_mock_tool_names")),
        livekit_data=_livekit_data(
            agent_name=value("cekura_livekit_agent_name"),
            url=value("cekura_livekit_url"),
            config=value("cekura_livekit_config"),
            ini_dir=ini_dir,
        ),
    )


def _getini(config: pytest.Config, opt: _Option) -> Any:
    try:
        return config.getini(opt.ini)
    except (ValueError, pytest.UsageError) as exc:
        # pytest's own error for a bad bool ("invalid truth value 'maybe'") names no key
        # (a ValueError before pytest 9, a UsageError since); it names the value.
        raise ConfigError(
            f"ini key {opt.ini} is invalid ({exc}): use true or false"
            + (f" (or {opt.flag} on the command line)" if opt.kind == "flag" else "")
        ) from None


def _pick(opt: _Option, cli_value: Any, ini_value: Any, env: Mapping[str, str]) -> tuple[Any, str]:
    """Return (value, where it came from) so error messages can name the source to fix."""
    if cli_value is not None:
        return cli_value, opt.flag
    if opt.env and env.get(opt.env, "").strip():
        return env[opt.env].strip(), f"environment variable {opt.env}"
    if opt.kind == "flag":
        return ini_value, f"ini key {opt.ini}"
    if ini_value not in (None, "", []):
        return ini_value, f"ini key {opt.ini}"
    return None, opt.flag


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number (so every range check fails)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _positive(value: Any, source: str, *, default: float, unit: str = "seconds") -> float:
    if value is None:
        return default
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{source}={value!r} is invalid: use a positive number ({unit})")
    return number


#: ASCII digits only: str.isdigit() is also true for "²", which int() then refuses.
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _positive_int(value: Any, source: str, *, maximum: int | None = None) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) <= 0:
        raise ConfigError(f"{source}={value!r} is invalid: use a positive whole number")
    if maximum is not None and int(text) > maximum:
        raise ConfigError(
            f"{source}={value!r} is too large: Cekura's numbers are 64-bit (at most {maximum})"
        )
    return int(text)


def _id(value: Any, source: str, *, what: str) -> int | None:
    text = str(value).strip()
    if value is not None and _WHOLE_NUMBER.fullmatch(text) and int(text) > MAX_ID:
        raise ConfigError(
            f"{source}={value!r} is too large: Cekura's ids are 64-bit integers (at most "
            f"{MAX_ID}); use the id of your {what} in Cekura"
        )
    return _positive_int(value, source)


def _names(value: Any, source: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = [name.strip() for name in re.split(r"[,\s]+", str(value))]
    kept = tuple(dict.fromkeys(name for name in names if name))
    if not kept:
        raise ConfigError(
            f"{source}={value!r} is invalid: give tool names separated by commas, "
            "e.g. check_inventory,book_slot"
        )
    return kept


def _livekit_data(
    *, agent_name: tuple[Any, str], url: tuple[Any, str], config: tuple[Any, str], ini_dir: Path
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if agent_name[0] is not None:
        name = str(agent_name[0]).strip()
        if not name or not name.isprintable():
            raise ConfigError(
                f"{agent_name[1]}={agent_name[0]!r} is invalid: give the LiveKit agent name "
                "your worker registers (one line), or leave it out"
            )
        data["agent_name"] = name
    if url[0] is not None:
        text = str(url[0]).strip()
        problem = livekit_url_problem(text)
        if problem:
            shown = "(not shown)" if "credentials" in problem else repr(text)
            raise ConfigError(f"{url[1]}={shown} {problem}")
        data["url"] = text
    if config[0] is not None:
        data["config"] = _json_object(*config, ini_dir)
    return data


def _json_object(value: Any, source: str, base: Path) -> dict[str, Any]:
    """Inline JSON (text starting with ``{``) or the path of a JSON file holding an object."""
    text = str(value).strip()
    if text.startswith("{"):
        origin, raw = "", text
    else:
        path = _resolve_path(text, source, base)
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{source}={text!r}: cannot read it ({exc.__class__.__name__}); give a JSON "
                'object such as {"locale": "de-DE"} or the path of a JSON file holding one'
            ) from None
        origin = f" (file {str(path)!r})"
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{source}{origin} is not valid JSON ({exc}); fix it there") from None
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"{source}{origin} is not a JSON object: the LiveKit Config (room metadata) is "
            'an object, e.g. {"locale": "de-DE"}'
        )
    return parsed


def _choice(value: Any, source: str, *, choices: Collection[str], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise ConfigError(f"{source}={value!r} is invalid: use one of {', '.join(choices)}")
    return str(value)


def _text(value: Any, source: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise ConfigError(f"{source} is empty: give a command, or leave the option out")
    return text


def _regex(value: Any, source: str) -> str | None:
    if value is None:
        return None
    try:
        re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"{source}={value!r} is not a valid regular expression: {exc}") from None
    return str(value)


#: What a key may hold: the visible ASCII characters. Anything else (a newline pasted with
#: it, a non-breaking space) makes httpx refuse the header, and its error quotes the header.
_KEY_CHARS = frozenset(chr(code) for code in range(0x21, 0x7F))


def _check_key(key: str) -> None:
    """Refuse a key httpx could not send, naming the first bad character by position and kind
    (never the key itself, nor the character when it could be part of a real key)."""
    for position, char in enumerate(key, start=1):
        if char not in _KEY_CHARS:
            raise ConfigError(
                f"pytest-cekura: the {ENV_API_KEY} environment variable contains "
                f"{_describe_char(char)} at position {position}; an API key holds only "
                "visible ASCII characters: copy it again from Cekura's settings and set "
                f"{ENV_API_KEY} without it"
            )


_CHAR_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def _describe_char(char: str) -> str:
    if char in _CHAR_NAMES:
        return _CHAR_NAMES[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"a control character (U+{ord(char):04X})"
    if char.isspace():
        return f"a non-ASCII space (U+{ord(char):04X})"
    return "a non-ASCII character"


def _has_credentials(text: str) -> bool:
    """True when the URL's authority holds ``user[:password]@`` (checked without parsing, so
    a URL that does not parse is refused without being quoted either)."""
    authority = re.split(r"[/?#]", text.split("://", 1)[-1], maxsplit=1)[0]
    return "@" in authority


def _url(value: Any, source: str) -> str:
    text = str(value).strip()
    if _has_credentials(text):
        # The URL is printed in the -v header and the JSON report: a password must not be.
        raise ConfigError(
            f"{source} contains credentials (user:password@ before the host): remove them; "
            f"Cekura authenticates with the {ENV_API_KEY} environment variable"
        )
    try:
        parts = urlsplit(text)
        # An unclosed "[" (http://[::1) or a bad port raises ValueError: a bad URL like any.
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname)
        parts.port  # noqa: B018
    except ValueError:
        usable = False
    if not usable:
        raise ConfigError(
            f"{source}={text!r} is not a valid URL: use http(s)://host[:port], "
            f"e.g. {DEFAULT_BASE_URL}"
        )
    return text.rstrip("/")


def _resolve_path(value: Any, source: str, base: Path) -> Path:
    path = Path(str(value)).expanduser()
    # Ini paths are relative to the ini file, like pytest's own testpaths.
    if not path.is_absolute() and source.startswith("ini"):
        path = base / path
    return path


def _input_path(value: Any, source: str, base: Path, *, kind: str) -> Path | None:
    if value is None:
        return None
    path = _resolve_path(value, source, base)
    if not path.is_file():
        raise ConfigError(f"{source}={str(value)!r}: no such file; give the path of a {kind} file")
    return path


def _fraction(
    value: Any, source: str, *, default: float | None, open_interval: bool = False
) -> float | None:
    if value is None:
        return default
    number = _number(value)
    low_ok = number > 0 if open_interval else number >= 0
    high_ok = number < 1 if open_interval else number <= 1
    if not (low_ok and high_ok):
        bounds = "between 0 and 1, e.g. 0.95" if open_interval else "from 0 to 1, e.g. 0.1"
        raise ConfigError(f"{source}={value!r} is invalid: use a fraction {bounds}")
    return number


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any, source: str) -> float | None:
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if match is None or float(match[1]) <= 0:
        raise ConfigError(
            f"{source}={value!r} is invalid: use a duration such as 90s, 30m, 1h or 2d"
        )
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def _output_path(value: Any, source: str, base: Path) -> Path | None:
    if value is None:
        return None
    path = _resolve_path(value, source, base)
    if not path.parent.is_dir():
        raise ConfigError(
            f"{source}={str(value)!r}: the folder {str(path.parent)!r} does not exist; create "
            "it or choose another path"
        )
    return path


def _template(value: Any, source: str) -> str:
    if value is None:
        return DEFAULT_DASHBOARD_URL
    text = str(value)
    try:
        text.format(project_id=3, result_id=1, run_id=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{source}={text!r} is invalid ({exc!r}): use only the fields {{project_id}}, "
            "{result_id} and {run_id}"
        ) from None
    return text
