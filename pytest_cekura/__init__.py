"""pytest-cekura: run Cekura voice-agent test scenarios as pytest tests.

Mark a test with ``@pytest.mark.cekura_scenario(...)``; see the documentation in ``docs/``.

Names are imported lazily so that ``pytest_cekura.livekit``, which voice agents import in
production, pulls in neither httpx nor pydantic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import CekuraClient, RetryPolicy
    from .errors import (
        ApiError,
        AuthError,
        CekuraError,
        ConfigError,
        NotFoundError,
        ProtocolError,
        RateLimitedError,
        ServerError,
        TransportError,
    )
    from .markers import ScenarioSpec
    from .metrics import MetricValue, MetricValues, UnknownMetricError
    from .models import CekuraResult, ExpectedOutcome, Metric, Result, Run, TranscriptLine
    from .secret import Secret

_HOMES = {
    "CekuraClient": "client",
    "RetryPolicy": "client",
    "ApiError": "errors",
    "AuthError": "errors",
    "CekuraError": "errors",
    "ConfigError": "errors",
    "NotFoundError": "errors",
    "ProtocolError": "errors",
    "RateLimitedError": "errors",
    "ServerError": "errors",
    "TransportError": "errors",
    "ScenarioSpec": "markers",
    "MetricValue": "metrics",
    "MetricValues": "metrics",
    "UnknownMetricError": "metrics",
    "CekuraResult": "models",
    "ExpectedOutcome": "models",
    "Metric": "models",
    "Result": "models",
    "Run": "models",
    "TranscriptLine": "models",
    "Secret": "secret",
}

__all__ = [
    "ApiError",
    "AuthError",
    "CekuraClient",
    "CekuraError",
    "CekuraResult",
    "ConfigError",
    "ExpectedOutcome",
    "Metric",
    "MetricValue",
    "MetricValues",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "Result",
    "RetryPolicy",
    "Run",
    "ScenarioSpec",
    "Secret",
    "ServerError",
    "TranscriptLine",
    "TransportError",
    "UnknownMetricError",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pytest_cekura' has no attribute {name!r}")
    return getattr(import_module(f".{home}", __name__), name)
