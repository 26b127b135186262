"""The exceptions the plugin raises, one tree so callers can catch exactly what they mean.

``CekuraError`` is the root. HTTP answers map to ``ApiError`` subclasses (one table in
``client.py``); failures below HTTP map to ``TransportError``; answers we cannot read map to
``ProtocolError``.
"""

from __future__ import annotations


class CekuraError(Exception):
    """Base class of every error raised by pytest-cekura."""


class ConfigError(CekuraError):
    """A setting, marker argument or catalogue file is invalid; the message says how to fix it."""


class ApiError(CekuraError):
    """Cekura answered with an HTTP error status; ``retry_after`` (seconds) is its
    ``Retry-After`` on a 429 or 503, when it gave one."""

    def __init__(
        self,
        status_code: int,
        body: str,
        *,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(f"{method} {path} -> HTTP {status_code}: {_shorten(body)}")


class AuthError(ApiError):
    """401/403: the API key is missing, wrong or lacks access."""


class NotFoundError(ApiError):
    """404: the scenario, result or run does not exist (in this project)."""


class RateLimitedError(ApiError):
    """429: Cekura rejected the request before doing anything."""


class ServerError(ApiError):
    """5xx: something failed on Cekura's side (the request may still have had effects)."""


class TransportError(CekuraError):
    """The HTTP exchange itself failed (connect, timeout, connection dropped).

    ``may_have_reached_server`` is False only when no byte of the request can have been
    delivered (connection refused, connect timeout): the one case where re-sending a
    non-idempotent POST is safe.
    """

    def __init__(self, message: str, *, may_have_reached_server: bool) -> None:
        super().__init__(message)
        self.may_have_reached_server = may_have_reached_server


class ProtocolError(CekuraError):
    """Cekura answered 2xx but with a body we cannot interpret (not JSON, wrong shape)."""


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
