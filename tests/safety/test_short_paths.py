"""The short-text early exits added for issue #11 (a short prompt with nothing to find): each says
"nothing" only when the full, unanchored scan finds nothing, on soups of the strings the exits
test for and on the public rows cut to short texts; and the anchored scan still equals the full one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.safety.test_lexicon_gate import _short_rows
from tests.safety.test_secret_short_gate import PIECES

from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.secrets import SecretDetector

SECRETS = SecretDetector()
# Beyond the gate soups: the literal-led formats, CLI flags, long tokens and control characters.
SECRET_EXTRA = ["-----BEGIN RSA PRIVATE KEY-----", "$2b$12$abcdefghijklmnopqrstuv", "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9",
                "--password hunter2x", "-p", "x-api-key", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "averyveryverylongword",
                "sk-proj-AbCdEf0123456789XyZ", "\x01password", "hello", "world", "$", "*", "-"]


def _secrets_exit_is_sound(text: str) -> None:
    view = TextView(text)
    if SECRETS._nothing_short(view):
        assert SECRETS.scan_view(TextView(text), anchored=False) == [], text
    assert SECRETS.scan_view(TextView(text)) == SECRETS.scan_view(TextView(text), anchored=False), text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(sorted({*PIECES, *SECRET_EXTRA})), max_size=8), st.sampled_from([" ", "", "\n", "_", " = ", "\t"]))
def test_secrets_short_exit_on_soups(parts: list[str], sep: str) -> None:
    _secrets_exit_is_sound(sep.join(parts)[:_SHORT])


def test_secrets_short_exit_on_public_rows() -> None:
    texts = _short_rows()
    for t in texts:
        _secrets_exit_is_sound(t)
    if texts:
        exits = [SECRETS._nothing_short(TextView(t)) for t in texts]
        assert any(exits) and not all(exits)  # it decides both ways on real prompts


def test_secrets_short_exit_cases() -> None:
    assert SECRETS._nothing_short(TextView("Say hello to bench client number 17."))
    for text in ("my password is hunter2", "run it with -v", "costs $5", "a*b", "AKIAIOSFODNN7EXAMPLE here", "the key to it",
                 "x" * (_SHORT + 1), "user\x01name"):
        assert not SECRETS._nothing_short(TextView(text)), text
