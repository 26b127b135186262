"""The HTTP layer under ``CekuraClient``: auth, timeouts, retries and error mapping.

Retry rules (cekura-api.md section 9):

* GETs are idempotent: retried on transport errors, 5xx and 429, with full-jitter backoff, and
  ``Retry-After`` honoured.
* A run-starting POST costs money and Cekura has no idempotency key, so it is re-sent only when
  the server cannot have acted on it: the connection was never made, or the server answered 429
  (it rejected the request). After any other failure the caller must look for the result
  instead of posting again.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from .errors import (
    ApiError,
    AuthError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from .secret import Secret, redact

API_KEY_HEADER = "X-CEKURA-API-KEY"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    #: A Retry-After longer than this is not waited for: the call fails at once instead.
    max_retry_after: float = 120.0


def backoff_delay(attempt: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
    return rng() * min(policy.max_delay, policy.initial_delay * 2.0**attempt)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _ApiKeyAuth(httpx.Auth):
    # The key is added at send time so no request object we build, log or show holds it.
    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self._key.reveal()
        yield request


def _user_agent() -> str:
    try:
        return f"pytest-cekura/{version('pytest-cekura')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "pytest-cekura"


class Transport:
    """Sends one request with auth, retries and the shared ``Retry-After`` pause; the base
    of ``CekuraClient``, which adds the endpoints.

    Thread-safe: the poller thread and the main thread share one instance.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret | str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Wrapped at once, so no attribute, repr or traceback local of ours holds the raw key.
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        #: Until when (``clock``) every request waits: a Retry-After on one request pauses
        #: all of them, since the server throttles the key, not the connection.
        self._paused_until = float("-inf")
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_ApiKeyAuth(self._key),
            timeout=timeout,
            transport=transport,
            # The reference (and the official SDK) send the JSON content type on every request.
            headers={
                "User-Agent": _user_agent(),
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            # Redirects could turn a POST into a GET; paths carry the documented trailing slash.
            follow_redirects=False,
        )

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests sent so far (retries included), by method; POSTs by what they do."""
        with self._lock:
            return dict(self._counts)

    @property
    def paused_for(self) -> float:
        """Seconds left of the pause Cekura asked for (``Retry-After``); 0 when none."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        deadline: float | None = None,
        label: str | None = None,
        later: bool = False,
    ) -> Any:
        """The answer's JSON; with ``later``, a function that decodes it when called (on
        another thread, say: see ``CekuraClient.fetch_runs``)."""
        idempotent = method == "GET" if idempotent is None else idempotent
        attempt = 0
        honoured = float("-inf")  # the pause this request has already waited out
        while True:
            with self._lock:
                paused_until = self._paused_until
            if paused_until > honoured:
                honoured = paused_until
                wait = paused_until - self._clock()
                if deadline is not None:
                    wait = min(wait, deadline - self._clock())
                if wait > 0:
                    self._sleep(wait)
            try:
                with self._lock:
                    self._counts[label or method] += 1
                response = _unbound(self._http.request(method, path, params=params, json=json))
            except httpx.TransportError as exc:
                error = _transport_error(exc, method, path)
                retriable = idempotent or not error.may_have_reached_server
                delay = backoff_delay(attempt, self._retry, self._rng)
                if not retriable or not self._may_retry(attempt, delay, deadline):
                    raise error from None
            else:
                if response.status_code < 400:
                    if later:
                        return functools.partial(_json_body, response, method, path)
                    return _json_body(response, method, path)
                status_error = _status_error(response, method, path, self._key)
                delay = backoff_delay(attempt, self._retry, self._rng)
                if status_error.retry_after:
                    if status_error.retry_after > self._retry.max_retry_after:
                        raise status_error
                    delay = status_error.retry_after
                    # Every request in flight waits it out, not only this one.
                    with self._lock:
                        self._paused_until = max(self._paused_until, self._clock() + delay)
                        honoured = self._paused_until
                if not _status_retriable(status_error, idempotent) or not self._may_retry(
                    attempt, delay, deadline
                ):
                    raise status_error
            self._sleep(delay)
            attempt += 1

    def _may_retry(self, attempt: int, delay: float, deadline: float | None) -> bool:
        if attempt + 1 >= self._retry.max_attempts:
            return False
        # Sleeping past the caller's deadline only delays the error it will report anyway.
        return deadline is None or self._clock() + delay < deadline


def _retry_after(response: httpx.Response) -> float | None:
    """The server's own wait before a retry: on 429 and on 503 (cekura-api.md 9.3)."""
    if response.status_code not in {429, 503}:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))


def _status_retriable(error: ApiError, idempotent: bool) -> bool:
    if isinstance(error, RateLimitedError):
        return True  # the server says it did nothing, so even a POST may be re-sent
    return idempotent and error.status_code in {500, 502, 503, 504}


_STATUS_ERRORS: Mapping[int, type[ApiError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
}


def _status_error(response: httpx.Response, method: str, path: str, key: Secret) -> ApiError:
    body = redact(response.text, key)
    status = response.status_code
    error: type[ApiError]
    if status == 429:
        error = RateLimitedError
    elif status >= 500:
        error = ServerError
    else:
        error = _STATUS_ERRORS.get(status, ApiError)
    return error(status, body, method=method, path=path, retry_after=_retry_after(response))


def _transport_error(exc: httpx.TransportError, method: str, path: str) -> TransportError:
    # Only a failure to get a connection at all proves no byte of the request was sent.
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    reason = type(exc).__name__
    detail = str(exc) or "no detail"
    return TransportError(
        f"{method} {path} failed ({reason}: {detail})", may_have_reached_server=not unsent
    )


def _unbound(response: httpx.Response) -> httpx.Response:
    """``response``, read and closed, without its link to its stream. httpx's response and its
    stream refer to each other: only Python's cyclic collector frees them, and with them the
    answer's bytes. At 10,000 runs that kept every bulk answer (0.5 MB each) between two
    full collections, and peak RSS rose 40 MB above what the plugin holds
    (docs/performance.md). The body is already read: the stream is not needed again."""
    response.stream = httpx.ByteStream(b"")
    return response


def _json_body(
    response: httpx.Response,
    method: str,
    path: str,
    fast: Callable[[bytes], Any] | None = None,
) -> Any:
    """The answer's JSON; ``fast`` may read the body as sent instead (None: it declines)."""
    if response.status_code == 204 or not response.content:
        return {}
    if fast is not None and (read := fast(response.content)) is not None:
        return read
    # msgspec decodes about 4x faster than json (docs/performance.md, issue #20). Imported
    # here, not at the top: an unused plugin must not load it. What it refuses and json
    # accepts (NaN, UTF-16, a byte-order mark) is left to json, as before.
    import msgspec

    try:
        return msgspec.json.decode(response.content)
    except msgspec.MsgspecError:
        pass
    except RecursionError:  # json would recurse as deep: one clear error, not a crash
        raise ProtocolError(
            f"{method} {path}: HTTP {response.status_code} with JSON nested too deeply to read"
        ) from None
    try:
        return response.json()
    except ValueError:
        snippet = " ".join(response.text.split())[:200]
        raise ProtocolError(
            f"{method} {path}: HTTP {response.status_code} with a body that is not JSON: "
            f"{snippet!r}"
        ) from None
