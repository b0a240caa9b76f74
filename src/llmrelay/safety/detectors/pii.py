"""Structured PII: email, phone numbers (international formats), payment cards (Luhn-checked),
IBAN (mod-97 checked), US SSN, IPv4 and IPv6 addresses.

Checksums turn "looks like a number" into "is a card / an IBAN", which is what keeps version
strings and order numbers out of the findings. Phone numbers have no checksum, so a loosely
formatted one ("33 93 31") only counts with a phone word nearby ("call", "tel", "mobile"...).

    >>> [f.type for f in PIIDetector().scan("mail bob@example.com, card 4111 1111 1111 1111")]
    ['EMAIL', 'CREDIT_CARD']
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from ..findings import Category, Finding
from ._view import TextView

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?![\w:])|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b")
# Unambiguous phone shapes: a +country prefix, a parenthesised area code, NANP, an extension.
_PHONE_STRONG = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,5}){1,4}"
    r"|(?:00|001-)\d{1,3}[ .-]\d{2,4}(?:[ .-]\d{2,5}){1,3}"
    r"|\(\d{2,5}\) ?\d{2,5}(?:[ .-]?\d{2,5}){0,2}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r")(?: ?(?:x|ext\.? ?)\d{1,6})?(?!\w|-\d)"
)
# Any run of 2-5 digit groups (7-13 digits): a phone only with a phone word in front of it.
_PHONE_LOOSE = re.compile(r"(?<![\w.:/-])(?:\d{2,5}(?:[ .-]\d{2,8}){1,4}|\d{7,11})(?:x\d{1,6})?(?![\w.:/]|-\d)")
_PHONE_WORDS = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|call|fax|number|contact|reach|text|whatsapp|sms|dial|ring|answering|office|home|work|no\.?|#)\b",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,2}:\d{2}")


# Byte -> the Luhn value of that digit doubled ("7" -> 14 - 9 = 5); only "0"-"9" are used.
_LUHN_DOUBLED = bytes((2 * (c - 48) - 9 if 2 * (c - 48) > 9 else 2 * (c - 48)) if 48 <= c <= 57 else 0 for c in range(256))
_NOT_DIGITS = bytes(c for c in range(128) if not 48 <= c <= 57)
_NOT_CAPITALS = bytes(c for c in range(128) if not 65 <= c <= 90)


def luhn_ok(digits: str) -> bool:
    if digits.isascii() and digits.isdigit():
        # Sums of bytes at C speed (a text of numbers has thousands of candidates): the digits
        # in even places from the right as they are, those in odd places doubled.
        back = digits.encode()[::-1]
        plain = back[::2]
        return (sum(plain) - 48 * len(plain) + sum(back[1::2].translate(_LUHN_DOUBLED))) % 10 == 0
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _digits(s: str) -> str:
    if s.isascii():
        return s.encode().translate(None, _NOT_DIGITS).decode()  # ASCII: isdigit is 0-9
    return "".join(c for c in s if c.isdigit())


# Numbers whose digits sit closer than this belong to one candidate ("+1 (415) 555-0100", an IBAN
# with its bank code); a window also reaches this far around them for prefixes and context.
_GAP = 8
_MARGIN = 24
# Clusters of digit runs at most _GAP apart. Written to start with a single digit (not ``\d+``) so
# the engine skips to the next digit by its fast first-character scan. Non-ASCII texts use
# _CLUSTER; on ASCII, _CLUSTER_ASCII is the definition the digit shape below must agree with.
_CLUSTER_ASCII = re.compile(rf"[0-9][0-9]*(?:[^0-9]{{1,{_GAP}}}[0-9]+)*")
_CLUSTER = re.compile(rf"\d\d*(?:\D{{1,{_GAP}}}\d+)*")
# An ASCII text's digits as "0", any other byte as " ", and the clusters on that shape: the same
# chains of runs, written to start with the literal "0", which the engine skips to at memchr speed.
_DIGIT_SHAPE = bytes(ord("0") if chr(c).isdigit() and c < 128 else ord(" ") for c in range(256))
_SHAPE_CLUSTER = re.compile(rb"00*(?: {1,%d}0+)*" % _GAP)
# An email holds one "@" with at most 64 characters before it and a run of domain characters after.
_DOMAIN_RUN = re.compile(r"[A-Za-z0-9.-]*")
_MAX_ATS = 32
# Two consecutive colons at most 5 apart. Written to start with its literal ":", which the regex
# engine finds by a fast scan (a str.find loop over a prompt's ~30 colons cost ~9 µs).
_CLOSE_COLONS = re.compile(r":[^:]{0,4}:")


def number_windows(text: str) -> list[tuple[int, int]]:
    """Where a phone, card, SSN, IBAN or IP address can be: clusters of at least 4 digits, widened.
    Most prose has a few numbers, so the number patterns then read a few short windows."""
    return [(s, e) for s, e, _ in counted_number_windows(text)]


def counted_number_windows(text: str) -> list[tuple[int, int, int]]:
    """:func:`number_windows` with, for each, the most digits one of its clusters holds: every
    match of a number pattern lies in one cluster (its digit runs are closer than ``_GAP``), so a
    pattern that needs more digits (an SSN 9, a card 12, a phone 6) need not read the window."""
    windows: list[tuple[int, int, int]] = []
    for start, end, digits in _clusters(text):
        if end - start >= 4 and digits >= 4:
            windows.append((max(0, start - _MARGIN), end + _MARGIN, digits))
    merged: list[tuple[int, int, int]] = []
    for s, e, d in windows:
        if merged and s <= merged[-1][1]:
            ms, me, md = merged[-1]
            merged[-1] = (ms, min(max(e, me), len(text)), max(d, md))
        else:
            merged.append((s, min(e, len(text)), d))
    return merged


def _clusters(text: str) -> list[tuple[int, int, int]]:
    """(start, end, digits) of each match of the cluster pattern. On ASCII text, read off its digit
    shape (one bytes translate, then the same pattern over "0" and " "): the pattern's own scan
    of the text for a first digit costs ~8 ns per character (~30 µs on 4 KB), a Python loop over
    the digit runs ~1 µs a run, the shape's scan for a literal "0" well under 1 ns a character.
    A cluster is a chain of digit runs whose gaps are 1 to ``_GAP`` characters."""
    if not text.isascii():
        # isdecimal is exactly what \d matches (Unicode category Nd).
        return [(m.start(), m.end(), sum(map(str.isdecimal, m.group()))) for m in _CLUSTER.finditer(text)]
    shape = text.encode("ascii").translate(_DIGIT_SHAPE)
    return [(m.start(), m.end(), m.group().count(b"0")) for m in _SHAPE_CLUSTER.finditer(shape)]


# Up to this many characters a text is first tested whole (see _nothing_short).
_SHORT_TEXT = 256


def _nothing_short(text: str) -> bool:
    """No PII pattern can match: no "@" (every email holds one), no two colons at most 5 apart (the
    IPv6 gate), and fewer than 4 digits in all (every number window needs a cluster of 4, see
    :func:`counted_number_windows`) or, on ASCII text, 4 or 5 (an SSN needs 9, a card 12, a phone
    6: only an IBAN or an IPv4 address could match) with fewer than two capitals (an IBAN starts
    with two) and fewer than three dots (an address holds three). A few byte counts where the
    windows cost a regex pass, lists and a merge loop: most short prompts hold a small number."""
    if "@" in text or _CLOSE_COLONS.search(text) is not None:
        return False
    if not text.isascii():
        return sum(map(str.isdecimal, text)) < 4
    raw = text.encode("ascii")
    digits = raw.translate(_DIGIT_SHAPE).count(b"0")
    if digits < 4:
        return True
    return digits < 6 and raw.count(b".") < 3 and len(raw.translate(None, _NOT_CAPITALS)) < 2


def email_windows(text: str) -> list[tuple[int, int]] | None:
    """Where an email can be: from 65 characters before each "@" to one past its run of domain
    characters (the look-behind reads before a window; the look-ahead needs the character after).
    None when there are so many "@" that one pass over the text is cheaper."""
    windows: list[tuple[int, int]] = []
    at = text.find("@")
    seen = 0
    while at != -1:
        seen += 1
        if seen > _MAX_ATS:
            return None
        end = min(len(text), _DOMAIN_RUN.match(text, at + 1).end() + 1)  # type: ignore[union-attr]  # * always matches
        start = max(0, at - 65)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
        at = text.find("@", at + 1)
    return windows


class PIIDetector:
    """Regex + checksum PII detector. ``types`` limits it to some of the types it knows."""

    name = "pii"
    category: Category = "pii"
    TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS")

    def __init__(self, types: tuple[str, ...] | None = None) -> None:
        wanted = set(types or self.TYPES)
        # (digits a match needs at least, scanner): an SSN has 9, a card 12, a phone 6 (the loose
        # shape's own minimum); an IBAN's digits may be as few as its check digits.
        scanners: list[tuple[int, Callable[[str, list[Finding], int, int], None]]] = []
        for t, need, fn in (
            ("SSN", 9, self._ssns), ("CREDIT_CARD", 12, self._cards), ("IBAN", 0, self._ibans), ("IP_ADDRESS", 4, self._ipv4s),
            ("PHONE", 6, self._phones),
        ):
            if t in wanted:
                scanners.append((need, fn))
        self._numbers = tuple(scanners)
        self._emails = "EMAIL" in wanted
        self._ipv6 = "IP_ADDRESS" in wanted

    def scan(self, text: str) -> list[Finding]:
        return self.scan_view(TextView(text))

    def scan_view(self, view: TextView, *, anchored: bool = True) -> list[Finding]:
        """``anchored=False`` runs every pattern over the whole text (the reference the windows
        must agree with)."""
        text = view.text
        if anchored and len(text) <= _SHORT_TEXT and _nothing_short(text):
            return []
        out: list[Finding] = []
        if self._emails and "@" in text:
            for s, e in (email_windows(text) if anchored else None) or [(0, len(text))]:
                out.extend(Finding("pii", m.start(), m.end(), 0.99, "EMAIL") for m in _EMAIL.finditer(text, s, e))
        if self._numbers:
            for s, e, digits in counted_number_windows(text) if anchored else [(0, len(text), len(text))]:
                for need, scanner in self._numbers:
                    if digits >= need:
                        scanner(text, out, s, e)
        if self._ipv6 and _CLOSE_COLONS.search(text) is not None:
            self._ipv6s(text, out)
        return _drop_overlaps(_unique(out) if anchored else out)

    @staticmethod
    def _ssns(text: str, out: list[Finding], pos: int, end: int) -> None:
        out.extend(Finding("pii", m.start(), m.end(), 0.9, "SSN") for m in _SSN.finditer(text, pos, end))

    @staticmethod
    def _cards(text: str, out: list[Finding], pos: int, end: int) -> None:
        for m in _CARD.finditer(text, pos, end):
            d = _digits(m.group())
            if 12 <= len(d) <= 19 and luhn_ok(d) and len(set(d)) > 1:
                out.append(Finding("pii", m.start(), m.end(), 0.95, "CREDIT_CARD"))

    @staticmethod
    def _ibans(text: str, out: list[Finding], pos: int, end: int) -> None:
        for m in _IBAN.finditer(text, pos, end):
            if iban_ok(m.group()):
                out.append(Finding("pii", m.start(), m.end(), 0.99, "IBAN"))

    @staticmethod
    def _ipv4s(text: str, out: list[Finding], pos: int, end: int) -> None:
        if text.count(".", pos, end) < 3:
            return  # every address holds three dots
        out.extend(Finding("pii", m.start(), m.end(), 0.8, "IP_ADDRESS") for m in _IPV4.finditer(text, pos, end))

    @staticmethod
    def _ipv6s(text: str, out: list[Finding]) -> None:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            out.append(Finding("pii", m.start(), m.end(), 0.8, "IP_ADDRESS"))

    @staticmethod
    def _phones(text: str, out: list[Finding], pos: int, end: int) -> None:
        for m in _PHONE_STRONG.finditer(text, pos, end):
            n = len(_digits(m.group()))
            if 7 <= n <= 15 and not _DATE.fullmatch(m.group()):
                out.append(Finding("pii", m.start(), m.end(), 0.85, "PHONE"))
        for m in _PHONE_LOOSE.finditer(text, pos, end):
            n = len(_digits(m.group()))
            if not 6 <= n <= 13 or _DATE.fullmatch(m.group()):
                continue
            context = text[max(0, m.start() - 48) : m.start()] + " " + text[m.end() : m.end() + 12]
            if _PHONE_WORDS.search(context):
                out.append(Finding("pii", m.start(), m.end(), 0.7, "PHONE"))


def _close_colons(text: str) -> bool:
    """Two colons at most 5 characters apart ("::" included): what every IPv6 address has."""
    return _CLOSE_COLONS.search(text) is not None


def _unique(found: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(found)) if len(found) > 1 else found


def _drop_overlaps(found: list[Finding]) -> list[Finding]:
    """Keep the best finding where several cover the same text (a card is not also a phone)."""
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -(f.end - f.start), -f.score))
    kept: list[Finding] = []
    for f in found:
        if kept and f.start < kept[-1].end:
            continue
        kept.append(f)
    return kept
