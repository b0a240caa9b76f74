"""Secrets: provider and cloud API keys, tokens, private keys, JWTs, connection strings, password
hashes, and passwords or keys assigned in config files, code and command lines.

Three kinds of evidence, strongest first: a vendor's own token format (``ghp_``, ``AKIA``, ``sk-ant-``,
a PEM header); a credential-shaped URL or header (``scheme://user:pw@host``, ``Authorization:
Bearer``); and a secret-sounding name assigned a literal value (``password = "..."``). Values that
are references rather than secrets (``${{ secrets.X }}``, ``$PASSWORD``, ``%PASS%``,
``os.getenv(...)``, ``<your-key>``) are skipped: they are what CI configs are full of.

    >>> [f.type for f in SecretDetector().scan('export GH=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')]
    ['GITHUB_TOKEN']
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from re import _constants, _parser  # type: ignore[attr-defined]
from typing import Any

from ..findings import Category, Finding
from ._literals import GatedAlternation, RunWindows, required_literals, split_alternatives
from ._view import _SHORT, Joined, TextView

# (type, pattern): the value is the whole match, or group "v" when the pattern has one.
_VENDOR: tuple[tuple[str, str], ...] = (
    ("PRIVATE_KEY", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,8000}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"),
    ("PRIVATE_KEY", r"\bLS0tLS1CRUdJTi[A-Za-z0-9+/=]{20,}|\bPuTTY-User-Key-File-\d|\bAGE-SECRET-KEY-1[0-9A-Z]{50,}"),
    ("AWS_ACCESS_KEY", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
    ("GITHUB_TOKEN", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{50,})"),
    ("GITLAB_TOKEN", r"\bgl(?:pat|ptt|dt|rt|wt|soat|ft|imt|agent|oas|cbt|[a-z]{2,6})-[A-Za-z0-9_\-]{20,}"),
    ("SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-\d-?[A-Za-z0-9/\-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_]+"),
    ("ANTHROPIC_API_KEY", r"\bsk-ant-[a-z]{3,8}\d{0,3}-[A-Za-z0-9_\-]{40,}"),
    ("OPENAI_API_KEY", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|\bsk-[A-Za-z0-9]{48}\b"),
    ("STRIPE_KEY", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("GOOGLE_API_KEY", r"\bAIza[0-9A-Za-z_\-]{30,}|\bya29\.[0-9A-Za-z_\-]{20,}|\bGOCSPX-[A-Za-z0-9_\-]{20,}|\b1//0[A-Za-z0-9_\-]{30,}"),
    ("JWT", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("SENDGRID_API_KEY", r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("TWILIO_KEY", r"\b(?:SK|AC)[0-9a-fA-F]{32}\b"),
    ("TELEGRAM_BOT_TOKEN", r"\b\d{8,10}:AA[A-Za-z0-9_\-]{32,}"),
    ("DISCORD_BOT_TOKEN", r"\b[MNO][A-Za-z0-9]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,}"),
    ("AZURE_KEY", r"\bAccountKey=[A-Za-z0-9+/=]{20,}|\b[A-Za-z0-9]{3}8Q~[A-Za-z0-9_~.\-]{31,34}"),
    ("PASSWORD_HASH", r"\$(?:2[abxy]?|1|5|6|8|9|7|y|gy|krb5\w+)\$[A-Za-z0-9./$+=]{8,}"),
    ("PASSWORD_HASH", r"\*[0-9A-F]{40}\b"),
    # Prefixed vendor tokens: prefix_ / prefix- then a long random-looking tail.
    ("API_TOKEN", r"\b(?:hf|gsk|pplx|tvly|phx|phc|sgp|glsa|glc|cfut|sntry[us]|nfp|odt|tgp_v1|dop_v1|doo_v1|dckr_pat|pscale_(?:pw|tkn|oauth)"
                  r"|shp(?:at|ca|pa|ss)|squ|sqp|sqa|llx|aio|hawk|pypi|rubygems|jina|xkeysib|npm|ops|hvs|hvb|dapi|NRAK|NRBR|NRRA|NRII|HRKU|PMAK|ATATT|ATCTT|ATBB"
                  r"|sq0atp|sq0csp|sq0idp|CLOJARS|SWMTKN-1|ghr|bedrock-api-key|cfat|lin_api|key|rdme|shippo_live|pat|sk|dp\.pt|dp\.st|s|da2"
                  r")[_\-.][A-Za-z0-9_\-.]{15,}"),
    ("API_TOKEN", r"\bAKCp[A-Za-z0-9]{50,}|\bLTAI[A-Za-z0-9]{12,20}\b|\bsl\.[A-Za-z0-9_\-]{40,}|\b00D[A-Za-z0-9]{12}![A-Za-z0-9._]{20,}"),
    ("API_TOKEN", r"\beyJ[A-Za-z0-9+/]{30,}={0,2}"),
    ("AUTH_HEADER", r"(?i:authorization|x-[a-z-]*(?:token|key))[\"']?\s*[:=]\s*[\"']?(?:(?i:bearer|basic|token|ssws|ntlm|negotiate)\s+)?(?P<v>[A-Za-z0-9_\-.~+/=%]{8,})"),
    ("CONNECTION_STRING", r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/'\"]{1,64}:(?P<v>[^\s@/'\"]{3,128})@[^\s'\"]+"),
    ("CONNECTION_STRING", r"(?i:\b(?:password|pwd)\s*=\s*)(?P<v>[^;'\"\s<>]{3,64})(?=\s*(?:;|\"|'|$))"),
)

# More vendor formats; each lies inside one whitespace-free token, so only long tokens are searched.
_TOKEN_FORMATS: tuple[tuple[str, str], ...] = (
    ("API_TOKEN", r"\b(?:phs|whsec|cfk|dckr_oat|ciotgp)_?[A-Za-z0-9_\-]{24,}|\bPMAT-[A-Z0-9]{26}\b|\bNRJS-[a-f0-9]{19}\b|\b[a-z0-9]{36}NRAL\b"
                  r"|\blive_\d{6,}_[A-Za-z0-9]{24,}\b|\bGR1348941[A-Za-z0-9_\-]{20}\b|\bdapi[a-f0-9]{32}(?:-\d)?\b|\boy2[a-z0-9]{43}\b"
                  r"|\bcio[A-Za-z0-9]{32}\b|\bwx[a-f0-9]{16}\b|\b3MVG[A-Za-z0-9._]{40,}|\bSU[A-Z2-7]{56}\b|\bAAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,}"
                  r"|\b[A-Za-z0-9]{52,}AZDO[A-Za-z0-9]{4}\b|sq0(?:atp|csp|idp)-[A-Za-z0-9_\-]{22,}|\bxoxe-\d-[A-Za-z0-9]{40,}"),
    ("MAILGUN_API_KEY", r"\b[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}\b"),
    ("MAILCHIMP_API_KEY", r"\b[A-Za-z0-9]{32}-us\d{1,2}\b"),
    ("BRAINTREE_TOKEN", r"\baccess_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32}\b"),
    ("GOOGLE_CLIENT_ID", r"\b\d{12}-[a-z0-9]{32}\.apps\.googleusercontent\.com\b"),
    ("DJANGO_SECRET_KEY", r"\bdjango-insecure-[^\s'\"]{20,}"),
    ("WEBHOOK", r"https://(?:outlook\.office|[a-z0-9-]+\.webhook\.office)\.com/webhook(?:b2)?/[A-Za-z0-9@/\-]{40,}"),
    ("PRODUCT_KEY", r"\b[A-Z0-9]{5}(?:-[A-Z0-9]{5}){4}\b"),
    ("JENKINS_CRUMB", r"Jenkins-Crumb:(?P<v>[a-f0-9]{32,})"),
    ("THINGSBOARD_TOKEN", r"thingsboard\.cloud/api/v1/(?P<v>[a-z0-9]{20})\b"),
)
_QV = r"""(?P<v>'[^'\s]{3,64}'|"[^"\s]{3,64}"|[^\s;'"]{3,64})"""
# Credentials that only their context shows: (type, gates, pattern with group "v"). A gate is a
# substring of the lower-cased text, or "w:" + a word every match has whole (a set look-up, where
# a substring costs a scan); the pattern runs only when one of its gates is there.
_CONTEXT: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("SQL_PASSWORD", ("w:identified",), r"(?i:\bidentified\s+(?:with\s+\w+\s+)?by\s+)" + _QV),
    ("SQL_PASSWORD", ("w:password",), r"(?i:\b(?:with|login)\s+(?:login\s+)?(?:encrypted\s+)?password\s+)" + _QV),
    ("PASSWORD", ("w:password",), r"(?i:\bpassword\s+for\s+(?:the\s+)?user\s+\S+\s+is\s+)(?P<v>'[^'\s]{3,64}'|\"[^\"\s]{3,64}\")"),
    ("PASSWORD", ("w:password",), r"(?i:\bpassword\s+to\s+proceed\s+to\s+installation:?\s+)(?P<v>[a-f0-9]{32})\b"),
    ("PASSWORD", ("w:getenv", "w:environ"),
     r"(?i:(?:pass|pwd|secret|token|key)\w*\s*:?=\s*(?:os\.)?(?:getenv|environ\.get)\()(?:[^,)]*,\s*|[^)]*\)\s+or\s+)(?P<v>\"[^\"\s]{4,64}\"|'[^'\s]{4,64}')"),
    ("SECRET", ("[]byte{", "{0x", "{ 0x"),
     r"(?i:(?:secret|key)\w*[\"']?\s*[:=]?\s*(?:\[\]byte)?\s*\{)(?P<v>\s*(?:0x[0-9a-f]{1,2}|\d{1,3})(?:\s*,\s*(?:0x[0-9a-f]{1,2}|\d{1,3})){7,})"),
    ("JWK", ("w:kty",), r"\"kty\"\s*:\s*\"\[?(?:oct|EC|RSA|OKP)\]?\"[\s\S]{0,200}?\"(?:k|d|p|q|dp|dq|qi)\"\s*:\s*\"(?P<v>[A-Za-z0-9_\-]{16,})\""),
    ("PASSWORD", ("w:securestring",), r"ConvertTo-SecureString\s+(?:-String\s+)?\\?[\"'](?P<v>[^\"'\\\s]{4,64})"),
    ("PASSWORD", ("w:u", "w:user"), r"(?:^|\s)(?:-u|--user)\s+[\"']?[^\s:\"'$%]+:(?P<v>[^\s\"'$%]{6,128})"),
    ("API_TOKEN", ("curlopt",), r"CURLOPT_(?:XOAUTH2_BEARER|PASSWORD|KEYPASSWD|USERPWD|PROXYPASSWORD)\s*,\s*\"(?P<v>[^\"]{4,200})\""),
    ("VAULT_UNSEAL_KEY", ("w:unseal",), r"\bvault\s+operator\s+unseal\s+(?P<v>[A-Za-z0-9+/=]{40,})"),
    ("API_TOKEN", ("w:reporter",), r"\bCC_TEST_REPORTER_ID\s*[:=]\s*[\"']?(?P<v>[a-f0-9]{64})\b"),
)

