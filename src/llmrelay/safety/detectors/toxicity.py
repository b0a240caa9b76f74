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

from ..findings import Category, Finding
from ._lexicon import Lexicon, combine

_GROUPS = (
    r"(?:blacks?|whites?|jews?|jewish\s+people|muslims?|arabs?|mexicans?|immigrants?|asians?|chinese|latinos?|latinas?|hispanics?|"
    r"gays?|lesbians?|trans(?:gender)?\s*(?:people|women|men)?|women|girls|females|men|indians?|natives?|native\s+americans?|"
    r"africans?|refugees?|foreigners?|disabled\s+people|christians?|catholics?|feminists?|liberals?|democrats?|republicans?|"
    r"(?:these|those|all|most)\s+people)"
)
_SIGNALS: list[tuple[float, str]] = [
    # Slurs (weight high: they are abusive in nearly every context this gateway sees).
    (0.9, r"\bn+[i1!]+gg+(?:[e3]+r+|a+|az|uh)s?\b|\bf+[a@4]+gg*(?:[o0]+t+|[e3]+t+)?s?\b|\bf+[a@]g+s?\b|\bk+[i1]+k+[e3]+s?\b|\bsp[i1]c+s?\b|\bch[i1]nks?\b|\bwetbacks?\b|\btr[a@]nn(?:y|ies)\b|\bd[y1]kes?\b|\br[e3]t[a@]rd(?:s|ed)?\b|\bcoons?\b|\bgooks?\b|\braghead\w*|\bbeaners?\b|\bsand\s*n\w+|\bpakis?\b"),
    (0.8, r"\bc+u+n+t+s?\b|\bwh[o0]re+s?\b|\bsl+u+t+s?\b|\bh[o0]e+s?\b|\bb+[i1!*]+t+c+h+(?:e?s|y|ez)?\b|\bpuss(?:y|ies)\b|\btw[a@]ts?\b|\bmotherf\w*|\bm[o0]f[o0]|\bcock\s*suck\w*"),
    # Insults aimed at someone.
    (0.75, r"\b(?:you(?:'re|\s+are|r)?|u\s+r|ur|he'?s|she'?s|they'?re|what\s+an?)\s+(?:\w+\s+){0,2}(?:idiot|moron|stupid|dumb(?:ass)?|retard|loser|scum(?:bag)?|pathetic|worthless|trash|garbage|piece\s+of\s+(?:shit|crap|garbage)|ignorant|clown|imbecile|disgusting|pig|animal|filth|dick|asshole|jerk|bitch)\w*"),
    (0.7, r"\b(?:idiots?|morons?|imbeciles?|scumbags?|dumbass(?:es)?|assholes?|dickheads?|douche(?:bag)?s?|jackass(?:es)?|libtards?|shitheads?|dipshits?|numbnuts|cretins?|degenerates?|lowlifes?|sub-?humans?)\b"),
    (0.7, r"\b(?:shut\s+(?:the\s+f\w*\s+)?up|go\s+(?:to\s+hell|die|kill\s+yourself)|kys|f+u+c+k+\s+(?:you|off|u|them|him|her|this\s+guy)|stfu|gtfo|screw\s+you|eat\s+shit)\b"),
    # Threats and calls for violence.
    (0.9, r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+gonna)|we\s+(?:need|should|must)\s+to?|let'?s)\s+(?:\w+\s+){0,2}(?:kill|shoot|hang|lynch|rape|murder|beat|stab|exterminate|gas|deport|eradicate|wipe\s+out)\b"),
    (0.9, r"\b(?:kill|shoot|hang|lynch|exterminate|gas|eradicate|wipe\s+out|get\s+rid\s+of|deport)\s+(?:all\s+(?:the\s+)?|the\s+|every\s+)?" + _GROUPS),
    # Dehumanising generalisations about a group.
    (0.85, r"\b" + _GROUPS + r"\s+(?:are|is|r)\s+(?:all\s+|just\s+|nothing\s+but\s+|a\s+bunch\s+of\s+|so\s+)?(?:\w+\s+)?(?:animals|savages|vermin|rats|dogs|pigs|apes|monkeys|parasites|criminals|terrorists|rapists|thugs|inferior|subhuman|filthy|dirty|lazy|stupid|dumb|disgusting|evil|a\s+disease|a\s+plague|cancer|trash|garbage|worthless|useless|ugly|violent|dangerous|greedy|backwards?|primitive|illegal)\b"),
    (0.75, r"\b" + _GROUPS + r"\s+(?:should(?:n't|\s+not)?|need\s+to|must|can'?t|cannot|don'?t\s+deserve|do\s+not\s+deserve|have\s+no\s+place|do\s+not\s+belong|don'?t\s+belong)\s+(?:\w+\s+){0,3}(?:be\s+allowed|go\s+back|vote|work|deserve|rights|belong|in\s+(?:this|our)\s+country|be\s+trusted|marry|exist|be\s+(?:killed|removed|banned|deported|locked\s+up|sterili[sz]ed))"),
    (0.6, r"\b(?:go\s+back\s+to\s+(?:your|their)\s+(?:own\s+)?country|send\s+them\s+(?:all\s+)?back|(?:taking|take)\s+over\s+(?:our|the)\s+country|not\s+(?:real|true)\s+(?:americans|women|men)|(?:inferior|superior)\s+race|white\s+power|master\s+race)\b"),
    # Profanity: weak alone (casual swearing is not abuse), evidence when combined.
    (0.45, r"\bf+u+c+k+\w*|\bsh[i1!]+t+(?:ty|s|head)?\b|\bd[i1]+c+k+s?\b|\bass(?:es)?\b|\bcrap\b|\bdamn\b|\bbastards?\b|\bwtf\b|\bhell\b|\bpiss\w*"),
    (0.45, r"\b(?:stupid|dumb|ugly|disgusting|pathetic|worthless|hate|trash|garbage|loser|fat)\b"),
]

# Undo common obfuscation without changing string length, so offsets stay valid.
_LEET = str.maketrans({"@": "a", "4": "a", "3": "e", "1": "i", "!": "i", "0": "o", "$": "s", "5": "s", "*": "i", "7": "t"})


# Obfuscation only where it sits inside a word ("b*tch", "sh1t"), so "shit!" keeps its boundary.
_OBFUSCATED = re.compile(r"[a-z][@4310!$5*7]+(?=[a-z])|[@$](?=[a-z])")


_HAS_OBFUSCATION = re.compile(r"[@4310!$5*7]")


def normalise(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):
        return low
    if not _HAS_OBFUSCATION.search(low):
        return low
    return _OBFUSCATED.sub(lambda m: m.group().translate(_LEET), low)


class ToxicityDetector:
    name = "toxicity"
    category: Category = "toxicity"

    def __init__(self) -> None:
        self._raw = Lexicon(_SIGNALS)

    def scan(self, text: str) -> list[Finding]:
        # One pass over the de-obfuscated, lower-cased copy (same length, same offsets).
        hits = self._raw.hits(text, normalise(text))
        if not hits:
            return []
        # Each span keeps its own weight; the text's overall score combines distinct signals.
        by_signal: dict[int, float] = {}
        for h in hits:
            by_signal[h.signal] = max(by_signal.get(h.signal, 0.0), h.weight)
        overall = combine(list(by_signal.values()))
        return [Finding("toxicity", h.start, h.end, max(h.weight, overall), "TOXIC") for h in hits]
