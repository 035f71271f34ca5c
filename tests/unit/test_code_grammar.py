"""The code grammar (knowledge/codes.py) and every consumer of it, given the same inputs.

Keyed input (lookup, check, the web app's boxes, a code-only question, the evaluation's
check cases) is read in either case; free text (drafts, guidelines, queries, notes) reads
a HCPCS code only with its capital letter. Each table row is run through every consumer
and must get one answer.
"""

from __future__ import annotations

import itertools
import re

import pytest
from typer.testing import CliRunner

from advisor.chunking import codes_in
from advisor.cli import app
from advisor.compose import Composer
from advisor.evaluation.suite import CODE_PATTERN
from advisor.lookup import normalize_code as lookup_normalize
from advisor.pipeline import Advisor
from advisor.privacy import code_spans
from advisor.retriever import query_codes
from advisor.scope import parse_code_query
from advisor.settings import Settings
from advisor.ui import codes_in_text
from guardrails import check_claim
from guardrails.claims import extract
from knowledge import codes as grammar
from knowledge.catalog import load_catalog
from knowledge.schema import CODE_RE

CAT = load_catalog()

# keyed token -> the code it is, or None when it is no code
KEYED = [
    ("76942", "76942"),
    ("+76937", "76937"),
    ("0346T", "0346T"),
    ("0346t", "0346T"),
    ("G0389", "G0389"),
    ("g0389", "G0389"),
    ("Z1234", None),  # Z starts no HCPCS code (ICD-10 look-alike)
    ("I1234", None),
    ("W1830", None),
    ("7694", None),
    ("769420", None),
    ("abc", None),
    ("0346X", None),
    ("G038", None),
]

# a word in a sentence -> the codes the sentence names
IN_TEXT = [
    ("76942", ["76942"]),
    ("+76937", ["76937"]),
    ("0346T", ["0346T"]),
    ("0346t", ["0346T"]),
    ("G0389", ["G0389"]),
    ("g0389", []),  # in prose a HCPCS code has its capital letter
    ("Z1234", []),
    ("7694", []),
    ("769420", []),
    ("37253x6", ["37253"]),
    ("76942-59", ["76942"]),
]


# Each test runs on its own empty data directory (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("private_data_dir")


def test_the_modifier_pattern_is_the_modifier_set() -> None:
    rx = re.compile(grammar.MODIFIER_PATTERN)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    matched = {a + b for a, b in itertools.product(alphabet, repeat=2) if rx.fullmatch(a + b)}
    assert matched == grammar.MODIFIERS


def test_every_catalog_code_has_the_grammar_shape() -> None:
    for code in CAT.codes:
        assert grammar.is_code(code), code
        assert grammar.normalize_code(code.lower()) == code
        assert grammar.kind_of(code) is not None


@pytest.mark.parametrize(("token", "code"), KEYED, ids=[t for t, _ in KEYED])
def test_keyed_input_has_one_answer_in_every_consumer(token: str, code: str | None) -> None:
    # the grammar
    if code is None:
        with pytest.raises(grammar.MalformedCode):
            grammar.normalize_code(token)
        with pytest.raises(grammar.MalformedCode):
            grammar.parse_claim_line(token)
    else:
        assert grammar.normalize_code(token) == code
        assert grammar.parse_claim_line(token).code == code
        assert re.fullmatch(CODE_PATTERN, code) and CODE_RE.fullmatch(code)
    # the lookup (CLI and web app) and the claim check (CLI, web app, evaluation)
    try:
        looked_up = lookup_normalize(token)
    except ValueError:
        looked_up = None
    assert looked_up == code
    try:
        checked = [v.code for v in check_claim([token], CAT).first.verdicts]
    except ValueError:
        checked = None
    assert checked == (None if code is None else [code])
    # a question that is only codes (or what looks meant as one) goes to the lookup path
    # with the same reading; anything else is a question for the model
    if parse_code_query(token) is None:
        assert code is None
        return
    answer = Advisor(Settings(backend="none"), catalog=CAT).lookup(token)
    if code is None:
        assert [f["rule"] for f in answer.findings] == ["existence.malformed"]
    else:
        assert code in {c.code for c in answer.codes} | {c.code for c in answer.removed}


@pytest.mark.parametrize(("token", "code"), KEYED, ids=[t for t, _ in KEYED])
def test_lookup_and_check_agree_on_the_exit_code_for_bad_input(token: str,
                                                               code: str | None) -> None:
    runner = CliRunner()
    lookup = runner.invoke(app, ["lookup", token]).exit_code
    check = runner.invoke(app, ["check", token]).exit_code
    if code is None:
        assert (lookup, check) == (2, 2)
    else:
        assert lookup in (0, 1) and check in (0, 1)
        assert (lookup == 0) == (CAT.get(code) is not None)


@pytest.mark.parametrize(("word", "codes"), IN_TEXT, ids=[w for w, _ in IN_TEXT])
def test_free_text_has_one_answer_in_every_consumer(word: str, codes: list[str]) -> None:
    text = f"Report {word} for this patient."
    assert grammar.mentions(text) == codes
    assert list(extract(text).codes()) == codes  # drafts and claims checked as text
    assert list(codes_in(text)) == codes  # guideline chunks
    assert query_codes(text) == codes  # retrieval queries
    known = [c for c in codes if CAT.get(c) is not None]
    assert codes_in_text(text, CAT) == known  # the web app's note audit
    flagged = Composer.flag_prose(text, [], set(), set())  # codes named in drafted prose
    assert flagged.count("[not checked]") == len(codes)
    protected = [text[s:e] for s, e in code_spans(text)]  # never masked as PHI
    assert all(any(c in p.upper() for p in protected) for c in codes)


def test_a_claim_line_formats_back_as_keyed() -> None:
    line = grammar.parse_claim_line("+76942-59-rtx2")
    assert (line.code, line.modifiers, line.units, line.add_on_mark) == ("76942", ("59", "RT"),
                                                                          2, True)
    assert grammar.format_line(line.code, line.modifiers, line.units) == "76942-59-RTx2"
    assert grammar.format_claim([("93971", ("50",), 1), ("37253", (), 6)]) == "93971-50 37253x6"
