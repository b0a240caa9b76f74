"""The safety engine: run the detectors on a text, apply a policy, redact.

Detectors are built once per engine (regexes compiled at construction) and shared by every
request; a policy's custom rules are compiled once per distinct rule set and cached on the engine.

    >>> engine = SafetyEngine()
    >>> d = engine.inspect("my card is 4111 1111 1111 1111", policy_for_level("moderate"))
    >>> d.action, d.text
    ('redact', 'my card is [CREDIT_CARD_1]')

A :class:`Redactor` carries placeholders across the messages of one request, so a value gets the
same placeholder everywhere, and can put the real values back into the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .detectors import default_detectors
from .detectors._view import TextView
from .detectors.custom import CustomDetector
from .findings import ACTION_RANK, Action, Detector, Direction, Finding
from .policy import Policy, policy_for_level

if TYPE_CHECKING:
    from .classifier import Classifier
    from .learned import LearnedScorer

_LEARNED_CATEGORIES = frozenset({"injection", "toxicity"})
_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*_\d+)\]")


class Redactor:
    """Typed placeholders ([EMAIL_1], [SECRET_2]...) for one request, reversible."""

    __slots__ = ("_by_placeholder", "_by_value", "_counts")

    def __init__(self) -> None:
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        # A plain dict, not a Counter: every request makes a Redactor and most never use it
        # (Counter() costs ~0.5 us more to make).
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        existing = self._by_value.get(value)
        if existing is not None:
            return existing
        n = self._counts[kind] = self._counts.get(kind, 0) + 1
        ph = f"[{kind}_{n}]"
        self._by_value[value] = ph
        self._by_placeholder[ph[1:-1]] = value
        return ph

    def __bool__(self) -> bool:
        return bool(self._by_value)

    def restore(self, text: str) -> str:
        if not self._by_placeholder or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    findings: tuple[Finding, ...] = ()
    # The action taken for each finding, in the same order.
    actions: tuple[Action, ...] = ()
    # The text as it should travel on (redacted when the action is "redact").
    text: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "findings": [f.to_dict() for f in self.findings], "text": self.text}


ALLOW = Decision("allow")


class SafetyEngine:
    """The detectors, plus the optional learned scorer (:mod:`.learned`) and configured classifiers
    (:mod:`.classifier`), which only ever read prompts: ``scan(..., "input")`` runs them unless
    ``learned=False`` (the safety layer runs them itself, off the event loop, through
    :meth:`learned_scan` and :meth:`classifier_scan`)."""

    def __init__(
        self, detectors: Sequence[Detector] | None = None, learned: LearnedScorer | None = None,
        classifiers: Sequence[Classifier] = (),
    ) -> None:
        self.detectors: tuple[Detector, ...] = tuple(detectors) if detectors is not None else default_detectors()
        self.learned = learned
        self.classifiers: tuple[Classifier, ...] = tuple(classifiers)
        self._custom: dict[tuple[str, str], CustomDetector] = {}
        # Detectors that can read a shared TextView (``scan_view``) get one; others get the text.
        self._scanners: tuple[tuple[Detector, Callable[[TextView], list[Finding]] | None], ...] = tuple(
            (d, getattr(d, "scan_view", None)) for d in self.detectors
        )

    def _custom_for(self, policy: Policy, direction: Direction) -> CustomDetector | None:
        if not policy.custom_rules:
            return None
        key = ("|".join(r.model_dump_json() for r in policy.custom_rules), direction)
        det = self._custom.get(key)
        if det is None:
            det = self._custom[key] = CustomDetector(policy.custom_rules, direction)
        return det or None

    def scan(self, text: str, policy: Policy, direction: Direction = "input", *, learned: bool = True) -> list[Finding]:
        if not policy.enabled or not text:
            return []
        found: list[Finding] = []
        # One view for all detectors: the lower-cased text and its words are computed once.
        view = TextView(text)
        if direction == "output":
            cats = policy.output_categories
            for det, scan_view in self._scanners:
                if det.category in cats:
                    found += scan_view(view) if scan_view is not None else det.scan(text)
        else:
            for det, scan_view in self._scanners:
                found += scan_view(view) if scan_view is not None else det.scan(text)
        if policy.custom_rules:
            custom = self._custom_for(policy, direction)
            if custom is not None:
                found.extend(custom.scan(text))
        if learned and direction == "input":
            if self.learned is not None and self.wants_learned(found, policy):
                found = merge_learned(found, self.learned_scan(text, policy), policy)
            if self.classifiers:
                found += self.classifier_scan(text, policy)
        return found

    def wants_learned(self, found: Sequence[Finding], policy: Policy) -> bool:
        """Whether the learned scorer could change anything: its findings count alone, or there is
        a detector finding for it to strengthen. Most prompts then cost no model run at all."""
        if self.learned is None or not policy.enabled:
            return False
        return policy.learned_alone or any(f.category in _LEARNED_CATEGORIES for f in found)

    def learned_scan(self, text: str, policy: Policy) -> list[Finding]:
        """The learned scorer's findings on a prompt ([] without a scorer or with the policy off)."""
        if self.learned is None or not policy.enabled or not text:
            return []
        return self.learned.scan(text)

    def classifier_scan(self, text: str, policy: Policy) -> list[Finding]:
        """The configured classifiers' findings on a prompt; each counts on its own."""
        if not self.classifiers or not policy.enabled or not text:
            return []
        found: list[Finding] = []
        for c in self.classifiers:
            found += c.scan(text)
        return found

    def decide(
        self, text: str, findings: Iterable[Finding], policy: Policy, redactor: Redactor | None = None,
        custom: CustomDetector | None = None,
    ) -> Decision:
        kept: list[Finding] = []
        acts: list[Action] = []
        for f in sorted(findings, key=lambda f: (f.start, f.end)):
            act = self._action(f, policy, custom)
            if act is not None:
                kept.append(f)
                acts.append(act)
        if not kept:
            return Decision("allow", text=text)
        action: Action = max(acts, key=ACTION_RANK.__getitem__)
        out = redact(text, [f for f, a in zip(kept, acts, strict=True) if a == "redact"], redactor if redactor is not None else Redactor())
        return Decision(action, tuple(kept), tuple(acts), out)

    def _action(self, f: Finding, policy: Policy, custom: CustomDetector | None) -> Action | None:
        rule = policy.rule(f.category)
        if f.category == "custom" and f.rule and custom is not None and policy.level != "off":
            act: Action = custom.action_of(f.rule)  # type: ignore[assignment]
            if policy.level == "low" and ACTION_RANK[act] > ACTION_RANK["flag"]:
                act = "flag"  # "low" never blocks or rewrites, whatever a rule says
            return None if act == "allow" else act
        act2 = rule.action_for(f.score)
        if act2 == "allow":
            return None
        if act2 == "redact" and f.end <= f.start:
            return "flag"  # nothing to cut out (a whole-text finding)
        return act2

    def inspect(
        self, text: str, policy: Policy, direction: Direction = "input", redactor: Redactor | None = None
    ) -> Decision:
        if not policy.enabled or not text:
            return Decision("allow", text=text)
        found = self.scan(text, policy, direction)
        if not found:
            return Decision("allow", text=text)  # what decide() makes of no findings, without its sorting
        return self.decide(text, found, policy, redactor, self._custom_for(policy, direction))


