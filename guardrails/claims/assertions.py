"""What the text asserts about codes (complete or limited, add-on or not, guidance included,
bilateral) and the documentation statements it makes."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable

from guardrails.claims.patterns import (
    _ADDON_BACK_GAP_RE,
    _ADDON_FWD_GAP_RE,
    _ADDON_NEG_BEFORE_RE,
    _BILAT_NOT_RE,
    _D_IMAGE_AFTER_RE,
    _D_IMAGE_BEFORE_RE,
    _D_NECESSITY_RE,
    _D_NEEDLE_RE,
    _D_PATENCY_RE,
    _D_PERMANENT_RE,
    _D_REALTIME_RE,
    _D_REPORT_RE,
    _D_SITE_AFTER_RE,
    _D_SITE_BEFORE_RE,
    _DOC_LIST_GAP_RE,
    _DOC_NEG_AFTER_RE,
    _DOC_NEG_RE,
    _EXTENT_SKIP_RE,
    _G_ACTIVE_NEG_BEFORE_RE,
    _G_ACTIVE_RE,
    _G_OTHER_SUBJECT_RE,
    _G_PASSIVE_BACK_GAP_RE,
    _G_PASSIVE_RE,
    _G_WITHOUT_RE,
    _GAP_NEG_WORD_RE,
    _WORD_RE,
)
from guardrails.claims.polarity import _Anchor, _Ctx
from guardrails.claims.types import (
    AddOnAssertion,
    BilateralAssertion,
    DocStatement,
    ExtentAssertion,
    GuidanceAssertion,
)

# emit(kind, mention index, value, start, end): records one assertion for a code's group.
_Emit = Callable[[str, int, "bool | str", int, int], None]


def _words(s: str) -> int:
    return len(_WORD_RE.findall(s))


def _assertions(
    cx: _Ctx,
    anchors: list[_Anchor],
    extents: list[ExtentAssertion],
    add_ons: list[AddOnAssertion],
    guidance: list[GuidanceAssertion],
    bilateral: list[BilateralAssertion],
) -> None:
    low, ms = cx.low, cx.ms
    seen: set[tuple[str, str, bool | str]] = set()

    def emit(kind: str, i: int, value: bool | str, s: int, e: int) -> None:
        for j in cx.groups[i]:
            m = ms[j]
            key = (kind, m.code, value)
            if key in seen:
                continue
            seen.add(key)
            lo, hi = min(s, m.start), max(e, m.end)
            if kind == "E":
                assert isinstance(value, str)
                extents.append(ExtentAssertion(m.code, value, lo, hi))
            elif kind == "A":
                add_ons.append(AddOnAssertion(m.code, bool(value), lo, hi))
            elif kind == "G":
                guidance.append(GuidanceAssertion(m.code, bool(value), lo, hi))
            else:
                bilateral.append(BilateralAssertion(m.code, bool(value), lo, hi))

    for a in anchors:
        cat = a.cat
        if cat == "E":
            if _EXTENT_SKIP_RE.match(low, a.pos):
                continue
            i = _nearest_close(cx, a, 3, 40)
            if i is not None:
                emit("E", i, a.word, a.pos, a.end)
        elif cat in ("A", "S"):
            _add_on(cx, a, emit)
        elif cat in ("GI", "GW", "GN"):
            _guidance(cx, a, emit)
        elif cat in ("BI", "UN"):
            i = _nearest_close(cx, a, 6, 60)
            if i is not None:
                value = cat == "BI"
                if _BILAT_NOT_RE.search(low, max(0, a.pos - 16), a.pos):
                    value = not value
                emit("B", i, value, a.pos, a.end)
    for m in ms:
        if "50" in m.mods and ("B", m.code, True) not in seen:
            seen.add(("B", m.code, True))
            bilateral.append(BilateralAssertion(m.code, True, m.start, m.tail_end))


def _nearest_close(cx: _Ctx, a: _Anchor, max_words: int, max_chars: int) -> int | None:
    """The nearest code on either side within a few words, with no clause break between."""
    best: int | None = None
    best_d = max_chars + 1
    i = cx.before(a.pos, a.sent)
    if i is not None:
        gap = cx.gap_before(i, a.pos)
        if len(gap) <= max_chars and ";" not in gap and _words(gap) <= max_words:
            best, best_d = i, len(gap)
    j = cx.after(a.end, a.sent)
    if j is not None:
        gap = cx.gap_after(a.end, j)
        if len(gap) < best_d and ";" not in gap and _words(gap) <= max_words:
            best = j
    return best


def _add_on(cx: _Ctx, a: _Anchor, emit: _Emit) -> None:
    low = cx.low
    standalone = a.cat == "S"
    i = cx.before(a.pos, a.sent)
    if i is not None:
        gap = cx.gap_before(i, a.pos)
        if len(gap) <= 80 and _ADDON_BACK_GAP_RE.fullmatch(gap):
            negated = _GAP_NEG_WORD_RE.search(gap) is not None
            emit("A", i, negated if standalone else not negated, a.pos, a.end)
            return
    if standalone:
        return
    j = cx.after(a.end, a.sent)
    if j is not None:
        gap = cx.gap_after(a.end, j)
        if len(gap) <= 24 and _ADDON_FWD_GAP_RE.fullmatch(gap):
            negated = _ADDON_NEG_BEFORE_RE.search(low, max(0, a.pos - 12), a.pos) is not None
            emit("A", j, not negated, a.pos, a.end)


def _guidance(cx: _Ctx, a: _Anchor, emit: _Emit) -> None:
    low = cx.low
    cat = a.cat
    if cat == "GI":
        m = _G_ACTIVE_RE.match(low, a.pos)
        if m is None:
            return
        value = _G_ACTIVE_NEG_BEFORE_RE.search(low, max(0, a.pos - 20), a.pos) is None
        end = m.end()
        i = cx.before(a.pos, a.sent)
        if i is not None:
            gap = cx.gap_before(i, a.pos)
            if (
                len(gap) <= 60
                and ";" not in gap
                and _words(gap) <= 6
                and not (_G_OTHER_SUBJECT_RE.search(gap))
            ):
                emit("G", i, value, a.pos, end)
                return
            return
        j = cx.after(end, a.sent)
        if j is not None and len(cx.gap_after(end, j)) <= 4:
            emit("G", j, value, a.pos, end)
        return
    if cat == "GW":
        m = _G_WITHOUT_RE.match(low, a.pos)
        if m is None:
            return
        i = cx.before(a.pos, a.sent)
        if i is not None and a.pos - cx.ms[i].end <= 120 and ";" not in cx.gap_before(i, a.pos):
            emit("G", i, False, a.pos, m.end())
        return
    m = _G_PASSIVE_RE.match(low, a.pos)
    if m is None:
        return
    value = m.group(1) is None
    if m.group(2):
        j = cx.after(m.end(), a.sent)
        if j is not None and cx.ms[j].start - m.end() <= 1:
            emit("G", j, value, a.pos, m.end())
            return
    i = cx.before(a.pos, a.sent)
    if i is not None:
        gap = cx.gap_before(i, a.pos)
        if len(gap) <= 60 and _G_PASSIVE_BACK_GAP_RE.fullmatch(gap) and _words(gap) <= 5:
            emit("G", i, value, a.pos, m.end())


def _docs(cx: _Ctx, anchors: list[_Anchor]) -> list[DocStatement]:
    low = cx.low
    out: list[DocStatement] = []
    seen: set[tuple[str | None, str, bool]] = set()
    consumed = -1
    prev_end = -1
    prev_required = True
    prev_sent = -1
    for a in anchors:
        cat = a.cat
        if cat[0] != "D" or a.pos < consumed:
            continue
        found = _doc_element(low, a)
        if found is None:
            continue
        element, s, e = found
        consumed = e
        sent_s, sent_e = cx.sents[a.sent] if cx.sents else (0, len(low))
        required = _doc_required(low, s, e, sent_s, sent_e, prev_end if prev_sent == a.sent else -1)
        if required is None:  # no cue of its own: a list continues the previous statement
            required = prev_required
        if " not " in low[s:e]:  # "image was not retained" carries its own negation
            required = False
        prev_end, prev_required, prev_sent = e, required, a.sent
        code = _doc_code(cx, s, e, a.sent)
        key = (code, element, required)
        if key in seen:
            continue
        seen.add(key)
        out.append(DocStatement(code, element, required, s, e))
    return out


def _doc_element(low: str, a: _Anchor) -> tuple[str, int, int] | None:
    cat, pos = a.cat, a.pos
    m: re.Match[str] | None
    if cat == "DP":
        m = _D_PERMANENT_RE.match(low, pos)
        return ("permanent_image", pos, m.end()) if m else None
    if cat == "DI":
        m = _D_IMAGE_AFTER_RE.match(low, pos)
        if m is not None:
            return "permanent_image", pos, m.end()
        b = _D_IMAGE_BEFORE_RE.search(low, max(0, pos - 32), pos)
        if b is not None:
            return "permanent_image", b.start(), a.end
        return None
    if cat == "DV":
        m = _D_PATENCY_RE.match(low, pos)
        return ("vessel_patency", pos, m.end()) if m else None
    if cat == "DS":
        m = _D_SITE_AFTER_RE.match(low, pos)
        if m is not None:
            return "sites_evaluated", pos, m.end()
        b = _D_SITE_BEFORE_RE.search(low, max(0, pos - 60), pos)
        if b is not None:
            return "sites_evaluated", b.start(), a.end
        return None
    if cat == "DR":
        m = _D_REALTIME_RE.match(low, pos)
        return ("realtime_needle_entry", pos, m.end()) if m else None
    if cat == "DN":
        m = _D_NEEDLE_RE.match(low, pos)
        return ("realtime_needle_entry", pos, m.end()) if m else None
    if cat == "DW":
        m = _D_REPORT_RE.match(low, pos)
        return ("written_report", pos, m.end()) if m else None
    m = _D_NECESSITY_RE.match(low, pos)
    return ("medical_necessity", pos, m.end()) if m else None


def _doc_required(low: str, s: int, e: int, sent_s: int, sent_e: int, prev_end: int) -> bool | None:
    """False when the text says the element is not needed; None when it says nothing."""
    ws = max(sent_s, s - 50)
    if prev_end > ws:
        between = low[prev_end:s]
        if _DOC_LIST_GAP_RE.fullmatch(between):
            return None
        ws = prev_end
    before = low[ws:s]
    cut = max(before.rfind(";"), before.rfind(","), before.rfind(" but "), before.rfind(":"))
    if cut >= 0:
        before = before[cut + 1 :]
    if _DOC_NEG_RE.search(before):
        return False
    after = low[e : min(sent_e, e + 30)]
    for ch in ";,.":
        k = after.find(ch)
        if k >= 0:
            after = after[:k]
    if _DOC_NEG_AFTER_RE.search(after):
        return False
    return True


def _doc_code(cx: _Ctx, s: int, e: int, sent: int) -> str | None:
    ms = cx.ms
    i = bisect_right(cx.starts, s) - 1
    j = bisect_left(cx.starts, e)
    before = i if i >= 0 and ms[i].sent == sent else None
    after = j if j < len(ms) and ms[j].sent == sent else None
    if before is not None and after is not None:
        return ms[before if s - ms[before].end <= ms[after].start - e else after].code
    if before is not None:
        return ms[before].code
    if after is not None:
        return ms[after].code
    prev = cx.sent_idx.get(sent - 1)
    if prev:
        return ms[prev[-1]].code
    return None


