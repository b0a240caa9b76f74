"""The secrets detector's gates: a context pattern runs only when its gate holds, a gate being a
substring of the lower-cased text or a whole word of it ("w:"). Each text below sits at a gate's
edge (the word next to punctuation, in upper case, glued to a control character): the gated scan
must find what the full scan finds, and find something."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.secrets import (
    _KEYWORDS,
    SecretDetector,
    _assignments,
    _Gates,
    _KeywordFinder,
    _literal_gate,
)

DET = SecretDetector()

EDGES = [
    "CREATE USER app IDENTIFIED BY 'Xk9#mPq2vL';",
    "ALTER LOGIN sa WITH PASSWORD 'N0tS0Secret!';",
    "The password for user bob is 'pa55Word9'",
    "token=os.getenv('API_TOKEN', 'fallbackSecret99')",
    "secret = os.environ.get(\"X\") or 'hunter2hunter'",
    '{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"}',
    "$p = ConvertTo-SecureString 'P@ssw0rd123' -AsPlainText",
    "curl -u admin:s3cretPassw0rd https://example.com",
    "git clone --user admin:Sup3rS3cret https://example.com",
    "vault operator unseal AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/==",
    "CC_TEST_REPORTER_ID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "Server=db;Database=app;PWD=Zq8xLm2p;",
    "\x01password=Zq8xLm2p;",  # a control character the view keeps inside the word
    # The literal-led formats, whose literal is looked for first (short and past _view._SHORT).
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "hash: $2b$12$KIXQJ8eW9t1aQe0q1yZp5uFv8mO3tJ7xYbT2sXcLr4nVhD6gA9kWe",
    "mysql user: *6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9 " + "and some words " * 20,
]


def test_literal_led_formats_have_their_literal_gate() -> None:
    gates = [DET._literal_gates[rx.pattern] for _, rx in DET._literal]
    assert gates and all(gates), gates  # each is gated ...
    assert not DET.scan_view(TextView("-----begin rsa private key----- $ * " * 3))  # ... and a near miss stays quiet


@pytest.mark.parametrize("text", EDGES)
def test_gated_scan_equals_full_scan_at_the_gates(text: str) -> None:
    fast = DET.scan_view(TextView(text))
    assert fast == DET.scan_view(TextView(text), anchored=False)
    assert fast, "each edge text holds a secret"


def test_word_gates_are_whole_words_and_fall_back_on_control_characters() -> None:
    gate = _Gates(TextView("my_password: x, PWD= y"))
    assert gate("w:password") and gate("w:pwd") and not gate("w:pass")
    assert gate("pass")  # a substring gate
    assert _Gates(TextView("x\x02password=1"))("w:password")  # not a word there, but the substring is
    assert not _Gates(TextView("passwords only"))("w:password")
    assert _Gates(None)("w:anything")  # the reference scan runs every pattern


ASSIGNMENTS = [
    "passwd_token = 'Xk9mPq2vLz'", "db_pw: hunter2x, pwd=Qw3rty99", "PaSsWoRd=abc123XYZ apikey=Zz9Yy8Xx7Ww6",
    "monkey = 'banana' and key: AKIAIOSFODNN7EXAMPLE", "psw=s3cr3tV4l pasw=an0therOne", "srt_key=1a2b3c4d5e6f",
    "credentials, secret, token; key", "tokentokentoken=abcdefgh12345678", "İstanbul password = 'Zq8xLm2p'",
]


@pytest.mark.parametrize("text", ASSIGNMENTS)
def test_keyword_finder_reads_assignments_as_the_keyword_regex_does(text: str) -> None:
    view = TextView(text)
    present = tuple(k for k in _KEYWORDS if view.contains(k))
    assert _assignments(text, view.low, present) == _assignments(text)


def test_keyword_finder_takes_the_leftmost_and_the_first_alternative_on_a_tie() -> None:
    low = "a passw pwd key"
    finder = _KeywordFinder(low, ("pass", "pasw", "pwd", "key", "pw"))
    assert finder.search(0) == (2, 6)  # "pass", the first alternative that matches there
    assert finder.search(6) == (8, 11)  # "pwd" wins over "pw" at the same place
    assert finder.search(11) == (12, 15)
    assert finder.search(15) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["pass", "pa", "sw", "psw", "pw", "d", "key", "token", "=", ":", " ", "_", "x1Y2z3W4", "'", "\n", "K"]), max_size=30))
def test_keyword_finder_equals_the_regex_on_keyword_soup(parts: list[str]) -> None:
    text = "".join(parts)
    view = TextView(text)
    present = tuple(k for k in _KEYWORDS if view.contains(k))
    assert _assignments(text, view.low, present) == _assignments(text)


def test_token_formats_with_a_literal_run_only_when_the_long_tokens_hold_it() -> None:
    assert _literal_gate(r"\bAKCp[A-Z]{5}|\bsl\.[a-z]{4}") == ("AKCp", "sl.")
    assert _literal_gate(r"\b[a-z]{3}\d|\bAKCp\d") is None  # one alternative without a literal: no gate
    assert _literal_gate(r"(?i:abc)\d+") is None
    for text in (
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9abcdefghij here",
        "sf 00DAbCdEfGhIjKl!AbCdEfGhIjKlMnOpQrStUv.x here",
        "db mysql://root:Zq8xLm2pW@db.internal:3306/app here",
        "key LTAIAbCdEf1234567890 here",
    ):
        fast = DET.scan_view(TextView(text))
        assert fast and fast == DET.scan_view(TextView(text), anchored=False), text
