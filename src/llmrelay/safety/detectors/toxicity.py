"""Toxic or abusive language: slurs, insults, profanity aimed at someone, threats, and hateful
generalisations about groups.

A lexicon with weights, matched on a normalised copy of the text (``b*tch``, ``b1tch`` and
``biiitch`` all read as ``bitch``; the normalisation keeps offsets). Casual profanity ("this shit
is hilarious") scores below the block threshold; slurs, directed insults, threats and "<group> are
<dehumanising word>" score above it. Each match is a finding with its own span.

    >>> ToxicityDetector().scan("you are a worthless idiot")[0].score >= 0.7
    True
"""

from __future__ import annotations

import re
import string
from typing import Literal

from ..findings import Category, Finding
from . import linear as linear_model
from ._lexicon import Lexicon, combine
from ._view import TextView
from .linear import LinearLexicon

_GROUPS = (
    r"(?:blacks?|whites?|jews?|jewish\s+people|muslims?|arabs?|mexicans?|immigrants?|asians?|chinese|latinos?|latinas?|hispanics?|"
    r"gays?|lesbians?|trans(?:gender)?\s*(?:people|women|men)?|women|girls|females|men|indians?|natives?|native\s+americans?|"
    r"africans?|refugees?|foreigners?|disabled\s+people|christians?|catholics?|feminists?|liberals?|democrats?|republicans?|"
    r"(?:these|those|all|most)\s+people)"
)
# Every word _GROUPS can start with (its anchors).
_GROUP_WORDS = (
    "black", "blacks", "white", "whites", "jew", "jews", "jewish", "muslim", "muslims", "arab", "arabs", "mexican", "mexicans", "immigrant",
    "immigrants", "asian", "asians", "chinese", "latino", "latinos", "latina", "latinas", "hispanic", "hispanics", "gay", "gays", "lesbian",
    "lesbians", "pre:tran", "women", "girls", "females", "men", "indian", "indians", "native", "natives", "african", "africans", "refugee",
    "refugees", "foreigner", "foreigners", "disabled", "christian", "christians", "catholic", "catholics", "feminist", "feminists", "liberal",
    "liberals", "democrat", "democrats", "republican", "republicans", "these", "those", "all", "most",
)
_GROUP_ANY = "|".join(_GROUP_WORDS)
# Where _GROUPS ends the pattern it may run on into a longer word ("whitey").
_GROUP_PREFIX = "|".join(sorted({w if w.startswith("pre:") or w in ("these", "those", "all", "most") else "pre:" + w[:4] for w in _GROUP_WORDS}))
_SIGNALS: list[tuple[float, str, tuple[str, ...]]] = [
    # Slurs (weight high: they are abusive in nearly every context this gateway sees).
    (0.9, r"\bn+[i1!]+gg+(?:[e3]+r+|a+|az|uh)s?\b|\bf+[a@4]+gg*(?:[o0]+t+|[e3]+t+)?s?\b|\bf+[a@]g+s?\b|\bk+[i1]+k+[e3]+s?\b|\bsp[i1]c+s?\b|\bch[i1]nks?\b|\bwetbacks?\b|\btr[a@]nn(?:y|ies)\b|\bd[y1]kes?\b|\br[e3]t[a@]rd(?:s|ed)?\b|\bcoons?\b|\bgooks?\b|\braghead\w*|\bbeaners?\b|\bsand\s*n\w+|\bpakis?\b",
     ("pre:nig", "pre:nii", "pre:nni", "pre:nnn", "pre:fag", "pre:faa", "pre:ffa", "pre:fff", "pre:kik", "pre:kii", "pre:kki", "pre:kkk", "pre:spic", "chink", "chinks", "wetback", "wetbacks", "tranny", "trannies", "dyke", "dykes", "dike", "dikes", "retard", "retards", "retarded", "coon", "coons", "gook", "gooks", "sub:raghead", "beaner", "beaners", "sand", "sub:sandn", "paki", "pakis")),
    (0.8, r"\bc+u+n+t+s?\b|\bwh[o0]re+s?\b|\bsl+u+t+s?\b|\bh[o0]e+s?\b|\bb+[i1!*]+t+c+h+(?:e?s|y|ez)?\b|\bpuss(?:y|ies)\b|\btw[a@]ts?\b|\bmotherf\w*|\bm[o0]f[o0]|\bcock\s*suck\w*",
     ("pre:cunt", "pre:cunn", "pre:cuun", "pre:cuuu", "pre:ccun", "pre:ccuu", "pre:cccu", "pre:cccc", "pre:whor", "pre:slut", "pre:sluu", "pre:sllu", "pre:slll", "pre:hoe", "pre:bitc", "pre:bitt", "pre:biit", "pre:biii", "pre:bbit", "pre:bbii", "pre:bbbi", "pre:bbbb", "pre:puss", "twat", "twats", "sub:motherf", "pre:mofo", "pre:cock")),
    # Insults aimed at someone.
    (0.75, r"\b(?:you(?:'re|\s+are|r)?|u\s+r|ur|he'?s|she'?s|they'?re|what\s+an?)\s+(?:\w+\s+){0,2}(?:idiot|moron|stupid|dumb(?:ass)?|retard|loser|scum(?:bag)?|pathetic|worthless|trash|garbage|piece\s+of\s+(?:shit|crap|garbage)|ignorant|clown|imbecile|disgusting|pig|animal|filth|dick|asshole|jerk|bitch)\w*",
     ("pre:idio|pre:moro|pre:stup|pre:dumb|pre:reta|pre:lose|pre:scum|pre:path|pre:wort|pre:tras|pre:garb|piece|pre:igno|pre:clow|pre:imbe|pre:disg""|pre:pig|pre:anim|pre:filt|pre:dick|pre:assh|pre:jerk|pre:bitc&you|youre|your|u|ur|he|hes|she|shes|they|theyre|what",)),
    (0.7, r"\b(?:idiots?|morons?|imbeciles?|scumbags?|dumbass(?:es)?|assholes?|dickheads?|douche(?:bag)?s?|jackass(?:es)?|libtards?|shitheads?|dipshits?|numbnuts|cretins?|degenerates?|lowlifes?|sub-?humans?)\b",
     ("pre:idio", "pre:moro", "pre:imbe", "pre:scum", "pre:dumb", "pre:assh", "pre:dick", "pre:douc", "pre:jack", "pre:libt", "pre:shit", "pre:dips", "numbnuts", "pre:cret", "pre:dege", "pre:lowl", "sub&human|humans", "pre:subh")),
    (0.7, r"\b(?:shut\s+(?:the\s+f\w*\s+)?up|go\s+(?:to\s+hell|die|kill\s+yourself)|kys|f+u+c+k+\s+(?:you|off|u|them|him|her|this\s+guy)|stfu|gtfo|screw\s+you|eat\s+shit)\b",
     ("shut&up", "go&hell|die|yourself", "kys", "stfu", "gtfo", "pre:fuc|pre:fuu|pre:ffu|pre:fff&you|off|u|them|him|her|this", "screw&you", "eat&shit")),
    # Threats and calls for violence.
    (0.9, r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+gonna)|we\s+(?:need|should|must)\s+to?|let'?s)\s+(?:\w+\s+){0,2}(?:kill|shoot|hang|lynch|rape|murder|beat|stab|exterminate|gas|deport|eradicate|wipe\s+out)\b",
     ("kill|shoot|hang|lynch|rape|murder|beat|stab|exterminate|gas|deport|eradicate|wipe&i|we|let|lets",)),
    (0.9, r"\b(?:kill|shoot|hang|lynch|exterminate|gas|eradicate|wipe\s+out|get\s+rid\s+of|deport)\s+(?:all\s+(?:the\s+)?|the\s+|every\s+)?" + _GROUPS,
     ("kill|shoot|hang|lynch|exterminate|gas|eradicate|wipe|rid|deport&" + _GROUP_PREFIX,)),
    # Dehumanising generalisations about a group.
    (0.85, r"\b" + _GROUPS + r"\s+(?:are|is|r)\s+(?:all\s+|just\s+|nothing\s+but\s+|a\s+bunch\s+of\s+|so\s+)?(?:\w+\s+)?(?:animals|savages|vermin|rats|dogs|pigs|apes|monkeys|parasites|criminals|terrorists|rapists|thugs|inferior|subhuman|filthy|dirty|lazy|stupid|dumb|disgusting|evil|a\s+disease|a\s+plague|cancer|trash|garbage|worthless|useless|ugly|violent|dangerous|greedy|backwards?|primitive|illegal)\b",
     (_GROUP_ANY + "&animals|savages|vermin|rats|dogs|pigs|apes|monkeys|parasites|criminals|terrorists|rapists|thugs|inferior|subhuman|filthy|dirty|lazy|stupid|dumb|disgusting|evil|disease|plague|cancer|trash|garbage|worthless|useless|ugly|violent|dangerous|greedy|backward|backwards|primitive|illegal",)),
    (0.75, r"\b" + _GROUPS + r"\s+(?:should(?:n't|\s+not)?|need\s+to|must|can'?t|cannot|don'?t\s+deserve|do\s+not\s+deserve|have\s+no\s+place|do\s+not\s+belong|don'?t\s+belong)\s+(?:\w+\s+){0,3}(?:be\s+allowed|go\s+back|vote|work|deserve|rights|belong|in\s+(?:this|our)\s+country|be\s+trusted|marry|exist|be\s+(?:killed|removed|banned|deported|locked\s+up|sterili[sz]ed))",
     (_GROUP_ANY + "&should|shouldn|need|must|can|cant|cannot|don|dont|do|have&pre:allo|pre:back|pre:vote|pre:work|pre:dese|pre:righ"
      "|pre:belo|pre:coun|pre:trus|pre:marr|pre:exis|pre:kill|pre:remo|pre:bann|pre:depo|pre:lock|pre:ster",)),
    (0.6, r"\b(?:go\s+back\s+to\s+(?:your|their)\s+(?:own\s+)?country|send\s+them\s+(?:all\s+)?back|(?:taking|take)\s+over\s+(?:our|the)\s+country|not\s+(?:real|true)\s+(?:americans|women|men)|(?:inferior|superior)\s+race|white\s+power|master\s+race)\b",
     ("back&country", "send&back", "over&country", "real|true&americans|women|men", "race&inferior|superior|master", "white&power")),
    # Profanity: weak alone (casual swearing is not abuse), evidence when combined.
    (0.45, r"\bf+u+c+k+\w*|\bsh[i1!]+t+(?:ty|s|head)?\b|\bd[i1]+c+k+s?\b|\bass(?:es)?\b|\bcrap\b|\bdamn\b|\bbastards?\b|\bwtf\b|\bhell\b|\bpiss\w*",
     ("pre:fuc", "pre:fuu", "pre:ffu", "pre:fff", "pre:shit", "pre:shii", "pre:dick", "pre:dicc", "pre:diic", "pre:diii", "ass", "asses", "crap", "damn", "bastard", "bastards", "wtf", "hell", "pre:piss")),
    (0.45, r"\b(?:stupid|dumb|ugly|disgusting|pathetic|worthless|hate|trash|garbage|loser|fat)\b",
     ("stupid", "dumb", "ugly", "disgusting", "pathetic", "worthless", "hate", "trash", "garbage", "loser", "fat")),
]

