"""PII's digit helpers on their fast paths (ASCII, byte sums) give what the per-character
definitions give, on ASCII and non-ASCII digit strings (Arabic-Indic, superscripts)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors.pii import _digits, luhn_ok


def luhn_by_definition(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from(list("0123456789")), max_size=25) | st.text(st.sampled_from(list("0123456789٣²")), max_size=25))
def test_luhn(digits: str) -> None:
    assert luhn_ok(digits) == luhn_by_definition(digits)


def test_luhn_known_numbers() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713") and luhn_ok("")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from(list("0123456789 -.()+x/:٣²a\t")), max_size=40))
def test_digits(s: str) -> None:
    assert _digits(s) == "".join(c for c in s if c.isdigit())
