"""Incremental safety filtering of a streamed answer.

The filter holds back only a window's tail (``window`` characters) of the text seen so far: a
match that starts in one chunk and ends in the next is still whole when it is scanned, and the
user still gets the answer as it streams. Text before the window is scanned, redacted if needed,
and released; a block stops the stream.

    >>> f = StreamFilter(SafetyEngine(), policy_for_level("moderate"), window=32)
    >>> out = f.feed("write to bob@exa") + f.feed("mple.com today") + f.close()
    >>> out
    'write to [EMAIL_1] today'

A finding that straddles the release point moves the release point back to its start, so a value
is never released half-redacted. Placeholders restored from the prompt (``restore_redacted``) are
put back after scanning, so the user's own values are not redacted again.
"""

from __future__ import annotations

from .engine import Decision, Redactor, SafetyEngine, redact
from .findings import ACTION_RANK, Action, Finding
from .policy import Policy, policy_for_level

__all__ = ["StreamFilter", "policy_for_level"]


class StreamFilter:
    def __init__(
        self, engine: SafetyEngine, policy: Policy, *, redactor: Redactor | None = None, window: int = 256,
        context: int = 64,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.redactor = redactor if redactor is not None else Redactor()
        self.window = window
        # Already-released raw text kept for context (phone words before a number...); never re-released.
        self.context = context
        self._held = ""
        self._before = ""
        self.blocked = False
        self.action: Action = "allow"
        self.findings: list[Finding] = []

    def feed(self, text: str) -> str:
        """Add a piece of the answer; return what can be released now ("" when blocked)."""
        if self.blocked or not text:
            return ""
        self._held += text
        if len(self._held) <= self.window:
            return ""
        return self._release(len(self._held) - self.window)

    def close(self) -> str:
        """The end of the answer: release whatever is held."""
        if self.blocked or not self._held:
            return ""
        return self._release(len(self._held), final=True)

    @property
    def fresh(self) -> bool:
        """Nothing fed yet: the next text may be checked whole (:meth:`whole`)."""
        return not self._held and not self._before and not self.blocked

    def whole(self, text: str, findings: list[Finding] | None = None) -> str:
        """Check a complete answer part in one go (a non-streamed answer); the same findings,
        decision and released text as ``feed(text) + close()`` for a text up to ``window``, without
        releasing a long text in two scans (which also noted a finding in its tail twice).
        ``findings``: what a scan of ``text`` already found (the caller scanned it for a fast path)."""
        if not self.fresh:
            return self.feed(text) + self.close()  # a part already under way: the incremental path
        if not text:
            return ""
        self._held = text
        return self._release(len(text), final=True, found=findings)

    def _release(self, cut: int, final: bool = False, found: list[Finding] | None = None) -> str:
        base = len(self._before)
        scanned = self._before + self._held if base else self._held
        findings = found if found is not None else self.engine.scan(scanned, self.policy, "output")
        if base:
            findings = [f for f in findings if f.end > base]
        if not findings:
            # The common case: nothing found, so no decision, no redaction, no finding objects.
            return self._emit(cut, final)
        decision = self.engine.decide(scanned, findings, self.policy, Redactor())
        self._note(decision, base)
        if decision.action == "block":
            self.blocked = True
            self._held = ""
            return ""
        if not final:
            # Never cut through a finding, nor through a placeholder the model may be writing.
            for f in decision.findings:
                if f.start - base < cut < f.end - base:
                    cut = f.start - base
        redact_these = [
            Finding(f.category, f.start - base, f.end - base, f.score, f.type, f.rule)
            for f, a in zip(decision.findings, decision.actions, strict=True)
            if a == "redact" and f.start >= base and f.end - base <= cut
        ]
        return self._emit(cut, final, redact_these)

    def _emit(self, cut: int, final: bool, redact_these: list[Finding] | None = None) -> str:
        """Release the held text up to ``cut`` (moved back off a half-written placeholder unless
        ``final``), with ``redact_these`` (positions in the held text) replaced."""
        if not final:
            bracket = self._held.rfind("[", max(0, cut - 40), cut)
            if bracket != -1 and "]" not in self._held[bracket:cut]:
                cut = bracket
        if cut <= 0:
            return ""
        released_raw = self._held[:cut]
        out = redact(released_raw, redact_these, self.redactor) if redact_these else released_raw
        if self.context:
            self._before = (self._before + released_raw)[-self.context :] if self._before else released_raw[-self.context :]
        self._held = self._held[cut:]
        return self.redactor.restore(out) if self.policy.restore_redacted else out

    def _note(self, decision: Decision, base: int) -> None:
        for f, a in zip(decision.findings, decision.actions, strict=True):
            shifted = f.shifted(-base)
            if all((g.start, g.end, g.category) != (shifted.start, shifted.end, shifted.category) for g in self.findings[-16:]):
                self.findings.append(shifted)
            if ACTION_RANK[a] > ACTION_RANK[self.action]:
                self.action = a
