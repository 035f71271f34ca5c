"""extract(text) -> Claims: the extractor's one entry point."""

from __future__ import annotations

from bisect import bisect_right

from guardrails.claims.assertions import _assertions, _docs
from guardrails.claims.polarity import _anchors, _Ctx, _pairs, _polarity_and_chains
from guardrails.claims.scan import _find_codes, _sentences, lower_keep_offsets
from guardrails.claims.types import (
    MAX_TEXT_CHARS,
    AddOnAssertion,
    BilateralAssertion,
    Claims,
    CodeMention,
    ExtentAssertion,
    GuidanceAssertion,
    PairStatement,
)


def extract(text: str) -> Claims:
    """Read codes and what the text asserts about them; never raises, bounded time."""
    if not isinstance(text, str):  # defensive: callers outside the type checker
        text = str(text)
    text = text[:MAX_TEXT_CHARS]
    low = lower_keep_offsets(text)
    sents = _sentences(text, low)
    ms = _find_codes(text, low)
    sent_starts = [s for s, _ in sents]
    for m in ms:
        m.sent = max(0, bisect_right(sent_starts, m.start) - 1)
    code_sents = {m.sent for m in ms}
    anchors = _anchors(low, sent_starts, code_sents)
    cx = _Ctx(text, low, ms, sents)
    extents: list[ExtentAssertion] = []
    add_ons: list[AddOnAssertion] = []
    guidance: list[GuidanceAssertion] = []
    bilateral: list[BilateralAssertion] = []
    pairs: list[PairStatement] = []
    if ms:
        chains = _polarity_and_chains(cx, anchors, code_sents)
        pairs = _pairs(cx, chains)
        _assertions(cx, anchors, extents, add_ons, guidance, bilateral)
    docs = _docs(cx, anchors)
    mentions = tuple(
        CodeMention(m.code, m.kind, m.start, m.end, m.plus, tuple(m.mods), m.units, m.pol, m.sent)
        for m in ms
    )
    return Claims(
        text,
        tuple(sents),
        mentions,
        tuple(extents),
        tuple(add_ons),
        tuple(guidance),
        tuple(bilateral),
        tuple(pairs),
        tuple(docs),
    )


