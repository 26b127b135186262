"""Parsers of setting values, shared by every option in ``options.py``.

Each takes the raw value (None when no source gives one) and ``source``, the place it came
from as the user wrote it (``--cekura-timeout``, ``environment variable CEKURA_API_URL``,
``ini key cekura_timeout``), and returns a typed value or raises ``ConfigError`` naming that
source and the fix.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from .errors import ConfigError
from .livekit_data import livekit_url_problem
from .markers import MAX_ID
from .providers import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from .gates import Gate

#: ``--cekura-gates``'s value; a forward reference, so gates.py loads only when gates are given.
Gates: TypeAlias = tuple["Gate", ...]

ENV_API_KEY = "CEKURA_API_KEY"


@dataclass(frozen=True)
class Context:
    """What a parser may need besides the value: the folder ini paths are relative to, and
    whether the emulator is on (it changes the polling defaults)."""

    ini_dir: Path
    emulator: bool


def switch(value: Any, source: str, context: Context) -> bool:
    return bool(value)


def seconds(default: float, emulated: float | None = None) -> Callable[[Any, str, Context], float]:
    """A positive number of seconds; ``emulated`` is the default under the emulator."""

    def parse(value: Any, source: str, context: Context) -> float:
        fallback = emulated if context.emulator and emulated is not None else default
        return positive(value, source, default=fallback)

    return parse


def output(value: Any, source: str, context: Context) -> Path | None:
    return output_path(value, source, context.ini_dir)


def livekit_config(value: Any, source: str, context: Context) -> dict[str, Any] | None:
    return None if value is None else json_object(value, source, context.ini_dir)


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number (so every range check fails)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def positive(value: Any, source: str, *, default: float, unit: str = "seconds") -> float:
    if value is None:
        return default
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{source}={value!r} is invalid: use a positive number ({unit})")
    return number


def credits(value: Any, source: str) -> float | None:
    """A cost limit in Cekura credits (``--cekura-max-cost``); None: no limit."""
    if value is None:
        return None
    number = _number(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{source}={value!r} is invalid: use a number of credits, 0 or more")
    return number


#: ASCII digits only: str.isdigit() is also true for "²", which int() then refuses.
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def positive_int(value: Any, source: str, *, maximum: int | None = None) -> int | None:
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


def cekura_id(value: Any, source: str, *, what: str) -> int | None:
    text = str(value).strip()
    if value is not None and _WHOLE_NUMBER.fullmatch(text) and int(text) > MAX_ID:
        raise ConfigError(
            f"{source}={value!r} is too large: Cekura's ids are 64-bit integers (at most "
            f"{MAX_ID}); use the id of your {what} in Cekura"
        )
    return positive_int(value, source)


def tool_names(value: Any, source: str) -> tuple[str, ...] | None:
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


def livekit_agent_name(value: Any, source: str) -> str | None:
    if value is None:
        return None
    name = str(value).strip()
    if not name or not name.isprintable():
        raise ConfigError(
            f"{source}={value!r} is invalid: give the LiveKit agent name "
            "your worker registers (one line), or leave it out"
        )
    return name


def agent_name_base(value: Any, source: str) -> str | None:
    """The start of the session's own LiveKit agent name: letters, digits, ``-``, ``_``, ``.``."""
    if value is None:
        return None
    base = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", base):
        raise ConfigError(
            f"{source}={value!r} is invalid: give the start of the agent name, up to 64 "
            "letters, digits, '-', '_' or '.', e.g. my-agent"
        )
    return base


#: Days a shareable result link stays valid when ``--cekura-share-links`` gives no number
#: (Cekura's own CI action makes 7-day links).
DEFAULT_SHARE_DAYS = 7
MAX_SHARE_DAYS = 365


def share_days(value: Any, source: str) -> int | None:
    """``--cekura-share-links[=DAYS]``: None (no links), or the days a link stays valid. The
    ini key also takes true/false. A value that is no number is most likely a test path
    the flag swallowed (``--cekura-share-links tests/``): the message says how to avoid that."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("true", "yes", "on"):
        return DEFAULT_SHARE_DAYS
    if text in ("", "false", "no", "off"):
        return None
    if not _WHOLE_NUMBER.fullmatch(text) or not 0 < int(text) <= MAX_SHARE_DAYS:
        raise ConfigError(
            f"{source}={value!r} is invalid: give the days a shareable link stays valid, 1 to "
            f"{MAX_SHARE_DAYS} (e.g. {source}={DEFAULT_SHARE_DAYS}); written without '=' the "
            "flag takes the next word as its value, so put test paths before it"
        )
    return int(text)


def env_name(value: Any, source: str, *, default: str) -> str:
    if value is None:
        return default
    name = str(value).strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(
            f"{source}={value!r} is invalid: give an environment variable name, e.g. {default}"
        )
    return name


def gates(value: Any, source: str) -> Gates:
    """``--cekura-gates``: read by ``gates.py``, imported only when gates are given."""
    if value is None:
        return ()
    from .gates import gate_setting

    return gate_setting(value, source)


def livekit_server_url(value: Any, source: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    problem = livekit_url_problem(text)
    if problem:
        shown = "(not shown)" if "credentials" in problem else repr(text)
        raise ConfigError(f"{source}={shown} {problem}")
    return text


def json_object(value: Any, source: str, base: Path) -> dict[str, Any]:
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


def choice(value: Any, source: str, *, choices: Collection[str], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise ConfigError(f"{source}={value!r} is invalid: use one of {', '.join(choices)}")
    return str(value)


def nonempty_text(value: Any, source: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise ConfigError(f"{source} is empty: give a command, or leave the option out")
    return text


def command(value: Any, source: str) -> str | None:
    """A worker command: not empty, and split as a shell would (its quotes closed)."""
    text = nonempty_text(value, source)
    if text is not None:
        try:
            shlex.split(text)
        except ValueError as exc:
            raise ConfigError(
                f"{source}={text!r} cannot be parsed ({exc}); check its quotes, "
                'e.g. --cekura-agent-cmd "python agent.py dev"'
            ) from None
    return text


def regex(value: Any, source: str) -> str | None:
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


def check_key(key: str) -> None:
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


def api_url(value: Any, source: str) -> str:
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


def input_path(value: Any, source: str, base: Path, *, kind: str) -> Path | None:
    if value is None:
        return None
    path = _resolve_path(value, source, base)
    if not path.is_file():
        raise ConfigError(f"{source}={str(value)!r}: no such file; give the path of a {kind} file")
    return path


def fraction(
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


def duration(value: Any, source: str) -> float | None:
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if match is None or float(match[1]) <= 0:
        raise ConfigError(
            f"{source}={value!r} is invalid: use a duration such as 90s, 30m, 1h or 2d"
        )
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def output_path(value: Any, source: str, base: Path) -> Path | None:
    if value is None:
        return None
    if not str(value).strip():
        # Path("") is ".", which was reported as "'.' is a folder".
        raise ConfigError(f"{source} is empty; give a file path, e.g. {source}=report.out")
    path = _resolve_path(value, source, base)
    if path.is_dir():
        raise ConfigError(
            f"{source}={str(value)!r}: it is a folder; choose a file path you can write to"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"{source}={str(value)!r}: the folder {str(path.parent)!r} does not exist; create "
            "it or choose another path"
        )
    return path


def dashboard_template(value: Any, source: str) -> str:
    text = str(value)
    try:
        text.format(project_id=3, result_id=1, run_id=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{source}={text!r} is invalid ({exc!r}): use only the fields {{project_id}}, "
            "{result_id} and {run_id}"
        ) from None
    return text
