"""The first pass of extraction: sentences, code mentions with their modifiers and units,
and how two neighbouring codes are joined."""

from __future__ import annotations

from guardrails.claims.patterns import (
    _ABBREV,
    _ADD_BEFORE_RE,
    _ASCII_LOWER,
    _BEFORE_RE,
    _BUNDLED,
    _CODE_RE,
    _GAP_BUNDLED_RE,
    _GAP_FAST,
    _GAP_LIST_RE,
    _GAP_NEG_RE,
    _GAP_PLUS_RE,
    _GAP_TO_RE,
    _GAP_WITH_RE,
    _LABEL_RE,
    _LABEL_WORDS,
    _LIST,
    _MORE_MODS_RE,
    _NONE,
    _NOT_TAIL_START,
    _PLUS,
    _SENT_RE,
    _TAIL_RE,
    _TO,
    _WITH,
    _WITH_NEG,
)
from guardrails.claims.types import Polarity
from knowledge.codes import MODIFIERS, CodeKind


class _Raw:
    """A mention while it is being worked out (mutable; becomes a CodeMention)."""

    __slots__ = (
        "clause",
        "code",
        "end",
        "kind",
        "mods",
        "plus",
        "pol",
        "sent",
        "start",
        "tail_end",
        "units",
    )

    def __init__(self, code: str, kind: CodeKind, start: int, end: int, plus: bool) -> None:
        self.code = code
        self.kind = kind
        self.start = start
        self.end = end
        self.plus = plus
        self.mods: list[str] = []
        self.units: int | None = None
        self.tail_end = end
        self.sent = 0
        self.clause = 0
        self.pol = Polarity.RECOMMENDED


def lower_keep_offsets(text: str) -> str:
    """Lower-case without changing any offset (str.lower can lengthen some letters)."""
    if text.isascii():
        return text.lower()
    return text.translate(_ASCII_LOWER)


def _sentences(text: str, low: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    prev = 0
    n = len(text)
    for m in _SENT_RE.finditer(low):
        s = m.start()
        # "e.g." and friends end an abbreviation, not a sentence
        if low[s] == "." and m.end() - s == 1 and low[max(0, s - 6) : s].endswith(_ABBREV):
            continue
        _add_span(text, prev, m.end(), spans)
        prev = m.end()
    if prev < n:
        _add_span(text, prev, n, spans)
    return spans


def _add_span(text: str, s: int, e: int, spans: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s < e:
        spans.append((s, e))


def _digit_run_before(text: str, i: int) -> int:
    """Length of the run of digits ending just before index i."""
    j = i
    while j > 0 and text[j - 1].isdigit():
        j -= 1
    return i - j


def _digit_run_after(text: str, i: int) -> str:
    j = i
    n = len(text)
    while j < n and text[j].isdigit() and j - i < 7:
        j += 1
    return text[i:j]


def _find_codes(text: str, low: str) -> list[_Raw]:
    out: list[_Raw] = []
    n = len(text)
    for m in _CODE_RE.finditer(text):
        s, e = m.start(), m.end()
        if s:
            prev = text[s - 1]
            if prev.isalnum() or prev in "$#.":
                continue
            if (
                prev in "-–"
                and s >= 2
                and text[s - 2].isdigit()
                and _digit_run_before(text, s - 1) != 5
            ):
                continue  # phone numbers: 555-76942
            if prev in " \t" and s >= 2 and text[s - 2] == "$":
                continue
            # Cheap test first: only a number right after a label word can be an identifier.
            if (
                s >= 3
                and low[max(0, s - 24) : s].rstrip(" \t:#.").endswith(_LABEL_WORDS)
                and _LABEL_RE.search(low, max(0, s - 24), s)
            ):
                continue
        if e < n:
            nxt = text[e]
            if nxt == "." and e + 1 < n and text[e + 1].isdigit():
                continue  # 76942.5
            if nxt == "%" or (nxt == "," and e + 1 < n and len(_digit_run_after(text, e + 1)) == 3):
                continue  # 76942% or 76942,000
            if nxt in "-–" and e + 1 < n and text[e + 1].isdigit():
                run = _digit_run_after(text, e + 1)
                if len(run) != 5 and not (len(run) == 2 and run in MODIFIERS):
                    continue  # ZIP+4 and other hyphenated numbers
        raw = m.group()
        c0 = raw[0]
        if c0.isalpha():
            if raw[4] in "Tt":
                continue  # a letter, 3 digits and T is no code
            kind = CodeKind.HCPCS
        elif raw[4] in "Tt":
            kind = CodeKind.CATEGORY_III
            raw = raw[:4] + "T"
        else:
            kind = CodeKind.CPT
        plus = s > 0 and text[s - 1] == "+" and (s < 2 or not text[s - 2].isalnum())
        r = _Raw(raw, kind, s, e, plus)
        if e < n and text[e] not in _NOT_TAIL_START:
            _read_tail(text, r)
        pre_start = s - 1 if plus else s
        lo = max(0, pre_start - 40)
        if low.find("unit", lo, pre_start) >= 0 or low.find("mod", lo, pre_start) >= 0:
            b = _BEFORE_RE.search(low[lo:pre_start])
            if b is not None:
                if b.group(1):
                    _add_mod(r, b.group(1))
                elif r.units is None and b.group(2):
                    r.units = int(b.group(2))
        out.append(r)
    return out


def _add_mod(r: _Raw, mod: str) -> None:
    mod = mod.upper()
    if mod not in r.mods:
        r.mods.append(mod)


def _read_tail(text: str, r: _Raw) -> None:
    pos = r.end
    while True:
        t = _TAIL_RE.match(text, pos)
        if t is None:
            break
        g = t.lastindex or 0
        if g <= 3:
            _add_mod(r, t.group(g))
            pos = t.end()
            if g == 2:
                more = _MORE_MODS_RE.match(text, pos)
                while more is not None:
                    _add_mod(r, more.group(1))
                    pos = more.end()
                    more = _MORE_MODS_RE.match(text, pos)
            continue
        if r.units is not None:
            break
        r.units = int(t.group(g))
        pos = t.end()
    r.tail_end = pos


def _gap_kind(low: str, a: _Raw, b: _Raw) -> int:
    gap = low[a.tail_end : b.start - 1 if b.plus else b.start]
    kind = _GAP_FAST.get(gap)
    if kind is not None:
        if kind == _LIST and b.plus and (gap == " " or gap == ""):
            return _PLUS
        return kind
    if len(gap) > 80:
        return _NONE
    if _GAP_LIST_RE.fullmatch(gap):
        return _PLUS if b.plus and not gap.strip(" \t'\"’”*") else _LIST
    if _GAP_PLUS_RE.fullmatch(gap):
        return _PLUS
    if _GAP_TO_RE.fullmatch(gap):
        if _ADD_BEFORE_RE.search(low, max(0, a.start - 12), a.start - (1 if a.plus else 0)):
            return _TO
        return _LIST  # a range: "20600 to 20611"
    if _GAP_BUNDLED_RE.fullmatch(gap):
        return _BUNDLED
    w = _GAP_WITH_RE.fullmatch(gap)
    if w is not None:
        return _WITH_NEG if _GAP_NEG_RE.search(w.group(1)) else _WITH
    return _NONE


