"""The version-1 Tests-as-Code suite document (``cekura.tests.json``) as pydantic models.

cekura-api.md 10.3 is the source. The plugin checks a file against ``SuiteDocument`` before
anything is sent, and the emulator publishes ``SuiteDocument.model_json_schema()`` at
``GET .../json_schema/?version=1``. Checks that need the workspace (metric slugs enabled for
the agent, personality ids) are the service's: ``validate_scenarios_json`` answers them.

``problems`` turns a pydantic error into the service's location keys
(``scenarios[1].metrics[0]``), so a message from the file check and one from the service
read alike.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

MAX_CASES = 200
MAX_NAME = 80
TOOLS = ("end_call", "dtmf", "receive_dtmf", "end_call_only_on_transfer", "send_sms", "call_hold")
INLINE_PERSONALITY_FIELDS = ("prompt", "language", "voice_model", "voice_id", "background_noise")

Tool = Literal[
    "end_call", "dtmf", "receive_dtmf", "end_call_only_on_transfer", "send_sms", "call_hold"
]


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt field would otherwise be dropped silently.
    model_config = ConfigDict(extra="forbid")


class TestProfile(_Model):
    """Inline test data; ``{{test_profile.<key>}}`` in instructions reads it."""

    __test__ = False  # not a pytest test class

    agent_variables: dict[str, Any] = Field(default_factory=dict)
    caller_variables: dict[str, Any] = Field(default_factory=dict)


class Personality(BaseModel):
    """``{"base": id, ...overrides}``, or inline with every field of
    ``INLINE_PERSONALITY_FIELDS``."""

    model_config = ConfigDict(extra="allow")

    base: int | None = None
    prompt: str | None = None
    language: str | None = None
    voice_model: str | None = None
    voice_id: str | None = None
    background_noise: str | bool | None = None

    @model_validator(mode="after")
    def _inline_is_complete(self) -> Personality:
        if self.base is None:
            missing = [name for name in INLINE_PERSONALITY_FIELDS if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    "an inline personality (no 'base') needs "
                    + ", ".join(missing)
                    + "; add them or give 'base': <personality id>"
                )
        return self


Metric = int | str


class Defaults(_Model):
    frequency: int | None = Field(default=None, ge=1, le=100)
    concurrency_limit: int | None = Field(default=None, ge=1)
    language: str | None = None
    max_duration: int | None = Field(default=None, ge=1)
    metrics: list[Metric] = Field(default_factory=list)
    personality: int | Personality | None = None
    test_profile: int | TestProfile | None = None
    tags: list[str] = Field(default_factory=list)


class Case(_Model):
    """One case of a suite; ``key`` (default: the name) identifies it in results and tests."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    key: str | None = Field(default=None, min_length=1)
    type: Literal["instruction", "conditional_actions"] = "instruction"
    instructions: str | None = None
    conditional_actions: list[Any] | dict[str, Any] | None = None
    expected_outcome: str | None = None
    first_message: str = "Hello"
    metrics: list[Metric] = Field(default_factory=list)
    personality: int | Personality | None = None
    test_profile: int | TestProfile | None = None
    tags: list[str] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    language: str | None = None
    frequency: int | None = Field(default=None, ge=1, le=100)
    max_duration: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _type_fields(self) -> Case:
        if self.type == "instruction" and not (self.instructions or "").strip():
            raise ValueError("Instructions are required.")
        if self.type == "conditional_actions" and not self.conditional_actions:
            raise ValueError("conditional_actions are required for a conditional_actions case.")
        return self

    @property
    def case_key(self) -> str:
        return self.key if self.key is not None else self.name


class Suite(_Model):
    name: str | None = None
    description: str | None = None


class SuiteDocument(_Model):
    """A whole ``cekura.tests.json`` document, version "1"."""

    version: Literal["1"]
    suite: Suite = Field(default_factory=Suite)
    defaults: Defaults = Field(default_factory=Defaults)
    scenarios: list[Case] = Field(min_length=1, max_length=MAX_CASES)
    #: Declared only to be rejected by location, with every other problem (10.3).
    agent_id: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("agent_id")
    @classmethod
    def _no_agent_id(cls, value: Any) -> Any:
        raise ValueError(
            "agent_id does not belong in the suite document; the agent is chosen per "
            "request (--cekura-agent, the cekura_agent ini key or CEKURA_AGENT_ID)"
        )

    @model_validator(mode="after")
    def _unique_keys(self) -> SuiteDocument:
        seen: set[str] = set()
        for case in self.scenarios:
            if case.case_key in seen:
                raise ValueError(f"two cases have the key {case.case_key!r}; keys must be unique")
            seen.add(case.case_key)
        return self


_UNION_BRANCHES = frozenset({"int", "str", "bool", "Personality", "TestProfile"})


def location(loc: tuple[int | str, ...]) -> str:
    """pydantic's ``("scenarios", 1, "metrics", 0)`` as ``scenarios[1].metrics[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.isidentifier() or part in _UNION_BRANCHES:
            continue  # a union branch or validator pydantic tried: not a location
        else:
            text += f".{part}" if text else str(part)
    return text


def problems(error: ValidationError) -> dict[str, list[str]]:
    """Every problem of a document, keyed by location, like the service's 400."""
    found: dict[str, list[tuple[str, str]]] = {}
    for item in error.errors():
        where = location(tuple(item["loc"])) or "document"
        message = str(item["msg"]).removeprefix("Value error, ")
        found.setdefault(where, []).append((item["type"], message))
    answer: dict[str, list[str]] = {}
    for where, items in found.items():
        # For ``id | {object}`` pydantic reports each branch; when one branch says what is
        # wrong with the object, "should be a valid integer" from the other only confuses.
        specific = [message for kind, message in items if not kind.endswith("_type")]
        messages = specific or [message for _, message in items]
        answer[where] = list(dict.fromkeys(messages))
    return answer


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the version-1 document (for editors and ``json_schema``)."""
    schema = SuiteDocument.model_json_schema()
    schema["title"] = "Cekura Tests-as-Code suite, version 1"
    return schema
