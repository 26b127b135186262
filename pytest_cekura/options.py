"""Command-line options, ini keys and environment variables, resolved once into ``Settings``.

Precedence for every setting: command line > environment variable > ini key > default.
The API key is read from the environment only: a command-line value would show up in process
listings and in pytest's own "invocation params".
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .client import DEFAULT_BASE_URL
from .errors import ConfigError
from .secret import Secret

ENV_API_KEY = "CEKURA_API_KEY"
ENV_API_URL = "CEKURA_API_URL"
DEFAULT_POLL_INTERVAL = 5.0  # what Cekura's own CLI uses
DEFAULT_TIMEOUT = 3600.0  # Cekura's CLI default for --wait
EMULATOR_POLL_INTERVAL = 0.1
EMULATOR_TIMEOUT = 60.0
DEFAULT_TIME_SCALE = 0.01  # a 30 s emulated call takes 0.3 s
#: Cekura does not document dashboard deep links; this template is overridable per project.
DEFAULT_DASHBOARD_URL = "https://dashboard.cekura.ai/results/{result_id}?run={run_id}"


@dataclass(frozen=True)
class _Option:
    flag: str
    ini: str
    help: str
    env: str | None = None
    is_flag: bool = False
    metavar: str | None = None


_OPTIONS = (
    _Option(
        "--cekura-url",
        "cekura_url",
        f"Base URL of the Cekura API (env {ENV_API_URL}; default {DEFAULT_BASE_URL}).",
        env=ENV_API_URL,
        metavar="URL",
    ),
    _Option(
        "--cekura-emulator",
        "cekura_emulator",
        "Run Cekura tests against the built-in emulator: offline, free, no API key needed.",
        is_flag=True,
    ),
    _Option(
        "--cekura-emulator-catalogue",
        "cekura_emulator_catalogue",
        "TOML file describing the emulator's scenarios (outcome, duration) and test profiles.",
        metavar="PATH",
    ),
    _Option(
        "--cekura-emulator-time-scale",
        "cekura_emulator_time_scale",
        f"Real seconds per emulated second of a call (default {DEFAULT_TIME_SCALE}).",
        metavar="FACTOR",
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
        "--cekura-dashboard-url",
        "cekura_dashboard_url",
        "Link template for a run in Cekura's web app, with {result_id} and {run_id}.",
        metavar="TEMPLATE",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cekura", "Cekura voice-agent scenarios")
    for opt in _OPTIONS:
        dest = _dest(opt)
        if opt.is_flag:
            group.addoption(opt.flag, action="store_true", default=None, dest=dest, help=opt.help)
            parser.addini(opt.ini, opt.help, type="bool", default=False)
        else:
            group.addoption(opt.flag, default=None, dest=dest, metavar=opt.metavar, help=opt.help)
            parser.addini(opt.ini, opt.help, default=None)


def _dest(opt: _Option) -> str:
    return opt.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Settings:
    base_url: str
    api_key: Secret | None
    emulator: bool
    emulator_catalogue: Path | None
    emulator_time_scale: float
    poll_interval: float
    timeout: float
    dashboard_url: str

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        return resolve(
            cli=lambda opt: config.getoption(_dest(opt)),
            ini=lambda opt: config.getini(opt.ini),
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
    raw: dict[str, tuple[Any, str]] = {}
    for opt in _OPTIONS:
        raw[opt.ini] = _pick(opt, cli(opt), ini(opt), env)
    emulator = bool(raw["cekura_emulator"][0])
    catalogue = raw["cekura_emulator_catalogue"]
    key = env.get(ENV_API_KEY, "").strip()
    return Settings(
        base_url=_url(*raw["cekura_url"]) if raw["cekura_url"][0] else DEFAULT_BASE_URL,
        api_key=Secret(key) if key else None,
        emulator=emulator,
        emulator_catalogue=_path(catalogue[0], catalogue[1], ini_dir),
        emulator_time_scale=_positive(
            *raw["cekura_emulator_time_scale"], default=DEFAULT_TIME_SCALE
        ),
        poll_interval=_positive(
            *raw["cekura_poll_interval"],
            default=EMULATOR_POLL_INTERVAL if emulator else DEFAULT_POLL_INTERVAL,
        ),
        timeout=_positive(
            *raw["cekura_timeout"], default=EMULATOR_TIMEOUT if emulator else DEFAULT_TIMEOUT
        ),
        dashboard_url=_template(*raw["cekura_dashboard_url"]),
    )


def _pick(opt: _Option, cli_value: Any, ini_value: Any, env: Mapping[str, str]) -> tuple[Any, str]:
    """Return (value, where it came from) so error messages can name the source to fix."""
    if cli_value is not None:
        return cli_value, opt.flag
    if opt.env and env.get(opt.env, "").strip():
        return env[opt.env].strip(), f"environment variable {opt.env}"
    if ini_value not in (None, "", []) and ini_value is not False:
        return ini_value, f"ini key {opt.ini}"
    return None, opt.flag


def _positive(value: Any, source: str, *, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{source}={value!r} is invalid: use a positive number of seconds")
    return number


def _url(value: Any, source: str) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            f"{source}={text!r} is not a valid URL: use http(s)://host[:port], "
            f"e.g. {DEFAULT_BASE_URL}"
        )
    return text.rstrip("/")


def _path(value: Any, source: str, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    # Ini paths are relative to the ini file, like pytest's own testpaths.
    if not path.is_absolute() and source.startswith("ini"):
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{source}={str(value)!r}: no such file; give the path of a TOML file")
    return path


def _template(value: Any, source: str) -> str:
    if value is None:
        return DEFAULT_DASHBOARD_URL
    text = str(value)
    try:
        text.format(result_id=1, run_id=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{source}={text!r} is invalid ({exc!r}): use only the fields {{result_id}} "
            "and {run_id}"
        ) from None
    return text