# Undo common obfuscation without changing string length, so offsets stay valid.
_LEET = str.maketrans({"@": "a", "4": "a", "3": "e", "1": "i", "!": "i", "0": "o", "$": "s", "5": "s", "*": "i", "7": "t"})
_LEET_RUN = re.compile(r"[@4310!$5*7]+")


def _is_letter(c: str) -> bool:
    return "a" <= c <= "z"


# The text's shape, one character each: a letter is "a", a look-alike "1", any other ASCII " ".
_SHAPE = str.maketrans(
    {**{chr(c): " " for c in range(128)}, **{c: "a" for c in string.ascii_lowercase}, **{c: "1" for c in "@4310!$5*7"}}
)


def leet_spans(low: str) -> list[tuple[int, int]]:
    """Where obfuscation sits inside a word ("b*tch", "sh1t"), so "shit!" keeps its boundary: a
    run of look-alikes between two letters, or an ``@``/``$`` before a letter. Every such run ends
    right before a letter, so on ASCII text the walk visits only the places where the text's shape
    reads "1a" (one C-speed translate and substring search: a charset regex over 4 KB costs ~40 µs)."""
    if not low.isascii():
        return _leet_spans_slow(low)
    shape = low.translate(_SHAPE)
    spans: list[tuple[int, int]] = []
    last = shape.find("1a")
    while last != -1:
        e = last + 1
        s = last
        while s > 0 and shape[s - 1] == "1":  # back to the run's start
            s -= 1
        if s > 0 and shape[s - 1] == "a":
            spans.append((s, e))
        elif low[last] in "@$":
            spans.append((last, e))
        last = shape.find("1a", e)
    return spans


