"""Custom rules from the config: regexes, keyword lists (optionally fuzzy), topic allow/deny lists.

    >>> d = CustomDetector([SafetyRule(name="project", kind="keywords", keywords=["bluebird"], fuzzy=True)])
    >>> [f.rule for f in d.scan("is Blue-bird launching?")]
    ['project']

Fuzzy keyword matching tolerates one edit per five letters and ignores separators, so obfuscated
spellings ("blu3bird", "blue bird") still match. A ``topic_allow`` rule is the reverse: it reports
text that touches *none* of its keywords (a support bot that must stay on topic).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...config import SafetyRule
from ..findings import Category, Finding

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'_-]*")


def _edits_within(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of a and b is at most ``limit`` (banded, early exit)."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


class _Rule:
    def __init__(self, rule: SafetyRule) -> None:
        self.rule = rule
        self.regex: re.Pattern[str] | None = None
        words = [k.lower() for k in rule.keywords]
        if rule.kind == "regex" and rule.pattern:
            self.regex = re.compile(rule.pattern, re.IGNORECASE)
        elif words and not rule.fuzzy:
            self.regex = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b", re.IGNORECASE)
        self.fuzzy_words = tuple(re.sub(r"[\s_-]+", "", w) for w in words) if rule.fuzzy else ()

    def matches(self, text: str) -> list[tuple[int, int]]:
        if self.regex is not None:
            return [m.span() for m in self.regex.finditer(text)]
        spans: list[tuple[int, int]] = []
        tokens = [(m.start(), m.end(), re.sub(r"[_'-]+", "", m.group().lower())) for m in _WORD.finditer(text)]
        for i in range(len(tokens)):
            for n in (1, 2):  # a keyword may be split in two tokens ("blue bird")
                if i + n > len(tokens):
                    break
                s, e = tokens[i][0], tokens[i + n - 1][1]
                joined = "".join(t[2] for t in tokens[i : i + n])
                if any(_edits_within(joined, w, max(1, len(w) // 5)) for w in self.fuzzy_words if len(w) >= 4 or joined == w):
                    spans.append((s, e))
                    break
        return spans


class CustomDetector:
    name = "custom"
    category: Category = "custom"

    def __init__(self, rules: Sequence[SafetyRule], direction: str = "both") -> None:
        self._rules = tuple(_Rule(r) for r in rules if r.applies_to in ("both", direction) or direction == "both")

    def __bool__(self) -> bool:
        return bool(self._rules)

    def scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for r in self._rules:
            spans = r.matches(text)
            if r.rule.kind == "topic_allow":
                if not spans and text.strip():
                    out.append(Finding("custom", 0, 0, 1.0, "OFF_TOPIC", r.rule.name))
                continue
            out.extend(Finding("custom", s, e, 1.0, r.rule.name.upper(), r.rule.name) for s, e in spans)
        return out

    def action_of(self, rule_name: str) -> str:
        for r in self._rules:
            if r.rule.name == rule_name:
                return r.rule.action
        return "flag"
