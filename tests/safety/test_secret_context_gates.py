"""The secrets detector's all-at-once context gate (``_Gates.none_of``) says "none" exactly when
every per-pattern gate would say no, so skipping the context patterns then changes nothing."""

from __future__ import annotations

import pytest

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.secrets import _CONTEXT, SecretDetector, _Gates

_GATES = sorted({g for _, gates, _ in _CONTEXT for g in gates})
_TEXTS = [
    "What are the steps to using random text as filler content within your Word document?",
    "a line with a control char\x01 and the word Identified in it",
    *(f"some prose around {g[2:] if g.startswith('w:') else g} and more words" for g in _GATES),
    *(f"glued{g[2:] if g.startswith('w:') else g}glued" for g in _GATES),
    "mysql> CREATE USER 'a'@'%' IDENTIFIED BY 'S3cr3t!pw';",
    "x = os.getenv('X') or 'hunter22'  # PASSWORD_default := getenv('P') or 'abcd1234'",
]


@pytest.mark.parametrize("text", _TEXTS)
def test_none_of_is_no_single_gate(text: str) -> None:
    det = SecretDetector()
    gate = _Gates(TextView(text))
    single = any(gate(g) for g in _GATES)
    assert gate.none_of(det._context_words, det._context_subs) is (not single)


@pytest.mark.parametrize("text", _TEXTS)
def test_scan_equals_reference(text: str) -> None:
    det = SecretDetector()
    assert det.scan_view(TextView(text)) == det.scan_view(TextView(text), anchored=False)


def test_gate_set_covers_every_context_gate() -> None:
    det = SecretDetector()
    covered = {"w:" + w for w in det._context_words} | set(det._context_subs)
    assert covered == set(_GATES)