def _leet_spans_slow(low: str) -> list[tuple[int, int]]:
    """:func:`leet_spans` on any text (the reference, and the path for non-ASCII text)."""
    spans: list[tuple[int, int]] = []
    for m in _LEET_RUN.finditer(low):
        s, e = m.span()
        if e >= len(low) or not _is_letter(low[e]):
            continue
        if s > 0 and _is_letter(low[s - 1]):
            spans.append((s, e))
        elif low[e - 1] in "@$":
            spans.append((e - 1, e))
    return spans


def deobfuscate(low: str, spans: list[tuple[int, int]] | None = None) -> str:
    """``low`` with the look-alikes in ``spans`` (default: :func:`leet_spans`) read as letters."""
    spans = leet_spans(low) if spans is None else spans
    if not spans:
        return low
    parts: list[str] = []
    pos = 0
    for s, e in spans:
        parts += (low[pos:s], low[s:e].translate(_LEET))
        pos = e
    parts.append(low[pos:])
    return "".join(parts)


def normalise(text: str) -> str:
    """The lower-cased, de-obfuscated text (the lower-cased text when that changes its length)."""
    low = text.lower()
    return low if len(low) != len(text) else deobfuscate(low)


class ToxicityDetector:
    name = "toxicity"
    category: Category = "toxicity"

    def __init__(self, linear: LinearLexicon | Literal["shipped"] | None = "shipped") -> None:
        """``linear``: the learned lexicon (:mod:`.linear`) whose evidence joins the regexes';
        ``"shipped"`` loads the packaged one, None runs the regexes alone."""
        self._raw = Lexicon(_SIGNALS)
        self._linear = linear_model.load().get("toxicity") if linear == "shipped" else linear

    def scan(self, text: str) -> list[Finding]:
        return self.scan_view(TextView(text))

    def scan_view(self, view: TextView, *, anchored: bool = True) -> list[Finding]:
        # The reference scan (anchored=False) rebuilds the clean view from scratch, so the
        # equivalence tests also check the patched view's words against a full recount.
        view = clean_view(view) if anchored else _full_clean_view(view)
        hits = self._raw.hits(view, anchored=anchored)
        lin = self._linear.score(view) if self._linear is not None else None
        if not hits:
            if lin is None:
                return []
            start, end = linear_model.span_of(view, lin.word)
            return [Finding("toxicity", start, end, lin.score, "TOXIC", "lexicon")]
        # Each span keeps its own weight; the text's overall score combines distinct signals
        # (and the learned lexicon's evidence, which has no span of its own here).
        by_signal: dict[int, float] = {}
        for h in hits:
            by_signal[h.signal] = max(by_signal.get(h.signal, 0.0), h.weight)
        overall = combine([*by_signal.values(), *((lin.score,) if lin is not None else ())])
        return [Finding("toxicity", h.start, h.end, max(h.weight, overall), "TOXIC") for h in hits]


def clean_view(view: TextView) -> TextView:
    """The view both the lexicon and the learned lexicon read: lower-cased and de-obfuscated
    (same length, same offsets), so ``sh1t`` and ``shit`` are one word to both. Its words are
    the shared view's, re-read only around the de-obfuscated spans (:meth:`TextView.patched`)."""
    if view.lowered:
        spans = leet_spans(view.low)
        if spans:
            return view.patched(deobfuscate(view.low, spans), spans)
    return view


def _full_clean_view(view: TextView) -> TextView:
    """:func:`clean_view` computed from scratch (the reference the patched view must equal)."""
    if view.lowered:
        clean = deobfuscate(view.low, _leet_spans_slow(view.low))
        if clean is not view.low:
            return TextView(clean)
    return view
