"""TextView.starts_word (a word starts with a prefix of any length) answers from the normalised
text (short), the vocabulary string (long) or, on a patched view, its base and its changed words:
always what a loop over the view's own words says."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.toxicity import _full_clean_view, clean_view

WORDS = ["pathetic", "path", "paths", "p4thetic", "pa7hetic", "worthless", "worth", "w0rthless", "idiot", "idi0t", "loser",
         "l0ser", "animal", "animation", "x", "ab_cd", "naïve", "pathé"]
PREFIXES = ["pathetic", "pathe", "worthl", "worthless", "idiot", "loser", "animal", "anima", "ab", "cd", "naïv", "path",
            "thetic", "thless", "oser", "mation"]  # the last ones only inside words
PAD = " ".join(["lorem", "ipsum", "dolor", "sit", "amet"] * 12)


def _expected(view: TextView, prefix: str) -> bool:
    return any(w.startswith(prefix) for w in view.words)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=10), st.sampled_from([" ", ", ", "-", "  "]), st.booleans())
def test_starts_word_equals_a_loop_over_the_words(parts: list[str], sep: str, long: bool) -> None:
    text = sep.join(parts) + (" " + PAD if long else "")
    assert (len(text) > _SHORT) == long or not long
    plain = TextView(text.lower())
    patched = clean_view(TextView(text.lower()))
    rebuilt = _full_clean_view(TextView(text.lower()))
    for p in PREFIXES:
        assert plain.starts_word(p) == _expected(plain, p), (text, p)
        assert patched.starts_word(p) == _expected(rebuilt, p), (text, p)
        assert plain.has_prefix(p) == _expected(plain, p), (text, p)
