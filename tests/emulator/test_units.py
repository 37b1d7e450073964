"""Pure-logic tests: markup parsing and the token-bucket flood model (fake clock)."""

from __future__ import annotations

import random

import pytest

from bot.emulator.errors import ApiError
from bot.emulator.limits import Faults, Limits, RateLimiter
from bot.emulator.markup import ParseError, parse_html, parse_markdown_v2
from bot.emulator.validate import check_reply_markup, format_text


def test_html_entities_use_utf16_offsets_and_decode_references() -> None:
    text, ents = parse_html("😀 <b>Siaga &amp; aman</b> <a href='https://x.id'>peta</a>")
    assert text == "😀 Siaga & aman peta"
    assert ents[0] == {"type": "bold", "offset": 3, "length": 12}  # emoji = 2 UTF-16 units
    assert ents[1]["type"] == "text_link" and ents[1]["url"] == "https://x.id"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_html_errors_carry_tdlib_wording(bad: str, message: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_html(bad)
    assert str(err.value) == message


def test_bare_ampersand_is_literal_like_telegram_unless_strict() -> None:
    assert parse_html("Tom & Jerry")[0] == "Tom & Jerry"
    with pytest.raises(ParseError):
        parse_html("Tom & Jerry", strict_ampersand=True)


def test_markdown_v2_reserved_characters_and_entities() -> None:
    text, ents = parse_markdown_v2(r"*TPS 12* selesai\. _cek_ [peta](https://x.id)")
    assert text == "TPS 12 selesai. cek peta"
    assert [e["type"] for e in ents] == ["bold", "italic", "text_link"]
    with pytest.raises(ParseError, match="Character '.' is reserved"):
        parse_markdown_v2("selesai.")
    with pytest.raises(ParseError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown_v2("*tebal")


def test_length_is_counted_after_entity_parsing() -> None:
    assert format_text("<b>" + "a" * 4096 + "</b>", "HTML")[0] == "a" * 4096
    with pytest.raises(ApiError, match="message is too long"):
        format_text("a" * 4097, None)
    with pytest.raises(ApiError, match="message text is empty"):
        format_text("  <b> </b> ", "HTML")


def test_callback_data_limit_is_64_bytes_not_characters() -> None:
    ok = {"inline_keyboard": [[{"text": "x", "callback_data": "a" * 64}]]}
    assert check_reply_markup(ok) == ok
    with pytest.raises(ApiError, match="BUTTON_DATA_INVALID"):
        check_reply_markup({"inline_keyboard": [[{"text": "x", "callback_data": "é" * 33}]]})


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_pacer_at_exact_rate_after_burst_is_never_rejected_even_with_jitter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(private_per_second=1, private_burst=3), clock)
    for _ in range(3):  # empty the bucket first: the hardest moment for a pacer
        assert limiter.check(1, private=True) is None
    rng = random.Random(3)
    for k in range(1, 200):  # then exactly 1/s, arrivals jittered by up to +-5 % of a period
        clock.t = 1000.0 + k + rng.uniform(-0.05, 0.05)
        assert limiter.check(1, private=True) is None, f"rejected pacer message {k}"


def test_burst_past_capacity_is_rejected_with_whole_second_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(group_per_minute=20), clock)
    assert all(limiter.check(-5, private=False) is None for _ in range(20))
    verdict = limiter.check(-5, private=False)
    assert verdict is not None and verdict.scope == "group"
    assert verdict.retry_after == 3  # one token per 3 s, 10 % tolerance -> 2.7 s -> 3
    clock.t += 2.0  # too early: the flood wait is honoured
    early = limiter.check(-5, private=False)
    assert early is not None and early.retry_after == 1
    clock.t += 1.0
    assert limiter.check(-5, private=False) is None


def test_refused_request_consumes_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(global_per_second=2, honour_retry_after=False), clock)
    assert limiter.check(1, True) is None and limiter.check(2, True) is None
    for _ in range(50):
        assert limiter.check(3, True) is not None
    clock.t += 0.5  # exactly one token back despite 50 refusals
    assert limiter.check(4, True) is None
    assert limiter.check(5, True) is not None


def test_fault_rolls_are_reproducible_and_only_hit_message_methods() -> None:
    def pattern() -> list[str | None]:
        faults = Faults(rate_429=0.3, rate_5xx=0.2, seed=11)
        return [faults.roll("sendMessage") for _ in range(300)]

    first = pattern()
    assert first == pattern()
    assert 60 < first.count("429") < 120 and 35 < first.count("5xx") < 90
    assert Faults(rate_429=1.0).roll("getUpdates") is None
