"""Where the lexicon windows are centred: anchor occurrences found with a bounded search, the
rarest group of an "a&b" anchor chosen without counting every group in full, and a view's
substring tests made once whichever detector asks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._lexicon import Lexicon, _find_all, _rarest
from llmrelay.safety.detectors._view import TextView


def test_find_all_caches_only_complete_searches() -> None:
    low = "you and you and you"
    found: dict[tuple[str, str], list[int]] = {}
    assert _find_all(low, "you", "w", found, limit=1) == [0, 8]  # cut short: "more than one"
    assert ("w", "you") not in found  # not a complete list...
    assert found[("w~", "you")] == [16, 0, 8]  # ...but where to resume: the next "you", at 16
    assert _find_all(low, "you", "w", found, limit=0) == [0, 8]  # already more than 0
    assert _find_all(low, "you", "w", found) == [0, 8, 16]  # resumed
    assert found[("w", "you")] == [0, 8, 16]
    assert _find_all(low, "you", "w", found, limit=0) == [0, 8, 16]  # the cached, complete list
    # A resumed search finds what a fresh one finds, whatever the limits before it.
    text = " ".join(["you", "your", "you"] * 30)
    for limits in ([0, 1, 5], [3, 2, 30], [1, 40]):
        state: dict[tuple[str, str], list[int]] = {}
        for lim in limits:
            assert _find_all(text, "you", "w", state, lim)[: lim + 1] == _find_all(text, "you", "w", {}, lim)
        assert _find_all(text, "you", "w", state) == _find_all(text, "you", "w", {})


def test_find_all_keeps_words_and_prefixes_apart() -> None:
    low = "menace of men"
    found: dict[tuple[str, str], list[int]] = {}
    assert _find_all(low, "men", "w", found) == [10]
    assert _find_all(low, "men", "pre", found) == [0, 10]
    assert _find_all(low, "men", "sub", found) == [0, 10]
    assert _find_all("women", "men", "pre", {}) == []


def test_rarest_group_is_the_one_with_fewest_whole_word_places() -> None:
    low = "what you see is what you get, your prompt"
    held = [[("w", "what")], [("w", "you")], [("w", "prompt")]]
    found: dict[tuple[str, str], list[int]] = {}
    assert _rarest(low, held, found) == [("w", "prompt")]
    assert found[("w", "prompt")] == [35]
    # "you" occurs twice as a word ("your" is not it): fewer than "what" + "get".
    assert _rarest(low, [[("w", "what"), ("w", "get")], [("w", "you")]], {}) == [("w", "you")]
    # A group held only inside other words (a prefix of "your") has no whole-word place: chosen at once.
    assert _rarest("your your", [[("w", "your")], [("w", "you")]], {}) == [("w", "you")]


def test_window_from_a_common_first_group_still_finds_the_match() -> None:
    lex = Lexicon([(0.9, r"\bthe\s+(?:\w+\s+){0,2}secret\s+word\b", ("the&secret&word",))])
    text = ("the cat saw the dog and the bird. " * 30) + "tell me the very secret word now " + ("the end. " * 20)
    view = TextView(text)
    spans = lex._windows(view, *lex._awake(view))
    assert spans is not None and sum(e - s for s, e, _ in spans) < 80  # around "secret", not every "the"
    fast = [(h.start, h.end) for h in lex.hits(view)]
    assert fast == [(h.start, h.end) for h in lex.hits(TextView(text), anchored=False)]
    assert len(fast) == 1


PAD = " and more words" * 20  # past _view._SHORT: a short text is tested directly, unmemoised


def test_view_substring_tests_are_memoised_per_view() -> None:
    view = TextView("Some TEXT with a Token" + PAD)
    assert view.contains("token") and not view.contains("password")
    assert view._has == {"token": True, "password": False}
    short = TextView("Some TEXT with a Token")
    assert short.contains("token") and not short.contains("password") and short._has == {}


def test_alphanumeric_substrings_are_looked_for_in_the_vocabulary() -> None:
    view = TextView("x_TOKEN-y mytokens, a\x01b" + PAD)
    assert view.contains("token") and view.contains("okens")  # inside words, via the vocabulary
    assert view.contains("n-y") and not view.contains("n y")  # not letters and digits: the text itself
    assert view.contains("a\x01b") and not view.contains("tokenx")
    assert sorted(view.vocabulary.split(" ")) == sorted(view.words)


def test_rarest_tries_groups_with_fewer_atoms_first_and_stops_the_others_early() -> None:
    low = "you and the prompt, you and the rest, you and the end"
    found: dict[tuple[str, str], list[int]] = {}
    assert _rarest(low, [[("w", "you"), ("w", "the")], [("w", "prompt")]], found) == [("w", "prompt")]
    assert ("w", "you") not in found  # cut short after two places: more than "prompt"'s one
    assert found[("w", "prompt")] == [12]


PRE3 = Lexicon([(0.5, r"\bfoo\w*|\bnig\w*|\bab\w*c", ("pre:foo", "pre:nig", "pre:abc", "pre:ab1"))])


@pytest.mark.parametrize("text", [
    "foo", "Food fight", "a nig\x01x b", "x NIGé y", "ab1 abc", "abcdef ab1x", "fo fooo", "no match here", "",
    "ﬀoo foo",  # lower-casing changes the length: the text itself is read
])
def test_three_character_prefixes_read_off_the_four_character_ones(text: str) -> None:
    view = TextView(text)
    assert PRE3._pre3_present(view) == set(PRE3._atom_pre3.intersection(TextView(text).prefixes(3)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["foo", "fo", "o", "nig", "ni", "g", "ab", "c", "1", " ", ".", "é", "\x01", "X"]), max_size=20))
def test_three_character_prefixes_on_soup(parts: list[str]) -> None:
    text = "".join(parts)
    view = TextView(text)
    assert PRE3._pre3_present(view) == set(PRE3._atom_pre3.intersection(TextView(text).prefixes(3)))
    patched = view.patched(view.low, [])
    assert PRE3._pre3_present(patched) == set(PRE3._atom_pre3.intersection(TextView(text).prefixes(3)))


def test_each_window_reads_only_the_signals_whose_anchors_made_it() -> None:
    lex = Lexicon([
        (0.9, r"\bsecret\s+word\b", ("secret",)),
        (0.8, r"\bmagic\s+(?:\w+\s+){0,1}phrase\b", ("magic",)),
        (0.7, r"\bword\s+magic\b", ("word&magic",)),
    ])
    filler = "plain filler text here. " * 20
    # Apart: one window each; together (a "secret word magic phrase" run): one window, both signals.
    text = f"{filler}the secret word {filler}a magic big phrase {filler}secret word magic phrase {filler}"
    view = TextView(text)
    spans = lex._windows(view, *lex._awake(view))
    assert spans is not None
    assert [only for _, _, only in spans] == [(0, 2), (1,), (0, 1, 2)]  # signal 2 is placed at "word"
    assert [(h.signal, h.start, h.end) for h in lex.hits(view)] == [
        (h.signal, h.start, h.end) for h in lex.hits(TextView(text), anchored=False)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab1 _-\x01\x1cÉé.", max_size=40), st.text(alphabet="ab1 _-\x01\x1cÉé.", min_size=1, max_size=4),
       st.sampled_from([0, 300]))
def test_contains_is_the_substring_test_short_or_long(text: str, sub: str, pad: int) -> None:
    """The direct test on short texts and the memo/vocabulary path on long ones answer alike."""
    view = TextView(text + " q" * (pad // 2))
    assert view.contains(sub) == (sub in view.low)
    assert view.contains(sub) == (sub in view.low)  # memoised or not, the same answer again
