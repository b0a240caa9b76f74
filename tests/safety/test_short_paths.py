"""The short-text early exits added for issue #11 (a short prompt with nothing to find): each says
"nothing" only when the full, unanchored scan finds nothing, on soups of the strings the exits
test for and on the public rows cut to short texts; and the anchored scan still equals the full one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.safety.test_lexicon_gate import _short_rows
from tests.safety.test_secret_short_gate import PIECES

from llmrelay.safety.detectors import adversarial, linear, pii
from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.secrets import SecretDetector

SECRETS = SecretDetector()
# Beyond the gate soups: the literal-led formats, CLI flags, long tokens and control characters.
SECRET_EXTRA = ["-----BEGIN RSA PRIVATE KEY-----", "well-known", " -v", "\t-p", "-", "$2b$12$abcdefghijklmnopqrstuv", "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9",
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
    for text in ("my password is hunter2", "run it with -v", "-v it", "a\n-v", "a\t-v", "costs $5", "a*b", "AKIAIOSFODNN7EXAMPLE here",
                 "the key to it", "x" * (_SHORT + 1), "user\x01name", "-----BEGIN RSA PRIVATE KEY-----"):
        assert not SECRETS._nothing_short(TextView(text)), text
    # A hyphen inside a word is no CLI flag; a long token alone leaves only the token formats.
    assert SECRETS._nothing_short(TextView("a well-known fact"))
    assert SECRETS._short_gates_shut(TextView("Do you know why we feast at Thanksgiving?"))
    assert not SECRETS._nothing_short(TextView("Do you know why we feast at Thanksgiving?"))


def test_secrets_short_gates_shut_leaves_only_token_formats() -> None:
    # Token-format secrets in short texts whose other gates are shut: still found, as the full scan finds them.
    for text in ("use ghp_abcdefghijklmnopqrstuvwxyz0123456789 now", "AKIAIOSFODNN7EXAMPLE", "sk-proj-AbCdEf0123456789XyZabcdefghijkl ok"):
        view = TextView(text)
        assert SECRETS.scan_view(view) == SECRETS.scan_view(TextView(text), anchored=False), text


# --- PII, the adversarial-suffix detector and the learned lexicons' early "nothing" ---------------

PII = pii.PIIDetector()
ADV = adversarial.AdversarialSuffixDetector()
PII_PIECES = ["call", "me", "at", "555", "0100", "12", "1234", "GB95WEST12ABCDEFGH", "GB82", "WEST", "0000", "DE", "44", "1.2", "10.0", "3.4.", "4111 1111 1111 1111", "bob@example.com", "@", "::1", "fe80::1",
              "a:b:c", "10.0.0.1", "GB82WEST12345698765432", "٣٤٥٦", "phone", "+1", "(415)", "-", ".", "x"]
ADV_PIECES = ["please", "write", "a", "story", "about", "cats", "and", "dogs", "for", "me", "now", "!", "?", "()", "{}", "[",
              "describing.\\ + similarlyNow", "write oppositeley.]( Me giving**ONE", "\\!--Two", "==", "$", "%", "\n", "é", "“"]


def _pii_exit_is_sound(text: str) -> None:
    if pii._nothing_short(text):
        assert PII.scan_view(TextView(text), anchored=False) == [], text
    assert PII.scan_view(TextView(text)) == PII.scan_view(TextView(text), anchored=False), text


def _adv_exit_is_sound(text: str) -> None:
    if adversarial._no_window(text):
        assert list(adversarial.windows(text, prefilter=False)) == [], text
    assert ADV.scan_view(TextView(text)) == ADV.scan_view(TextView(text), anchored=False), text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PII_PIECES), max_size=10), st.sampled_from([" ", "", "-", ".", ":", "\n"]))
def test_pii_short_exit_on_soups(parts: list[str], sep: str) -> None:
    _pii_exit_is_sound(sep.join(parts)[:_SHORT])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ADV_PIECES), max_size=30), st.sampled_from([" ", "", "\n", "  "]))
def test_adversarial_short_exit_on_soups(parts: list[str], sep: str) -> None:
    _adv_exit_is_sound(sep.join(parts)[:_SHORT])


def test_pii_and_adversarial_short_exits_on_public_rows() -> None:
    texts = _short_rows()
    for t in texts:
        _pii_exit_is_sound(t)
        _adv_exit_is_sound(t)
    if texts:
        for exits in ([pii._nothing_short(t) for t in texts], [adversarial._no_window(t) for t in texts]):
            assert any(exits) and not all(exits)


def test_pii_short_exit_cases() -> None:
    assert pii._nothing_short("Tell me something about topic number 123 please")
    assert pii._nothing_short("Tell me something about topic number 1234 please")  # 4-5 digits, one capital, no dots
    for text in ("mail a@b.io", "fe80::1", "1 2 3 4 5 6", "١٢٣٤", "GB 1234", "number 1.2.3.4", "call 123456"):
        assert not pii._nothing_short(text), text
    # The cases the 4-5 digit rule lets through, each found by the full scan.
    for text, kind in (("ip 10.0.0.1 here", "IP_ADDRESS"), ("acct GB95WEST12ABCDEFGH ok", "IBAN")):
        assert not pii._nothing_short(text)
        assert [f.type for f in PII.scan_view(TextView(text), anchored=False)] == [kind], text


def test_linear_exit_below_the_first_knot_is_what_calibrate_says() -> None:
    models = linear.load()
    if not models:
        return
    for m in models.values():
        if m.scores[0] < linear.REPORT_AT:
            for k in range(200):
                margin = m.knots[0] - k * 0.05
                assert m.calibrate(margin) < linear.REPORT_AT
        # Texts just under and over the first knot: score() agrees with calibrate().
        for words in (frozenset(), frozenset(sorted(m.weights, key=m.weights.__getitem__)[-12:])):
            hit = m.score(TextView(" ".join(sorted(words))))
            s = m.calibrate(m.margin(TextView(" ".join(sorted(words))).words))
            assert (hit is None) == (s < linear.REPORT_AT)


def test_adversarial_short_exit_at_its_bounds() -> None:
    # Exactly PROSE + 3 tokens, the last three all marks: a window (so the exit must not hold).
    edge = "please write a short story about cats and ]]{{ \\\\++ ==**"
    assert len(edge.split()) == adversarial.PROSE + 3 and list(adversarial.windows(edge, prefilter=False))
    assert not adversarial._no_window(edge) and ADV.scan_view(TextView(edge)) == ADV.scan_view(TextView(edge), anchored=False)
    assert adversarial._no_window(edge.rsplit(" ", 1)[0])  # one token fewer
    assert adversarial._no_window("please write a short story about cats and dogs for me now, ok?")  # 2 marks