# A secret-sounding name assigned a literal: password = "x", "apiKey": "x", API_TOKEN=x, -p x.
# A secret-sounding name assigned a literal: password = "x", "apiKey": "x", API_TOKEN=x, PASSWD, "x".
# Found in two steps (keyword, then name and value around it) because a pattern that starts with
# a variable-length name is tried at every position of the text and costs ~15x more.
_KEYWORD = re.compile(r"pass|pa?sw|pwd|secret|token|key|credential|pw|srt")
_NAME_TAIL = re.compile(r"[A-Za-z0-9_.\-]*")
# The value may be typed (``password: String = "x"``), quoted with escaped quotes (``\"x\"``) or
# triple quotes, or run to the end of its line when its string continues there (``'abc\``).
_VALUE = re.compile(
    r"[\"']?\s*(?::\s*[A-Za-z_][\w.]*\??\s*=|=|:=|=>|:|\+=|\"?\s*,)\s*[@(]?\s*(?:new\s+\w+\()?\s*"
    r"(?P<q>'''|\"\"\"|\\?[\"'`]|)(?P<v>[^\s\"'`,;)}\]<>\\]{4,200}?)(?:(?P=q)|(?<=[^\s\"'`])(?=\\?\n|\\?$))(?=[\s\"'`,;)}\]<>\\]|$)"
)
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