def merge_learned(found: list[Finding], learned: Sequence[Finding], policy: Policy) -> list[Finding]:
    """Add the learned scorer's evidence: a detector finding of the same category has its score
    combined with the learned one (``1 - (1-a)(1-b)``: two independent pieces of evidence); a learned
    finding with none to strengthen is kept only when ``policy.learned_alone``."""
    for lf in learned:
        same = [i for i, f in enumerate(found) if f.category == lf.category]
        for i in same:
            f = found[i]
            found[i] = Finding(f.category, f.start, f.end, 1 - (1 - f.score) * (1 - lf.score), f.type, f.rule)
        if not same and policy.learned_alone:
            found.append(lf)
    return found


def redact(text: str, findings: Sequence[Finding], redactor: Redactor) -> str:
    """Replace each finding's span with its placeholder; overlapping spans become one."""
    if not findings:
        return text
    spans: list[tuple[int, int, str]] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        kind = f.type or f.category.upper()
        if spans and f.start < spans[-1][1]:
            s, e, k = spans[-1]
            spans[-1] = (s, max(e, f.end), k)
        else:
            spans.append((f.start, f.end, kind))
    parts: list[str] = []
    pos = 0
    for s, e, kind in spans:
        parts.append(text[pos:s])
        parts.append(redactor.placeholder(kind, text[s:e]))
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def check_text(text: str, level: str = "moderate", engine: SafetyEngine | None = None) -> Decision:
    """One-off check (the CLI's ``safety test``)."""
    return (engine or SafetyEngine()).inspect(text, policy_for_level(level))
