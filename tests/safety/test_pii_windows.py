"""The PII number windows carry the most digits one of their clusters holds, and a number pattern
reads a window only when that is enough for its match (SSN 9, card 12, phone 6): texts at each
threshold, alone and merged with a smaller cluster, must give what the full scan gives."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.pii import (
    _CLUSTER,
    _CLUSTER_ASCII,
    _IPV4,
    PIIDetector,
    _close_colons,
    _clusters,
    counted_number_windows,
)

DET = PIIDetector()
PAD = " lorem ipsum dolor " * 3

EDGES = [
    (f"{PAD}ssn 078-05-1120 {PAD}", "SSN"),  # exactly 9 digits
    (f"{PAD}in 2024 ssn 078-05-1120{PAD}", "SSN"),  # merged with a 4-digit cluster before it
    (f"{PAD}card 4111 1111 1111{PAD}", None),  # 12 digits, not a Luhn-valid card: same as full
    (f"{PAD}card 4000-0566-5569{PAD}", "CREDIT_CARD"),  # 12 digits, Luhn-valid
    (f"{PAD}call 555 012 now{PAD}", "PHONE"),  # a loose phone of 6 digits, with a phone word
    (f"{PAD}call +1 (415) 555-0100 ext. 42{PAD}", "PHONE"),
    (f"{PAD}v1.2.3.4 and 10.0.0.1{PAD}", "IP_ADDRESS"),
    (f"{PAD}IBAN GB82WEST12345698765432{PAD}", "IBAN"),
    (f"{PAD}year 1999, page 12345{PAD}", None),
]


@pytest.mark.parametrize(("text", "typ"), EDGES)
def test_digit_thresholds_agree_with_the_full_scan(text: str, typ: str | None) -> None:
    fast = DET.scan_view(TextView(text))
    assert fast == DET.scan_view(TextView(text), anchored=False)
    assert (typ in {f.type for f in fast}) if typ else not fast


def test_windows_count_the_largest_cluster_and_stay_in_the_text() -> None:
    text = "a 2024 " + "b" * 12 + " 078-05-1120 " + "x" * 60 + " 12345"
    wins = counted_number_windows(text)
    assert [d for _, _, d in wins] == [9, 5]  # "2024" and the SSN: two clusters, one window of 9
    assert wins[-1][1] == len(text)
    assert counted_number_windows("ok ٣٤٥٦") == [(0, 7, 4)]


@pytest.mark.parametrize(("text", "close"), [
    ("fe80::1", True), ("a:bcde:f", True), ("a:bcdef:g", False), ("https://x.org/a:b", False), ("", False),
    ("x: 1, y: 2, z:3:4", True), (":", False), ("ab:" + "c" * 5 + ":d:", True),
])
def test_close_colons_is_a_pair_of_consecutive_colons_at_most_five_apart(text: str, close: bool) -> None:
    assert _close_colons(text) is close
    colons = [i for i, c in enumerate(text) if c == ":"]
    assert close is any(b - a <= 5 for a, b in pairwise(colons))


@given(st.text(alphabet="0123456789" * 3 + "ab -.:/+()", max_size=80))
def test_digit_clusters_from_the_shape_equal_the_pattern(text: str) -> None:
    expected = [(m.start(), m.end(), sum(map(str.isdecimal, m.group()))) for m in _CLUSTER_ASCII.finditer(text)]
    assert _clusters(text) == expected


@pytest.mark.parametrize("text", [
    "1234", "12 3456789 0", "1" + "x" * 8 + "2", "1" + "x" * 9 + "2", "x9", "9x", "",
    " ".join(["12"] * 80) + " " + "9" * 30,  # many digit runs, and a long one
    "٣٤٥٦ 1234",  # non-ASCII digits: the Unicode pattern
])
def test_digit_clusters_at_the_edges(text: str) -> None:
    rx = _CLUSTER_ASCII if text.isascii() else _CLUSTER
    assert _clusters(text) == [(m.start(), m.end(), sum(map(str.isdecimal, m.group()))) for m in rx.finditer(text)]


@pytest.mark.parametrize("text", [
    f"{PAD}host 10.0.0.1{PAD}", f"{PAD}version 1.2.3 build 4567{PAD}", f"{PAD}1.2.3.4.5{PAD}", f"{PAD}v 2024.10.01.7 and 192.168.1.254.{PAD}",
])
def test_ipv4_windows_with_three_dots_or_fewer_find_what_the_pattern_finds(text: str) -> None:
    found = [(f.start, f.end) for f in DET.scan_view(TextView(text)) if f.type == "IP_ADDRESS"]
    assert found == [m.span() for m in _IPV4.finditer(text)]
    assert DET.scan_view(TextView(text)) == DET.scan_view(TextView(text), anchored=False)
