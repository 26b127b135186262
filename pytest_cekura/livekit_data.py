"""``livekit_data``, LiveKit v2's per-request override: its keys, no credentials, the server URL.

The marker's ``livekit_data=`` (over the session's defaults) is checked here, and the
session's LiveKit server URL option uses the same URL check. Problems are raised as
``LivekitDataError`` with the detail; ``markers.py`` names the marker in front of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Keys of ``livekit_data`` (cekura-api.md 10.2). Credentials are refused: they are never
#: accepted per request, only stored on the agent or project.
LIVEKIT_DATA_KEYS = ("agent_name", "url", "config")
_LIVEKIT_SECRETS = frozenset({"api_key", "api_secret", "livekit_api_key", "livekit_api_secret"})


class LivekitDataError(ValueError):
    """``livekit_data`` cannot be sent; the message names the key, the value and the fix."""


def livekit_data(value: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The marker's ``livekit_data`` over the session's: the keys to send (``LivekitDataError``)."""
    if value is None:
        value = {}
    elif not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise LivekitDataError(
            f"livekit_data={value!r} is invalid; use a dict with any of the keys "
            f"{', '.join(LIVEKIT_DATA_KEYS)}"
        )
    secrets = sorted(_LIVEKIT_SECRETS & set(value))
    if secrets:
        # The value is not shown: it is a credential.
        raise LivekitDataError(
            f"livekit_data may not contain {', '.join(secrets)}: Cekura never accepts LiveKit "
            "credentials in a request; store them on the agent (or project) in Cekura's "
            "dashboard"
        )
    unknown = [k for k in value if k not in LIVEKIT_DATA_KEYS]
    if unknown:
        raise LivekitDataError(
            f"livekit_data has unknown key {unknown[0]!r}; use only {', '.join(LIVEKIT_DATA_KEYS)}"
        )
    # The marker's keys override the session's one by one; None drops a session default.
    merged = {**defaults, **value}
    data = {k: merged[k] for k in LIVEKIT_DATA_KEYS if merged.get(k) is not None}
    for key in ("agent_name", "url"):
        if key in data:
            text = data[key]
            if not isinstance(text, str) or not text.strip() or not text.isprintable():
                raise LivekitDataError(
                    f"livekit_data {key}={text!r} is invalid; use a non-empty string on one "
                    "line, or leave it out"
                )
    if "url" in data:
        problem = livekit_url_problem(data["url"])
        if problem:
            # A URL with a password in it is not repeated.
            shown = "(not shown)" if "credentials" in problem else repr(data["url"])
            raise LivekitDataError(f"livekit_data url={shown} {problem}")
    if "config" in data:
        config = data["config"]
        if not isinstance(config, Mapping):
            raise LivekitDataError(
                f"livekit_data config={config!r} is invalid; use a dict: it replaces "
                "the agent's saved LiveKit Config (the room metadata) for these runs"
            )
        try:
            # allow_nan=False: NaN and infinity are not JSON, and would fail only when sent.
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise LivekitDataError(
                f"livekit_data config={config!r} cannot be sent to Cekura; use JSON data "
                "(dict, list, str, number)"
            ) from None
    return data


def livekit_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a LiveKit server URL, or None. Credentials in it are refused."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        host = None
    else:
        if parts.username is not None or parts.password is not None:
            return (
                "contains credentials; give the server URL alone (wss://host), the LiveKit "
                "key and secret belong on the agent in Cekura"
            )
    if host is None or parts.scheme not in {"ws", "wss", "http", "https"}:
        return "is not a valid URL; use the LiveKit server URL, e.g. wss://my-project.livekit.cloud"
    return None


__all__ = ["LIVEKIT_DATA_KEYS", "LivekitDataError", "livekit_data", "livekit_url_problem"]