# _KEYWORD's alternatives as plain strings, in its order (``pa?sw`` is two): what a text's
# vocabulary is checked for before any of them is looked for in the text.
_KEYWORDS = ("pass", "pasw", "psw", "pwd", "secret", "token", "key", "credential", "pw", "srt")


class _KeywordFinder:
    """``_KEYWORD.search(low, pos)`` for the keywords a text holds (``present``, in
    :data:`_KEYWORDS` order): each is found with ``str.find``, and the leftmost wins, ties going
    to the first in order, as in the alternation. A regex over 4 KB whose alternatives start with
    common letters costs ~50 µs; a text's few keywords are found in a few µs."""

    __slots__ = ("_low", "_next", "_present")

    def __init__(self, low: str, present: tuple[str, ...]) -> None:
        self._low = low
        self._present = present
        self._next = [-2] * len(present)  # the next occurrence of each at or after the last pos

    def search(self, pos: int) -> tuple[int, int] | None:
        best = -1
        best_k = ""
        for i, k in enumerate(self._present):
            at = self._next[i]
            if at != -1 and at < pos:
                at = self._next[i] = self._low.find(k, pos)
            if at != -1 and (best == -1 or at < best):
                best, best_k = at, k
        return None if best == -1 else (best, best + len(best_k))


