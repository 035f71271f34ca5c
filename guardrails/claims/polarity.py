"""Polarity (recommended, warned against, only mentioned) and pair statements: clause
breaks, chains of joined codes, and the cues read around them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from guardrails.claims.patterns import (
    _BUNDLED,
    _CLAUSE_RE,
    _KW_RE,
    _LIST,
    _MAX_CHAIN_FOR_PAIRS,
    _NONE,
    _NOT_EXCLUDED_RE,
    _PAIR_JOINS,
    _POST_GAP_RE,
    _POST_RE,
    _SINCE_TEMPORAL_RE,
    _TO,
    _TOGETHER_RE,
    _WITH,
    _WITH_NEG,
    _WITHOUT_CODE_RE,
    _kw_cat,
)
from guardrails.claims.scan import _gap_kind, _Raw
from guardrails.claims.types import PairStatement, Polarity


class _Chain:
    """Codes in one clause joined by list or pair connectors ("20606/20611 with 76882")."""

    __slots__ = ("end", "idx", "joins", "negated", "start")

    def __init__(self, first: int, start: int) -> None:
        self.idx = [first]
        self.joins: list[int] = []
        self.negated = False
        self.start = start
        self.end = start


class _Anchor:
    """A keyword found in the text, with its category and sentence."""

    __slots__ = ("cat", "end", "pos", "sent", "word")

    def __init__(self, cat: str, pos: int, end: int, word: str, sent: int) -> None:
        self.cat = cat
        self.pos = pos
        self.end = end
        self.word = word
        self.sent = sent


class _Ctx:
    """Shared state of one extraction, so the helpers need few arguments."""

    __slots__ = ("groups", "low", "ms", "sent_idx", "sents", "starts", "text")

    def __init__(self, text: str, low: str, ms: list[_Raw], sents: list[tuple[int, int]]) -> None:
        self.text = text
        self.low = low
        self.ms = ms
        self.sents = sents
        self.starts = [m.start for m in ms]
        self.groups: list[tuple[int, ...]] = [(i,) for i in range(len(ms))]
        self.sent_idx: dict[int, list[int]] = {}
        for i, m in enumerate(ms):
            self.sent_idx.setdefault(m.sent, []).append(i)

    def before(self, pos: int, sent: int) -> int | None:
        """Index of the nearest mention ending at or before pos in sentence `sent`."""
        i = bisect_right(self.starts, pos) - 1
        if i < 0:
            return None
        m = self.ms[i]
        if m.sent != sent or m.tail_end > pos:
            return None
        return i

    def after(self, pos: int, sent: int) -> int | None:
        """Index of the nearest mention starting at or after pos in sentence `sent`."""
        i = bisect_left(self.starts, pos)
        if i >= len(self.ms) or self.ms[i].sent != sent:
            return None
        return i

    def gap_before(self, i: int, pos: int) -> str:
        return self.low[self.ms[i].tail_end : pos]

    def gap_after(self, pos: int, i: int) -> str:
        m = self.ms[i]
        return self.low[pos : m.start - 1 if m.plus else m.start]


def _anchors(low: str, sent_starts: list[int], code_sents: set[int]) -> list[_Anchor]:
    out: list[_Anchor] = []
    if not sent_starts:
        return out
    scan = " " + low
    last_sent = -1
    last_start = -1
    next_start = 0
    nsent = len(sent_starts)
    for m in _KW_RE.finditer(scan):
        word = m.group(1)
        pos = m.start(1) - 1
        cat = _kw_cat(word)
        if pos >= next_start or pos < last_start:
            last_sent = max(0, bisect_right(sent_starts, pos) - 1)
            last_start = sent_starts[last_sent] if nsent else 0
            next_start = sent_starts[last_sent + 1] if last_sent + 1 < nsent else len(low) + 1
        if cat[0] != "D" and last_sent not in code_sents:
            continue  # only documentation statements matter where no code is named
        out.append(_Anchor(cat, pos, m.end(1) - 1, word, last_sent))
    return out


def _polarity_and_chains(cx: _Ctx, anchors: list[_Anchor], code_sents: set[int]) -> list[_Chain]:
    low, ms, sents = cx.low, cx.ms, cx.sents
    # Clause breaks, only where codes are: punctuation, break words, sentence starts.
    bounds: list[int] = [s for s, _ in sents]
    tail_ends = {m.tail_end for m in ms}
    for si in code_sents:
        s, e = sents[si]
        for c in _CLAUSE_RE.finditer(low, s, e):
            if c.group(1) is not None:
                j = c.start()
                while j > s and low[j - 1] in " \t'\"’”*":
                    j -= 1
                if j in tail_ends:
                    continue  # a list of codes

            bounds.append(c.end())
    for a in anchors:
        if a.cat[0] == "B":
            bounds.append(a.pos)
    bounds.sort()
    for m in ms:
        m.clause = bisect_right(bounds, m.start)

    # Chains of joined codes within one clause.
    chains: list[_Chain] = []
    cur: _Chain | None = None
    for i, m in enumerate(ms):
        if cur is not None:
            p = ms[i - 1]
            kind = _gap_kind(low, p, m) if p.clause == m.clause else _NONE
            if kind != _NONE:
                cur.idx.append(i)
                cur.joins.append(kind)
                cur.end = m.tail_end
                continue
        cur = _Chain(i, m.start - (1 if m.plus else 0))
        cur.end = m.tail_end
        chains.append(cur)
    # LIST groups: an assertion about one member of "20606/20611" is about both.
    for ch in chains:
        group = [ch.idx[0]]
        for k, j in enumerate(ch.idx[1:]):
            if ch.joins[k] == _LIST:
                group.append(j)
            else:
                _set_group(cx, group)
                group = [j]
        _set_group(cx, group)

    # Events per clause: cues and chains, in text order.
    events: dict[int, list[_Event]] = {}
    for ci, ch in enumerate(chains):
        events.setdefault(ms[ch.idx[0]].clause, []).append((ch.start, 1, ci, None))
    chain_spans = [(ch.start, ch.end) for ch in chains]
    for a in anchors:
        cat = a.cat
        if cat not in ("N", "BN", "J", "P", "C", "BC", "GW"):
            continue
        clause = bisect_right(bounds, a.pos)
        if clause not in events:
            continue
        k = bisect_right(chain_spans, (a.pos, 1 << 62)) - 1
        if k >= 0 and chain_spans[k][0] <= a.pos < chain_spans[k][1]:
            continue  # inside "76942 should not be billed with 20611": the chain handles it
        events[clause].append((a.pos, 0, -1, a))
    for evs in events.values():
        _run_clause(cx, chains, sorted(evs, key=lambda t: (t[0], t[1])))
    return chains


# (position, 0 for a cue or 1 for a chain, chain index, cue)
_Event = tuple[int, int, int, "_Anchor | None"]


def _set_group(cx: _Ctx, group: list[int]) -> None:
    if len(group) > 1:
        t = tuple(group)
        for j in group:
            cx.groups[j] = t


def _run_clause(cx: _Ctx, chains: list[_Chain], evs: list[_Event]) -> None:
    """Walk one clause's cues and chains in order and set each mention's polarity."""
    low, ms = cx.low, cx.ms
    rec, neg, neg_done, ctx, after_post = 0, 1, 2, 3, 4
    mode = rec
    neg_end = 0
    last: _Chain | None = None
    for pos, _typ, ci, a in evs:
        if a is None:
            ch = chains[ci]
            if mode == neg and ch.start - neg_end > 60:
                mode = rec  # a negation this far back is about something else
            if mode == neg:
                ch.negated = True
                split = False
                for k, j in enumerate(ch.idx):
                    if k and ch.joins[k - 1] in (_WITH, _WITH_NEG, _TO, _BUNDLED):
                        split = True
                    ms[j].pol = Polarity.MENTIONED if split else Polarity.WARNED
                mode = neg_done
            elif mode == rec:
                _chain_default(ms, ch)
            else:
                for j in ch.idx:
                    ms[j].pol = Polarity.MENTIONED
            last = ch
            continue
        cat = a.cat
        if cat in ("C", "BC"):
            if a.word == "since" and _SINCE_TEMPORAL_RE.match(low, pos):
                continue
            mode = ctx
            continue
        if cat == "GW":
            if _WITHOUT_CODE_RE.match(low, pos):
                mode, neg_end = neg, a.end
            continue
        post = _POST_RE.match(low, pos) if cat in ("N", "J", "P") else None
        if post is not None and last is not None and _POST_GAP_RE.fullmatch(low, last.end, pos):
            last.negated = True
            for j in last.idx:
                ms[j].pol = Polarity.WARNED
            mode = rec if post.group().startswith(("replaced", "superseded")) else after_post
            continue
        if cat == "P":
            continue
        if cat == "N" and _NOT_EXCLUDED_RE.match(low, pos):
            continue
        mode, neg_end = neg, a.end


def _chain_default(ms: list[_Raw], ch: _Chain) -> None:
    """A chain with no cue before it: recommended, except members after a negated join."""
    split = False
    for k, j in enumerate(ch.idx):
        if k and ch.joins[k - 1] in (_WITH_NEG, _BUNDLED):
            split = True
            ch.negated = True
            for jj in ch.idx[:k]:
                ms[jj].pol = Polarity.WARNED
        ms[j].pol = Polarity.MENTIONED if split else Polarity.RECOMMENDED


def _pairs(cx: _Ctx, chains: list[_Chain]) -> list[PairStatement]:
    ms, low = cx.ms, cx.low
    out: list[PairStatement] = []
    seen: set[tuple[str, str, bool]] = set()
    for ch in chains:
        if len(ch.idx) < 2:
            continue
        segments: list[list[int]] = [[ch.idx[0]]]
        # A real pair statement names a handful of codes; the cap keeps a pasted code list
        # from producing a quadratic number of pairs.
        for k, j in enumerate(ch.idx[1:_MAX_CHAIN_FOR_PAIRS]):
            if ch.joins[k] in _PAIR_JOINS:
                segments.append([j])
            else:
                segments[-1].append(j)
        if len(segments) < 2:
            sent_end = cx.sents[ms[ch.idx[0]].sent][1]
            both = low[max(0, ch.start - 5) : ch.start] == "both "
            if not both and not _TOGETHER_RE.match(low, ch.end, min(sent_end, ch.end + 60)):
                continue
            segments = [[j] for j in ch.idx[:_MAX_CHAIN_FOR_PAIRS]]
        together = not ch.negated
        for x in range(len(segments)):
            for y in range(x + 1, len(segments)):
                for i in segments[x]:
                    for j in segments[y]:
                        a, b = ms[i].code, ms[j].code
                        if a == b or (a, b, together) in seen:
                            continue
                        seen.add((a, b, together))
                        out.append(PairStatement(a, b, together, ch.start, ch.end))
    return out


