"""Properties of claims extraction and claim-line parsing, over generated input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.claims import (
    MODIFIERS,
    Claims,
    CodeKind,
    MalformedCode,
    extract,
    parse_claim_line,
)

HCPCS_LETTERS = "ABCDEGHJKLMPQRSTUV"
KNOWN_MODS = sorted(MODIFIERS)

cpt = st.integers(0, 99999).map(lambda n: f"{n:05d}")
cat3 = st.integers(0, 9999).map(lambda n: f"{n:04d}T")
hcpcs = st.tuples(st.sampled_from(HCPCS_LETTERS), st.integers(0, 9999)).map(
    lambda t: f"{t[0]}{t[1]:04d}"
)
any_code = st.one_of(cpt, cat3, hcpcs)

# Ordinary prose words: no labels (MRN, ZIP, ID ...), no unit or modifier words, no "x".
WORDS = [
    "report",
    "the",
    "code",
    "for",
    "ultrasound",
    "guidance",
    "with",
    "and",
    "or",
    "not",
    "bill",
    "injection",
    "knee",
    "joint",
    "is",
    "an",
    "add-on",
    "complete",
    "limited",
    "bilateral",
    "never",
    "since",
    "because",
    "image",
    "permanent",
    "patency",
    "use",
    "instead",
    "of",
    "rather",
    "than",
    "together",
    "wrong",
    "included",
    "bundled",
    "a",
]
word = st.sampled_from(WORDS)
separator = st.sampled_from([" ", ", ", "; ", ". ", " (", ") ", "\n", " / ", " + ", ": "])


@st.composite
def text_with_codes(draw: st.DrawFn) -> tuple[str, list[tuple[int, str]]]:
    """Text of words and codes, with the offset of every code written into it."""
    parts: list[str] = []
    where: list[tuple[int, str]] = []
    pos = 0
    for _ in range(draw(st.integers(1, 30))):
        if parts:
            sep = draw(separator)
            parts.append(sep)
            pos += len(sep)
        if draw(st.booleans()):
            code = draw(any_code)
            token = code
            if draw(st.booleans()):
                token = "+" + code
            where.append((pos + len(token) - len(code), code))
            if draw(st.integers(0, 3)) == 0:
                token += "-" + draw(st.sampled_from(KNOWN_MODS))
            if draw(st.integers(0, 3)) == 0:
                token += f"x{draw(st.integers(1, 99))}"
        else:
            token = draw(word)
        parts.append(token)
        pos += len(token)
    return "".join(parts), where


def _check_spans(c: Claims) -> None:
    for m in c.mentions:
        assert c.text[m.start : m.end].upper() == m.code
        assert 0 <= m.sentence < len(c.sentences)
        s, e = c.sentences[m.sentence]
        assert s <= m.start
        assert m.end <= e
    for group in (c.extents, c.add_ons, c.guidance, c.bilateral, c.pairs, c.docs):
        for a in group:
            assert 0 <= a.start <= a.end <= len(c.text)


@settings(deadline=None, max_examples=200)
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    c = extract(text)
    _check_spans(c)


@settings(deadline=None, max_examples=200)
@given(st.text(alphabet=st.sampled_from(list("0123456789+-x×TGJ ,.$#/:%()MRNZIPunits"))))
def test_never_reports_a_code_not_in_the_text(text: str) -> None:
    c = extract(text)
    _check_spans(c)
    for m in c.mentions:
        before = text[m.start - 1] if m.start else " "
        after = text[m.end] if m.end < len(text) else " "
        assert not before.isalnum()
        assert not after.isdigit()


@settings(deadline=None, max_examples=200)
@given(text_with_codes())
def test_every_code_in_mixed_text_is_found(sample: tuple[str, list[tuple[int, str]]]) -> None:
    text, where = sample
    c = extract(text)
    _check_spans(c)
    found = [(m.start, m.code) for m in c.mentions]
    assert found == where


@settings(deadline=None, max_examples=200)
@given(
    code=any_code,
    plus=st.booleans(),
    mods=st.lists(st.sampled_from(KNOWN_MODS), unique=True, max_size=3),
    units=st.one_of(st.none(), st.integers(1, 999)),
    x=st.sampled_from(["x", "X", "×"]),
    lower=st.booleans(),
)
def test_claim_line_round_trip(
    code: str, plus: bool, mods: list[str], units: int | None, x: str, lower: bool
) -> None:
    token = ("+" if plus else "") + code + "".join("-" + m for m in mods)
    if units is not None:
        token += f"{x}{units}"
    if lower:
        token = token.lower()
    line = parse_claim_line(token)
    assert line.code == code
    assert line.kind == (
        CodeKind.HCPCS
        if code[0].isalpha()
        else CodeKind.CATEGORY_III
        if code.endswith("T")
        else CodeKind.CPT
    )
    assert line.modifiers == tuple(mods)
    assert line.units == (units if units is not None else 1)
    assert line.add_on_mark is plus


bad_code = st.one_of(
    st.integers(0, 9999).map(str),  # too short
    st.integers(100000, 99999999).map(str),  # too long
    st.integers(0, 999).map(lambda n: f"{n:03d}T"),
    st.sampled_from("FINOWXYZ").map(lambda c: c + "1234"),  # not a HCPCS letter
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
)
bad_mod = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=3).filter(
    lambda m: m not in MODIFIERS
)


@settings(deadline=None, max_examples=200)
@given(
    st.one_of(
        bad_code,
        st.tuples(cpt, bad_mod).map(lambda t: f"{t[0]}-{t[1]}"),
        st.tuples(cpt, st.sampled_from([0, 1000, 123456])).map(lambda t: f"{t[0]}x{t[1]}"),
    )
)
def test_claim_line_rejects_invalid(token: str) -> None:
    with pytest.raises(MalformedCode):
        parse_claim_line(token)


@settings(deadline=None, max_examples=200)
@given(st.text())
def test_claim_line_only_raises_malformed_code(token: str) -> None:
    message = ""
    try:
        parse_claim_line(token)
    except MalformedCode as exc:
        message = str(exc)
    assert message == "" or any(w in message for w in ("not a code", "modifier", "units"))
