"""The PII and secrets pre-filters (email and number windows, long tokens joined, literal-gated
alternations, lazy gates) find exactly what every pattern over the whole text finds, at the edges
where a window could cut a match short: a value at the very start or end of the text, unicode
around it, many digits or many "@" without PII, a secret next to a token that is not one."""

from __future__ import annotations

import pytest

from llmrelay.safety.detectors._literals import GatedAlternation, required_literals, split_alternatives
from llmrelay.safety.detectors._view import Joined, TextView
from llmrelay.safety.detectors.pii import PIIDetector, email_windows, number_windows
from llmrelay.safety.detectors.secrets import SecretDetector, _matches_space
from llmrelay.safety.findings import Finding

PII = PIIDetector()
SECRETS = SecretDetector()
KEY = "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"
AWS = "AKIAIOSFODNN7EXAMPLE"

CASES = [
    (f"{KEY} is the token", "secret", "GITHUB_TOKEN"),
    (f"the token is {KEY}", "secret", "GITHUB_TOKEN"),
    (KEY, "secret", "GITHUB_TOKEN"),
    (f"clé « {AWS} » dans le fichier ünïcödé", "secret", "AWS_ACCESS_KEY"),
    (f"{'word ' * 50}{AWS}", "secret", "AWS_ACCESS_KEY"),
    ("bob@example.com wrote", "pii", "EMAIL"),
    ("write to bob@example.com", "pii", "EMAIL"),
    ("écrivez à elodie.martin@exemple.fr — merci, ñandú", "pii", "EMAIL"),
    ("a" * 70 + "@example.com is too long a local part, but x@example.com is fine", "pii", "EMAIL"),
    ("4111 1111 1111 1111", "pii", "CREDIT_CARD"),
    ("card: 4111111111111111", "pii", "CREDIT_CARD"),
    ("call +1 415 555 0100", "pii", "PHONE"),
    ("IBAN GB82WEST12345698765432", "pii", "IBAN"),
    ("postgres://admin:s3cr3tPass@db.internal:5432/app", "secret", "CONNECTION_STRING"),
    ("run: mytool --api-key Zx81kQ0pLm3nB7vC9", "secret", "PASSWORD"),
    ("-p Zx81kQ0pLm3nB7vC9 at the very start", "secret", "PASSWORD"),
]


def _both(text: str) -> tuple[list[Finding], list[Finding]]:
    fast = PII.scan_view(TextView(text)) + SECRETS.scan_view(TextView(text))
    full = PII.scan_view(TextView(text), anchored=False) + SECRETS.scan_view(TextView(text), anchored=False)
    return fast, full


@pytest.mark.parametrize(("text", "category", "typ"), CASES)
def test_value_at_the_edges_is_found_as_by_the_full_scan(text: str, category: str, typ: str) -> None:
    fast, full = _both(text)
    assert fast == full
    assert any(f.category == category and f.type == typ for f in fast), fast


@pytest.mark.parametrize("text", [
    "version 1.2.3.4 build 20240101 of 2024-01-01 at 10:30, order 12 34 56, ref 9-8-7-6-5 " * 20,
    "@ " * 100 + "and @@@ and user@ and @host.com",
    "a@b@c.com d@@e.org " * 40,
    "math: 3² + 4² = 5², ٣٤٥٦٧٨٩ and ７８９０１２３",
    "pricing: 1000 requests cost $0.02, 5000 cost $0.09, 100000 cost $1.50",
])
def test_many_digits_or_ats_without_pii_agree_with_the_full_scan(text: str) -> None:
    fast, full = _both(text)
    assert fast == full


def test_number_windows_cover_each_cluster_of_four_digits() -> None:
    text = "x" * 40 + " 12 34 " + "y" * 40 + " 7 " + "z" * 40 + " 555-0100"
    wins = number_windows(text)
    assert len(wins) == 2  # "12 34" (4 digits, one cluster) and "555-0100"; the lone 7 is no window
    assert wins[0][0] <= text.index("12 34") and wins[0][1] >= text.index("12 34") + 5
    assert wins[1][1] == len(text)
    assert number_windows("٣٤٥٦ ok") == [(0, 7)]  # Unicode digits count as \d does


def test_email_windows_merge_and_give_up_on_many_ats() -> None:
    assert email_windows("a@b.com c@d.org") == [(0, 15)]
    assert email_windows("@ " * 40) is None


def test_joined_maps_findings_back_to_the_text() -> None:
    text = "aaa  " + KEY + "\n\tzz " + AWS
    spans = [(5, 5 + len(KEY)), (len(text) - len(AWS), len(text))]
    j = Joined(text, spans)
    assert j.text == f"{KEY} {AWS}"
    f = j.back(Finding("secret", len(KEY) + 1, len(KEY) + 1 + len(AWS), 1.0))
    assert text[f.start:f.end] == AWS


def test_gated_alternation_runs_only_alternatives_whose_literal_is_there() -> None:
    alts = GatedAlternation([("k", r"\bNRJS-[a-f0-9]{4}\b|\b[a-z]{3}NRAL\b"), ("k", r"\b[A-Z]{5}(?:-[A-Z]{5})\b")])
    rx = alts.regex_for("x abcNRAL y")
    assert rx is not None and "NRJS" not in rx.pattern and "NRAL" in rx.pattern and "-[A-Z]" not in rx.pattern
    text = "x abcNRAL y ABCDE-FGHIJ"
    rx = alts.regex_for(text)
    assert rx is not None and [m.lastgroup for m in rx.finditer(text)] == ["k0", "k1"]
    assert split_alternatives(r"a(?:b|c)|[|]d|e\|f") == ["a(?:b|c)", "[|]d", r"e\|f"]
    assert required_literals(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b") == ("KIA", "SIA")  # the engine factors out the "A"
    assert required_literals(r"(?i:secret)\w+") is None  # case-insensitive literals gate nothing
    assert required_literals(r"(?i)abc") is None


def test_token_formats_cannot_match_a_space() -> None:
    assert not _matches_space(r"\bghp_[A-Za-z0-9]{30,}")
    assert _matches_space(r"foo\s+bar") and _matches_space(r"a[^x]b") and _matches_space(r"a.b")
    assert not _matches_space(r"a[^\s]b") and not _matches_space(r"a(?=\S)")


def test_gated_alternation_wakes_every_alternative_sharing_a_literal_and_either_literal_of_one() -> None:
    alts = GatedAlternation([("t", r"\bsk-[a-z]{4}\b"), ("t", r"\bsk-[0-9]{4}\b"), ("u", r"\b(?:AKIA|ASIA)[0-9]{4}\b"), ("v", r"\w+")])
    text = "sk-abcd sk-1234 ASIA9999"
    rx = alts.regex_for(text)
    assert rx is not None
    assert [(m.lastgroup, m.group()) for m in rx.finditer(text)] == [("t0", "sk-abcd"), ("t1", "sk-1234"), ("u2", "ASIA9999")]
    # "\w+" has no literal: it is always there, so some alternative always runs.
    only = alts.regex_for("plain words")
    assert only is not None and [m.lastgroup for m in only.finditer("plain words")] == ["v3", "v3"]
    assert GatedAlternation([("t", r"\bsk-x")]).regex_for("nothing") is None