def _assignments(text: str, low: str | None = None, present: tuple[str, ...] | None = None) -> list[tuple[str, int, int, str]]:
    """(name, value start, value end, value) for each secret-named assignment. ``low`` is the
    lower-cased text (the text itself when lowering changes its length: offsets must match; such
    texts lose only upper-case keywords); ``present``, the keywords it holds (None: the regex)."""
    out: list[tuple[str, int, int, str]] = []
    pos = 0
    if low is None:
        low = text.lower()
        if len(low) != len(text):
            low = text
    finder = _KeywordFinder(low, present) if present is not None else None
    while True:
        if finder is not None:
            hit = finder.search(pos)
        else:
            m = _KEYWORD.search(low, pos)
            hit = None if m is None else m.span()
        if hit is None:
            return out
        kw_start, kw_end = hit
        start = kw_start
        while start > 0 and text[start - 1] in _NAME_CHARS:
            start -= 1
        tail = _NAME_TAIL.match(text, kw_end)
        name_end = tail.end() if tail else kw_end
        name = text[start:name_end]
        v = _VALUE.match(text, name_end)
        if v is not None and _keyword_ok(name):
            out.append((name, v.start("v"), v.end("v"), v.group("v")))
            pos = v.end()
        else:
            pos = name_end if name_end > kw_start else kw_start + 1


def _keyword_ok(name: str) -> bool:
    # "pw"/"key" only as a whole part of the name (db_pw, ANY_key), not inside "monkey" or "pwned".
    low = name.lower()
    parts = re.split(r"[_.\-]|(?<=[a-z])(?=[A-Z])", name)
    if any(k in low for k in ("pass", "pwd", "secret", "token", "apikey", "api_key", "api-key", "credential", "psw", "accesskey",
                              "access_key", "privatekey", "private_key", "authkey", "auth_key", "srt", "pasw")):
        return True
    return any(p.lower() in ("pw", "key", "paswd", "pswd") for p in parts)


# A flag after whitespace (or at the start): written to start with its literal "-" (then a look
# behind for the whitespace), which the regex engine finds by a fast scan instead of trying a
# group at every position (~10x).
_CLI_FLAG = re.compile(r"-(?<!\S-)(?:p|password|-password|-pass|-api-?key|-apikey|-token|u\s+\S+\s+-p|-?[\w-]*(?:secret|token|passw\w*|api-?key)[\w-]*)\s+[\"']?(?P<v>[^\s\"']{4,200})")
_NET_CREDENTIAL = re.compile(r"(?:NetworkCredential|DirectoryEntry|PasswordAuthentication|setPassword|ConvertTo-SecureString)\s*\((?P<v>[^)]{4,200})\)")
_PASSWORD_PHRASE = re.compile(
    r"(?i:\b(?:password|passwd)\s+(?:is\s+|was\s+)?)[\"'](?P<v>[^\"'\s]{4,64})[\"']"
    r"|(?i:\blogin\s+\S+\s+password\s+)(?P<n>[^\s\"']{4,64})"
    r"|(?i:passw\w*)[\"']?\s*,\s*[\"'](?P<c>[^\"']{4,64})[\"']"
)

_REFERENCE = re.compile(
    r"^(?:\$\{|\$\(|\$[A-Za-z_]|%[A-Za-z_]+%|<[^>]*>?$|\{\{|\[|os\.|process\.env|env\(|getenv|System\.getenv|ENV\[|secrets\.|vars\.|"
    r"null$|none$|nil$|true$|false$|undefined$|required$|optional$|string$|str$|bool$|int$|self\.|this\.|x{4,}|\*{4,}|\.\.\.|changeme$|example$|your)",
    re.IGNORECASE,
)
# Versions ("npm:8.6.0", "v1.2.3") and absolute paths are what config values often are.
_NOT_A_SECRET = re.compile(r"^(?:\w+:)?v?[\d.^~*-]+$|^/[A-Za-z/._-]+$")
_WORDISH = re.compile(r"^[a-z]+(?:[_\-.][a-z]+)*$")
_CALL = re.compile(r"^[A-Za-z_][\w.]*\(")


