"""``Option[T]``: one setting declared once (flag, ini key, environment variable, help,
``choices``, parser), registered with pytest and read from its sources; as an attribute of
``options.Settings`` it reads as the parsed ``T``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, cast, overload

import pytest

from . import values as v

if TYPE_CHECKING:
    from .options import Settings

T = TypeVar("T")


class _Choices(tuple[str, ...]):
    """The command line's ``choices``: listed in ``--help`` (and to shell completion), but
    every value is let through, so a bad one gets the option's own message (which names the
    source, as for the environment and ini), not argparse's."""

    __slots__ = ()

    def __contains__(self, value: object) -> bool:
        return True


class Option(Generic[T]):
    """One setting: where it comes from and how its raw value becomes a ``T``.

    ``parse(value, source, context)`` gets None when no source gives a value and returns the
    default then. ``switch`` makes a flag that takes no value: ``True`` turns the setting on,
    ``False`` (e.g. ``--cekura-no-preflight``) turns a default-on setting off; its ini key is
    a bool. ``optional_value`` lets the flag be given without a value, which then stands
    for it (``--cekura-share-links`` is ``--cekura-share-links=7``). On a ``Settings``
    instance the attribute is the resolved ``T``.
    """

    def __init__(
        self,
        flag: str,
        help: str,
        parse: Callable[[Any, str, v.Context], T],
        *,
        env: str | None = None,
        metavar: str | None = None,
        ini: str | None = None,
        switch: bool | None = None,
        choices: Sequence[str] | None = None,
        optional_value: str | None = None,
    ) -> None:
        self.flag = flag
        self.help = help
        self.parse = parse
        self.env = env
        self.metavar = metavar
        self.ini = ini or self.dest
        self.switch = switch
        self.choices = _Choices(choices) if choices is not None else None
        self.optional_value = optional_value
        self.name = ""  # the Settings attribute, set by __set_name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Option[T]: ...
    @overload
    def __get__(self, obj: Settings, owner: type | None = None) -> T: ...
    def __get__(self, obj: Settings | None, owner: type | None = None) -> Option[T] | T:
        if obj is None:
            return self
        return cast(T, obj._values[self.name])

    def __set__(self, obj: Settings, value: object) -> NoReturn:
        raise AttributeError(f"Settings are read-only: {self.name}")

    def register(self, group: pytest.OptionGroup, parser: pytest.Parser) -> None:
        if self.switch is not None:
            action = "store_true" if self.switch else "store_false"
            group.addoption(self.flag, action=action, default=None, dest=self.dest, help=self.help)
            parser.addini(self.ini, self.help, type="bool", default=not self.switch)
        else:
            optional = (
                {} if self.optional_value is None else {"nargs": "?", "const": self.optional_value}
            )
            group.addoption(
                self.flag,
                **optional,
                default=None,
                dest=self.dest,
                metavar=self.metavar,
                choices=self.choices,
                help=self.help,
            )
            parser.addini(self.ini, self.help, default=None)

    def pick(self, cli_value: Any, ini_value: Any, env: Mapping[str, str]) -> tuple[Any, str]:
        """(value, where it came from), so error messages can name the source to fix."""
        if cli_value is not None:
            return cli_value, self.flag
        if self.env and env.get(self.env, "").strip():
            return env[self.env].strip(), f"environment variable {self.env}"
        if self.switch is not None:
            return ini_value, f"ini key {self.ini}"
        if ini_value not in (None, "", []):
            return ini_value, f"ini key {self.ini}"
        return None, self.flag
