"""Claims in free text: which codes a drafted answer names, and what it says about them.

`extract(text)` reads a drafted answer (or a web page, or a user's question) and returns
`Claims`: every code with its span, add-on mark, modifiers and units; whether the text
recommends the code, warns against it or only refers to it; and the statements it makes
about codes (complete or limited, add-on or not, guidance included, bilateral, billed
together or not, documentation needed or not). The checker compares those claims with
the knowledge base; nothing here knows which codes exist or what is true.

The extractor is deliberately shallow: a few precompiled regular expressions over the
text plus clause-level cues. It never raises on a str, runs in bounded time (input is
capped at `MAX_TEXT_CHARS`, no pattern can backtrack catastrophically) and is fast
enough to run on every draft.

The package is split by job: ``types`` (what is found), ``patterns`` (compiled once),
``scan`` (sentences, codes with their modifiers and units), ``polarity`` (recommended,
warned, mentioned; pair statements), ``assertions`` (extent, add-on, guidance, bilateral,
documentation) and ``extract``. Claim lines as a coder keys them ("93971-50", "+76937",
"37253x6") are read by the code grammar, :mod:`knowledge.codes`, re-exported here.
"""

from __future__ import annotations

from guardrails.claims.extract import extract
from guardrails.claims.scan import lower_keep_offsets
from guardrails.claims.types import (
    DOC_ELEMENTS,
    MAX_TEXT_CHARS,
    AddOnAssertion,
    BilateralAssertion,
    Claims,
    CodeMention,
    DocStatement,
    ExtentAssertion,
    GuidanceAssertion,
    PairStatement,
    Polarity,
)
from knowledge.codes import (
    MAX_UNITS,
    MODIFIERS,
    ClaimLine,
    CodeKind,
    MalformedCode,
    parse_claim_line,
    parse_claim_lines,
)

__all__ = [
    "DOC_ELEMENTS",
    "MAX_TEXT_CHARS",
    "MAX_UNITS",
    "MODIFIERS",
    "AddOnAssertion",
    "BilateralAssertion",
    "ClaimLine",
    "Claims",
    "CodeKind",
    "CodeMention",
    "DocStatement",
    "ExtentAssertion",
    "GuidanceAssertion",
    "MalformedCode",
    "PairStatement",
    "Polarity",
    "extract",
    "lower_keep_offsets",
    "parse_claim_line",
    "parse_claim_lines",
]
