"""A wrapper that keeps the API key out of reprs, tracebacks, ``--showlocals`` and logs."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

from .errors import ConfigError


class Secret:
    """Holds a secret string; every way of printing it shows ``'***'``.

    Only ``reveal()`` returns the value, and only the HTTP auth hook calls it, at send time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling (e.g. to an xdist worker) would copy the value somewhere we do not control.
        raise TypeError("Secret values cannot be pickled")


def redact(text: str, secret: Secret | None) -> str:
    """Replace every occurrence of the secret in ``text`` (belt and braces for error bodies),
    also where a server echoes it URL-encoded or base64-encoded (on its own, or inside a
    longer encoded value such as ``base64("user:" + key)``)."""
    if secret is None or not secret.reveal():
        return text
    for form in sorted(_encoded_forms(secret.reveal()), key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def contains(text: str, secret: Secret | None) -> bool:
    """True when ``text`` holds the secret in any form :func:`redact` hides."""
    return redact(text, secret) != text


#: Shorter base64 fragments than this are not redacted: they would match ordinary text.
_MIN_FRAGMENT = 8


def refuse_in_values(given: Iterable[tuple[str, object]], secret: Secret, env_name: str) -> None:
    """Raise ``ConfigError`` naming the first option (``given``: its source, its value) whose
    value holds the key in any form ``contains`` finds."""
    for source, value in given:
        if isinstance(value, str | Path) and contains(str(value), secret):
            raise ConfigError(
                f"pytest-cekura: {source} contains the value of {env_name}: "
                f"remove it; Cekura authenticates with the {env_name} environment variable "
                "alone (a local worker inherits it), and this option is printed in the header "
                "and the reports"
            )


def _encoded_forms(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    # Lower-case percent escapes (%2f) are as valid as upper-case ones.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), form) for form in set(forms)}
    raw = value.encode()
    for offset in range(3):
        # The key's bytes may start at any position modulo 3 within a longer encoded value:
        # keep only the characters that encode the key's bytes alone at that alignment.
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = 4 if offset else 0
        end = 4 * ((offset + len(raw)) // 3)
        core = encoded[start:end]
        if len(core) >= _MIN_FRAGMENT:
            forms |= {core, core.replace("+", "-").replace("/", "_")}
    return {form for form in forms if form}