def entropy(s: str) -> float:
    n = len(s)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _looks_secret(value: str, name: str) -> float:
    """How likely a literal assigned to ``name`` is a real secret (0 = surely not)."""
    v = value.strip("\"'`")
    if len(v) < 4 or _REFERENCE.search(v) or v.endswith(":") or _NOT_A_SECRET.match(v):
        return 0.0
    lname = name.lower()
    is_password = any(w in lname for w in ("pass", "pwd", "secret", "credential"))
    if is_password:
        # Passwords may be words ("centipede"), but a lone identifier such as a function name is code.
        if _CALL.match(v):
            return 0.0
        return 0.9 if (entropy(v) > 2.5 or not _WORDISH.match(v)) else 0.6
    # Keys and tokens: long, and random-looking.
    if len(v) < 8 or _WORDISH.match(v) or v.isdigit():
        return 0.0
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)))
    if entropy(v) >= 3.0 and classes >= 2:
        return 0.85
    return 0.0


# Names whose presence (a substring of the lower-cased text) lets a secret-named assignment exist.
_ASSIGNMENT_GATES = ("pass", "psw", "pasw", "pw", "secret", "token", "key", "credential", "srt")
_NET_GATES = ("credential", "directoryentry", "passw", "securestring")
# An authorization header: the word, or an "X-" header named like a token or key.
_AUTH_GATES = ("authorization", "x-")


class _Gates:
    """Gate tests on a view: a substring of the lower-cased text (made at most once per view, see
    :meth:`TextView.contains`) or, as ``"w:" + word``, a word of it; ``_Gates(None)`` says yes to
    everything (the reference scan)."""

    __slots__ = ("_exact", "_view")

    def __init__(self, view: TextView | None) -> None:
        self._view = view
        self._exact: bool | None = None  # whether a word gate can be read off the word set

    def __call__(self, gate: str) -> bool:
        if self._view is None:
            return True
        if gate.startswith("w:"):
            # A word is a run of letters and digits, unless the text holds an ASCII control
            # character (which the view does not treat as a separator): then the substring test.
            view = self._view
            if gate[2:] in view.words:
                return True
            return not self._is_exact(view) and view.contains(gate[2:])
        return self._view.contains(gate)

    def any(self, gates: tuple[str, ...]) -> bool:
        return any(self(g) for g in gates)

    def none_of(self, words: frozenset[str], subs: tuple[str, ...]) -> bool:
        """No gate ``"w:" + w`` (``w`` in ``words``) nor substring of ``subs`` holds: one set test
        where each word gate costs a call (a short prompt pays ~0.5 µs a gate, on ~34 of them)."""
        view = self._view
        if view is None or not words.isdisjoint(view.words):
            return False
        # A short text is searched directly, as TextView.contains would, without its call per gate.
        low = view.low
        return self._is_exact(view) and not any(map(low.__contains__ if len(low) <= _SHORT else view.contains, subs))

    def none_in_short(self, words: frozenset[str], subs: re.Pattern[str]) -> bool:
        """:meth:`none_of` for a short text, its substrings as one literal alternation: one
        search of ~50 characters costs about half of a ``in`` test per substring."""
        view = self._view
        return (view is not None and words.isdisjoint(view.words) and self._is_exact(view)
                and subs.search(view.low) is None)

    def _is_exact(self, view: TextView) -> bool:
        """No word holds a control character. The words are pieces of ``low``: a short printable
        ``low`` (one line, most prompts) answers without joining the words into the vocabulary."""
        if self._exact is None:
            low = view.low
            self._exact = (len(low) <= _SHORT and low.isprintable()) or view.vocabulary.isprintable()
        return self._exact


def _matches_space(pattern: str) -> bool:
    """Whether some match of ``pattern`` (or a look-around in it) can contain a space: such a
    pattern cannot be run on tokens joined by spaces. Errs on yes for what it does not know."""
    return _space_in(_parser.parse(pattern))


def _space_in(items: Any) -> bool:
    c = _constants
    for op, arg in items:
        if op in (c.AT,):
            continue
        if op == c.LITERAL:
            hit = arg == 32
        elif op == c.NOT_LITERAL:
            hit = arg != 32
        elif op == c.IN:
            covered = any(_covers_space(o, a) for o, a in arg if o != c.NEGATE)
            hit = covered != any(o == c.NEGATE for o, _ in arg)
        elif op == c.SUBPATTERN:
            hit = _space_in(arg[-1])
        elif op == c.BRANCH:
            hit = any(_space_in(b) for b in arg[1])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            hit = _space_in(arg[2])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            hit = _space_in(arg[1])
        else:
            hit = True  # ANY, categories outside a set, back-references: assume the worst
        if hit:
            return True
    return False


