"""Button data, built and read in one place per capability (`Codec`), within Telegram's 64 bytes.

A button's data is `prefix:kind:value...`, every value a whole number or a
word. The renderer that draws a keyboard and the handler that reads the
press use the same `Button`, so the two can never disagree on a format; a
press is authorized again by its service, never trusted for who may do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LIMIT = 64
"""Telegram refuses callback data over 64 bytes."""

Value = int | str
_PATTERN = {int: r"\d+", str: r"\w+"}


@dataclass(frozen=True)
class Button:
    """One kind of press of a capability, with the types of its values in order."""

    prefix: str
    kind: str
    types: tuple[type[int] | type[str], ...]

    def data(self, *values: Value) -> str:
        if len(values) != len(self.types) or not all(isinstance(v, t) for v, t in zip(values, self.types, strict=True)):
            raise TypeError(f"{self.prefix}:{self.kind} takes {self.types}, got {values}")
        data = ":".join([self.prefix, self.kind, *(str(value) for value in values)])
        if len(data.encode()) > LIMIT:
            raise ValueError(f"callback data over {LIMIT} bytes: {data}")
        return data

    @property
    def pattern(self) -> str:
        return ":".join([re.escape(self.prefix), re.escape(self.kind), *(_PATTERN[t] for t in self.types)])


@dataclass(frozen=True)
class Pressed:
    """A press read back: its kind and its values, typed."""

    kind: str
    values: tuple[Value, ...]

    def word(self, index: int) -> str:
        value = self.values[index]
        assert isinstance(value, str)
        return value

    def int(self, index: int) -> int:  # last: below it, `int` in this class's annotations means this method
        value = self.values[index]
        assert isinstance(value, int)
        return value


@dataclass
class Codec:
    """The buttons of one capability (`st`, `sr`, `ct`)."""

    prefix: str
    buttons: list[Button] = field(default_factory=list)

    def button(self, kind: str, *types: type[int] | type[str]) -> Button:
        made = Button(self.prefix, kind, types)
        self.buttons.append(made)
        return made

    def pattern(self, *buttons: Button) -> str:
        """A regex for CallbackQueryHandler: these buttons (default: all of this capability)."""
        return "|".join(f"^{button.pattern}$" for button in buttons or self.buttons)

    def parse(self, data: str) -> Pressed:
        for button in self.buttons:
            if re.fullmatch(button.pattern, data):
                raw = data.split(":")[2:]
                return Pressed(button.kind, tuple(t(v) for t, v in zip(button.types, raw, strict=True)))
        raise ValueError(f"not a {self.prefix} button: {data!r}")
