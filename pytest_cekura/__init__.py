"""pytest-cekura: run Cekura voice-agent test scenarios as pytest tests.

Mark a test with ``@pytest.mark.cekura_scenario(...)``; see the documentation in ``docs/``.
"""

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
from .models import CekuraResult, ExpectedOutcome, Metric, Result, Run, TranscriptLine

__all__ = [
    "ApiError",
    "AuthError",
    "CekuraClient",
    "CekuraError",
    "CekuraResult",
    "ConfigError",
    "ExpectedOutcome",
    "Metric",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "Result",
    "RetryPolicy",
    "Run",
    "ScenarioSpec",
    "ServerError",
    "TranscriptLine",
    "TransportError",
]
