"""The secrets detector's gates: a context pattern runs only when its gate holds, a gate being a
substring of the lower-cased text or a whole word of it ("w:"). Each text below sits at a gate's
edge (the word next to punctuation, in upper case, glued to a control character): the gated scan
must find what the full scan finds, and find something."""

from __future__ import annotations

import pytest

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.secrets import SecretDetector, _Gates

DET = SecretDetector()

EDGES = [
    "CREATE USER app IDENTIFIED BY 'Xk9#mPq2vL';",
    "ALTER LOGIN sa WITH PASSWORD 'N0tS0Secret!';",
    "The password for user bob is 'pa55Word9'",
    "token=os.getenv('API_TOKEN', 'fallbackSecret99')",
    "secret = os.environ.get(\"X\") or 'hunter2hunter'",
    '{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"}',
    "$p = ConvertTo-SecureString 'P@ssw0rd123' -AsPlainText",
    "curl -u admin:s3cretPassw0rd https://example.com",
    "git clone --user admin:Sup3rS3cret https://example.com",
    "vault operator unseal AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/==",
    "CC_TEST_REPORTER_ID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "Server=db;Database=app;PWD=Zq8xLm2p;",
    "\x01password=Zq8xLm2p;",  # a control character the view keeps inside the word
]


@pytest.mark.parametrize("text", EDGES)
def test_gated_scan_equals_full_scan_at_the_gates(text: str) -> None:
    fast = DET.scan_view(TextView(text))
    assert fast == DET.scan_view(TextView(text), anchored=False)
    assert fast, "each edge text holds a secret"


def test_word_gates_are_whole_words_and_fall_back_on_control_characters() -> None:
    gate = _Gates(TextView("my_password: x, PWD= y"))
    assert gate("w:password") and gate("w:pwd") and not gate("w:pass")
    assert gate("pass")  # a substring gate
    assert _Gates(TextView("x\x02password=1"))("w:password")  # not a word there, but the substring is
    assert not _Gates(TextView("passwords only"))("w:password")
    assert _Gates(None)("w:anything")  # the reference scan runs every pattern
