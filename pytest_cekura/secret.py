"""A wrapper that keeps the API key out of reprs, tracebacks, ``--showlocals`` and logs."""

from __future__ import annotations


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
    """Replace every occurrence of the secret in ``text`` (belt and braces for error bodies)."""
    if secret is None or not secret.reveal():
        return text
    return text.replace(secret.reveal(), "***")