def _covers_space(op: Any, arg: Any) -> bool:
    c = _constants
    if op == c.LITERAL:
        return bool(arg == 32)
    if op == c.RANGE:
        return bool(arg[0] <= 32 <= arg[1])
    if op == c.CATEGORY:
        return arg in (c.CATEGORY_SPACE, c.CATEGORY_NOT_WORD, c.CATEGORY_NOT_DIGIT)
    return True


class SecretDetector:
    """Vendor formats, credential URLs and headers, and secret-named assignments."""

    name = "secrets"
    category: Category = "secret"

    def __init__(self) -> None:
        # Word-anchored vendor formats share one pass; the rest (value groups, "-----BEGIN") run alone.
        joint = [(t, p) for t, p in _VENDOR if p.startswith(r"\b") and "(?P<v>" not in p and t != "API_TOKEN"]
        self._joint_types = tuple(t for t, _ in joint)
        # Each format runs only where the tokens hold its literal; the full alternations are the reference.
        self._joint = GatedAlternation([("t", p) for _, p in joint], prefix=r"\b")
        self._joint_all = re.compile(self._joint.pattern)
        self._vendor = tuple((t, re.compile(p)) for t, p in _VENDOR if (t, p) not in joint)
        # Which of the others can only match inside one long whitespace-free token, which need a
        # literal, and which a word (AUTH_HEADER, "password=" connection strings).
        self._in_tokens = tuple((t, rx) for t, rx in self._vendor if (t in ("API_TOKEN", "PRIVATE_KEY") and not rx.pattern.startswith("-----"))
                                or (t == "CONNECTION_STRING" and "://" in rx.pattern))
        self._literal = tuple((t, rx) for t, rx in self._vendor if rx.pattern.startswith(("-----", r"\$", r"\*")))
        self._worded = tuple((t, rx) for t, rx in self._vendor if (t, rx) not in self._in_tokens and (t, rx) not in self._literal)
        # The plain token formats share one pass per token; those with a value group run alone.
        plain = [(t, p) for t, p in _TOKEN_FORMATS if "(?P<v>" not in p]
        self._plain_types = tuple(t for t, _ in plain)
        self._plain = GatedAlternation([("k", p) for _, p in plain])
        self._plain_all = re.compile(self._plain.pattern)
        self._in_tokens += tuple((t, re.compile(p)) for t, p in _TOKEN_FORMATS if "(?P<v>" in p)
        self._context = tuple((t, gates, re.compile(p)) for t, gates, p in _CONTEXT)
        # Every context gate at once: most texts hold none of them (see _Gates.none_of).
        self._context_words = frozenset(g[2:] for _, gates, _ in _CONTEXT for g in gates if g.startswith("w:"))
        self._context_subs = tuple(dict.fromkeys(g for _, gates, _ in _CONTEXT for g in gates if not g.startswith("w:")))
        # Token formats that could match a space (none today) keep their own pass per token.
        self._per_token = tuple((t, rx) for t, rx in self._in_tokens if _matches_space(rx.pattern))
        self._in_tokens = tuple((t, rx) for t, rx in self._in_tokens if (t, rx) not in self._per_token)
        if _matches_space(self._joint.pattern) or _matches_space(self._plain.pattern):
            raise ValueError("a joint token format can match a space; give it its own entry")
        # The literals one of which every match of each other token format holds (None: no gate).
        self._token_gates = {rx.pattern: _literal_gate(rx.pattern) for _, rx in self._in_tokens}
        self._literal_gates = {rx.pattern: _literal_gate(rx.pattern) for _, rx in self._literal}
        self._literal_gated = tuple((t, rx, self._literal_gates[rx.pattern]) for t, rx in self._literal)
        # Every gate of the context, worded, assignment and password-phrase scans at once (see
        # _quiet_gates): their word gates, and their substrings less those holding a shorter one.
        words = self._context_words | {"password", "pwd"}
        subs = {*self._context_subs, *_ASSIGNMENT_GATES, *_NET_GATES, *_AUTH_GATES}
        self._all_words = frozenset(words)
        self._all_subs = tuple(sorted(s for s in subs if not any(t != s and t in s for t in subs)))
        self._all_subs_rx = re.compile("|".join(map(re.escape, self._all_subs)))
        # What a short text must hold for any scan but the token formats to run (see
        # _short_gates_shut): those substrings, the literal formats' literals (lower-cased: searched
        # in ``low``) and the CLI-flag scan's gate (a "-" after whitespace, or first: tested apart).
        # A literal format without literals runs on every text: then "" (found everywhere).
        lits = {lit.lower() for _, _, gate_lits in self._literal_gated for lit in gate_lits or ("",)}
        short = {" -", "\n-", "\t-", *self._all_subs, *lits}
        self._short_rx = re.compile("|".join(map(re.escape, sorted(s for s in short if not any(t != s and t in s for t in short)))))
        # Each token-format pattern's run windows (see RunWindows), by pattern: the gated
        # alternations make one pattern per combination of awake formats, so this is bounded too.
        self._runs: dict[str, RunWindows | None] = {}

    def scan(self, text: str) -> list[Finding]:
        return self.scan_view(TextView(text))

    def scan_view(self, view: TextView, *, anchored: bool = True) -> list[Finding]:
        """``anchored=False`` runs every pattern over the whole text (the reference)."""
        text = view.text
        if anchored and len(text) <= _SHORT and self._short_gates_shut(view):
            # Only the token formats can match (most short prompts have no long token either).
            spans = view.long_tokens()
            if not spans:
                return []
            found: list[Finding] = []
            self._token_hits(text, spans, found)
            return _merge(found)
        out: list[Finding] = []
        self._token_hits(text, view.long_tokens() if anchored else [(0, len(text))], out, gated=anchored)
        for typ, rx, lits in self._literal_gated:
            # Their literal first (C speed); the regex's own scan for it costs ~1 µs even on 200
            # characters (~4 µs on 4 KB), and most texts hold none of "-----", "$", "*".
            if not anchored or lits is None or any(map(text.__contains__, lits)):
                self._vendor_hits(typ, rx.finditer(text), out)
        # Gates are substring tests (~1-3 us each on 4 KB) or word look-ups, made only when needed.
        gate = _Gates(view) if anchored else _Gates(None)
        quiet = anchored and len(view.low) <= _SHORT and gate.none_in_short(self._all_words, self._all_subs_rx)
        if not quiet:
            self._gated_hits(text, view, gate, anchored, out)
        cli = not anchored or ("-" in text and (text.startswith("-") or " -" in text or "\n-" in text or "\t-" in text))
        if cli:
            self._phrase_hits(_CLI_FLAG, text, out)
        if not quiet:
            # Every alternative of these two holds "passw" (or a class name) in some case.
            if gate.any(_NET_GATES):
                self._phrase_hits(_NET_CREDENTIAL, text, out)
            if gate("passw"):
                self._phrase_hits(_PASSWORD_PHRASE, text, out)
        return _merge(out)

    def _short_gates_shut(self, view: TextView) -> bool:
        """In a short text (most prompts) no scan but the token formats' can run: none of the gate
        words, and one search finds none of the gate substrings, the literal formats' literals and
        the CLI-flag gate. Each of those scans runs only behind one of these, so skipping them is
        the same answer as running them, at one call instead of ~10 (gate objects, per-format
        literal tests, the CLI-flag test). Word gates are exact only when no word holds a control
        character (see :meth:`_Gates._is_exact`)."""
        low = view.low
        return (len(low) <= _SHORT and self._short_rx.search(low) is None and not low.startswith("-")
                and self._all_words.isdisjoint(view.words) and (low.isprintable() or view.vocabulary.isprintable()))

    def _nothing_short(self, view: TextView) -> bool:
        """No scan can find anything in a short text: its gates are shut and it has no long token
        (every token format lies in one)."""
        return self._short_gates_shut(view) and not view.long_tokens()

    def _gated_hits(self, text: str, view: TextView, gate: _Gates, anchored: bool, out: list[Finding]) -> None:
        """The context, worded and assignment scans, each behind its word or substring gates. A
        short text holding none of these nor the password phrases' (most prompts) skips them all
        after one combined test (:meth:`_Gates.none_of`): ~18 gate calls cost ~8 µs."""
        for typ, gates, rx in () if gate.none_of(self._context_words, self._context_subs) else self._context:
            if gate.any(gates):
                self._vendor_hits(typ, rx.finditer(text), out)
        for typ, rx in self._worded:
            auth = typ == "AUTH_HEADER"
            # (?i:\b(?:password|pwd)\s*=): whole words.
            if (gate(_AUTH_GATES[0]) or (gate(_AUTH_GATES[1]) and gate.any(("token", "key")))) if auth else gate.any(("w:password", "w:pwd")):
                self._vendor_hits(typ, rx.finditer(text), out)
        if gate.any(_ASSIGNMENT_GATES):
            present = tuple(k for k in _KEYWORDS if gate(k)) if anchored else None
            for name, start, end, value in _assignments(text, view.low, present):
                score = _looks_secret(value, name)
                if score:
                    ptype = "PASSWORD" if re.search(r"(?i)pass|pwd|psw", name) else "SECRET"
                    out.append(Finding("secret", start, end, score, ptype))

    @staticmethod
    def _phrase_hits(rx: re.Pattern[str], text: str, out: list[Finding]) -> None:
        for m in rx.finditer(text):
            g = next(k for k, v in m.groupdict().items() if v is not None)
            if not _REFERENCE.search(m.group(g).strip("\"' ")):
                out.append(Finding("secret", m.start(g), m.end(g), 0.8, "PASSWORD"))

    def _token_hits(self, text: str, spans: list[tuple[int, int]], out: list[Finding], *, gated: bool = True) -> None:
        """The formats that lie inside one whitespace-free token, on the long tokens joined by
        spaces: one pass per pattern instead of one per pattern and token (~15 tokens in 4 KB of
        prose). The patterns cannot match a space, so no match spans two tokens; the few that
        could (see :func:`_matches_space`) still run token by token."""
        if not spans:
            return
        joined = Joined(text, spans)
        found: list[Finding] = []
        joint = self._joint.regex_for(joined.text) if gated else self._joint_all
        for m in self._matches(joint, joined.text, gated) if joint is not None else ():
            typ = self._joint_types[int((m.lastgroup or "t0")[1:])]
            found.append(Finding("secret", m.start(), m.end(), 0.95, typ))
        for typ, rx in self._in_tokens:
            lits = self._token_gates[rx.pattern] if gated else None
            if lits is None or any(lit in joined.text for lit in lits):
                self._vendor_hits(typ, self._matches(rx, joined.text, gated), found)
        plain = self._plain.regex_for(joined.text) if gated else self._plain_all
        for m in self._matches(plain, joined.text, gated) if plain is not None else ():
            typ = self._plain_types[int((m.lastgroup or "k0")[1:])]
            if typ != "API_TOKEN" or _random_enough(m.group()):
                found.append(Finding("secret", m.start(), m.end(), 0.95, typ))
        out.extend(joined.back(f) for f in found)
        for typ, rx in self._per_token:
            for s, e in spans:
                self._vendor_hits(typ, rx.finditer(text, s, e), out)

    def _matches(self, rx: re.Pattern[str], text: str, windowed: bool = True) -> Iterator[re.Match[str]]:
        """``rx.finditer(text)``, reading only the runs of characters a match can be made of
        (:class:`RunWindows`): the same matches, for a few short runs instead of the whole text."""
        runs = self._runs.get(rx.pattern, False) if windowed else None
        if runs is False:
            if len(self._runs) >= 512:
                self._runs.clear()
            runs = self._runs[rx.pattern] = RunWindows.of(rx.pattern)
        if runs is None:
            yield from rx.finditer(text)
            return
        for s, e in runs.spans(text, self._token_gates.get(rx.pattern)):  # type: ignore[union-attr]
            yield from rx.finditer(text, s, e)

    @staticmethod
    def _vendor_hits(typ: str, matches: Iterator[re.Match[str]], out: list[Finding]) -> None:
        for m in matches:
            has_v = "v" in m.re.groupindex and m.group("v") is not None
            if has_v and _REFERENCE.search(m.group("v")):
                continue
            if typ in ("API_TOKEN", "AUTH_HEADER") and not _random_enough(m.group("v") if has_v else m.group()):
                continue
            s, e = m.span("v") if has_v else m.span()
            if has_v and m.string[s] in "'\"" and e - s > 2:
                s, e = s + 1, e - 1  # a quoted value: the quotes are not the secret
            out.append(Finding("secret", s, e, 0.95, typ))


def _literal_gate(pattern: str) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` holds: each top-level alternative's
    required literals (None when one alternative has none)."""
    lits: list[str] = []
    for alt in split_alternatives(pattern):
        req = required_literals(alt)
        if req is None:
            return None
        lits += req
    return tuple(dict.fromkeys(lits))


def _random_enough(v: str) -> bool:
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)))
    return classes >= 2 and entropy(v) >= 3.0 and not _WORDISH.match(v)


def _merge(found: list[Finding]) -> list[Finding]:
    """Overlapping findings become one span (the strongest type), so redaction is clean."""
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -f.end))
    merged: list[Finding] = [found[0]]
    for f in found[1:]:
        last = merged[-1]
        if f.start < last.end:
            best = last if last.score >= f.score else f
            merged[-1] = Finding("secret", last.start, max(last.end, f.end), max(last.score, f.score), best.type)
        else:
            merged.append(f)
    return merged
