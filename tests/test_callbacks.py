"""Button data: what a keyboard writes is what its handler reads, and never past Telegram's 64 bytes."""

from __future__ import annotations

import re

import pytest

from bot.render import escorts, incidents, sitrep, status
from bot.render.callbacks import Codec


def test_a_press_reads_back_as_it_was_written() -> None:
    codec = Codec("xx")
    page = codec.button("p", int, int)
    word = codec.button("w", int, str)
    assert codec.parse(page.data(12, 3)).values == (12, 3)
    pressed = codec.parse(word.data(7, "rawan"))
    assert (pressed.kind, pressed.int(0), pressed.word(1)) == ("w", 7, "rawan")


def test_bad_values_and_foreign_data_are_refused() -> None:
    codec = Codec("xx")
    page = codec.button("p", int)
    with pytest.raises(TypeError):
        page.data("7")
    with pytest.raises(ValueError, match="64 bytes"):
        codec.button("w", str).data("x" * 70)
    for foreign in ("yy:p:1", "xx:p:1:2", "xx:p:a", "xx:q:1"):
        with pytest.raises(ValueError):
            codec.parse(foreign)


@pytest.mark.parametrize("codec", [status.BUTTONS, sitrep.BUTTONS, incidents.BUTTONS, escorts.BUTTONS])
def test_every_button_of_a_capability_matches_its_handler_pattern_and_no_other(codec: Codec) -> None:
    for button in codec.buttons:
        data = button.data(*(2**40 if t is int else "sangat_rawan" for t in button.types))
        assert re.match(codec.pattern(button), data) and len(data.encode()) <= 64
        assert codec.parse(data).kind == button.kind
        others = [b for b in codec.buttons if b is not button]
        assert not any(re.match(codec.pattern(other), data) for other in others), data
