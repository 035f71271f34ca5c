"""What a code looks like: the one home of the code grammar.

- a CPT code is 5 digits (76942); a Category III code is 4 digits and T (0346T); a HCPCS
  Level II code is a letter and 4 digits (G0389), the letter one of :data:`HCPCS_LETTERS`
  (I, N, O and W-Z start no HCPCS code, which keeps ICD-10 codes and words out);
- a claim line is a code with an optional add-on mark ``+``, modifiers after dashes and
  units after ``x``: ``+76937``, ``93971-50``, ``76942-59x2``;
- keyed input (``advisor lookup``, ``advisor check``, the web app's boxes) is read in either
  case (``0346t``, ``g0389``); in free text (drafts, guidelines, notes, questions) a HCPCS
  code is read only with its capital letter, so words and identifiers are not taken.

Every consumer reads codes through this module: the lookup, the claim check, the claims
extractor, the retriever and chunker, the web app, the evaluation and the PHI masker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "CODE",
    "CODE_IN_TEXT",
    "CODE_LIKE",
    "HCPCS_LETTERS",
    "MAX_UNITS",
    "MODIFIERS",
    "MODIFIER_PATTERN",
    "OFFICIAL_CODE",
    "ClaimLine",
    "CodeKind",
    "MalformedCode",
    "format_claim",
    "format_line",
    "is_code",
    "kind_of",
    "mentions",
    "normalize_code",
    "parse_claim_line",
    "parse_claim_lines",
]


class CodeKind(StrEnum):
    """Which code set a code belongs to, from its shape alone."""

    CPT = "cpt"
    CATEGORY_III = "category_iii"
    HCPCS = "hcpcs"


HCPCS_LETTERS = "ABCDEGHJKLMPQRSTUV"
"""First letters of HCPCS Level II codes."""

CODE = rf"[0-9]{{5}}|[0-9]{{4}}T|[{HCPCS_LETTERS}][0-9]{{4}}"
"""A code as stored and shown (upper case)."""

CODE_IN_TEXT = rf"[0-9]{{5}}|[0-9]{{4}}[Tt]|[{HCPCS_LETTERS}][0-9]{{4}}"
"""A code in free text: a Category III ``t`` in either case, a HCPCS letter in capitals."""

_CODE_KEYED = rf"[0-9]{{5}}|[0-9]{{4}}[Tt]|[{HCPCS_LETTERS}{HCPCS_LETTERS.lower()}][0-9]{{4}}"

CODE_LIKE = r"[0-9]{5}|[0-9]{4}[A-Za-z]|[A-Za-z][0-9]{4}"
"""Five characters someone may have meant as a code ('Z1234', '0001F'): a question made of
these is read as codes (and a wrong one gets the grammar's message), and the PHI masker
never masks them."""

OFFICIAL_CODE = r"[0-9]{4}[0-9A-Z]|[A-Z][0-9]{4}"
"""Any code an official CMS file may list (Category II 0001F, every HCPCS letter)."""

MODIFIERS: frozenset[str] = frozenset(
    {"26", "TC", "50", "52", "59", "XE", "XP", "XS", "XU", "76", "77", "RT", "LT", "25", "51", "91"}
    | {f"F{c}" for c in "123456789A"}
    | {f"T{c}" for c in "123456789A"}
)
"""Modifiers the checker knows how to reason about, plus common ones a coder may key."""

MODIFIER_PATTERN = r"(?:26|50|52|59|76|77|25|51|91|TC|XE|XP|XS|XU|RT|LT|F[1-9A]|T[1-9A])"
""":data:`MODIFIERS` as a regular expression (a test keeps the two equal)."""

MAX_UNITS = 999

_CODE_RE = re.compile(CODE)
_KEYED_RE = re.compile(rf"\+?\s*({_CODE_KEYED})")
_MENTION_RE = re.compile(rf"(?<![\w.])\+?({CODE_IN_TEXT})(?:(?![\w])|(?=[xX×][0-9]))")
_SHAPE_HELP = (
    "a CPT code is 5 digits (76942), a Category III code is 4 digits and T (0346T), "
    "a HCPCS code is a letter and 4 digits (G0389)"
)


class MalformedCode(ValueError):
    """A token that is not a code (line); the message says what a code looks like."""

    retryable = False


def kind_of(code: str) -> CodeKind | None:
    """The code set of an (upper-case) code, or None when it is not a code."""
    if _CODE_RE.fullmatch(code) is None:
        return None
    if code[0].isalpha():
        return CodeKind.HCPCS
    return CodeKind.CATEGORY_III if code[4] == "T" else CodeKind.CPT


def is_code(code: str) -> bool:
    """True for a code as stored: '76942', '0346T', 'G0389'."""
    return _CODE_RE.fullmatch(code) is not None


def normalize_code(token: str) -> str:
    """'+76937' -> '76937', '0346t' -> '0346T', 'g0389' -> 'G0389'; else MalformedCode."""
    m = _KEYED_RE.fullmatch(token.strip())
    if m is None:
        raise MalformedCode(f"{token.strip()!r} is not a code: {_SHAPE_HELP}.")
    return m.group(1).upper()


def mentions(text: str) -> list[str]:
    """Codes named in free text, upper case, in order of first mention, without repeats."""
    return list(dict.fromkeys(m.group(1).upper() for m in _MENTION_RE.finditer(text)))


def mention_spans(text: str) -> list[tuple[str, int, int]]:
    """Each code named in free text with the span of its digits (for marking it in place)."""
    return [(m.group(1).upper(), m.start(1), m.end(1)) for m in _MENTION_RE.finditer(text)]


# ---------------------------------------------------------------------------------------
# Claim lines as a coder keys them
# ---------------------------------------------------------------------------------------

_LINE_RE = re.compile(rf"(\+)?({_CODE_KEYED})((?:-[0-9A-Za-z]{{1,3}})*)(?:[xX×]([0-9]+))?")
_UNITS_ONLY_RE = re.compile(r"[xX×]([0-9]+)")
_MOD_ONLY_RE = re.compile(r"-([0-9A-Za-z]{1,3})")
_SPLIT_RE = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One claim line: a code with its modifiers and units."""

    code: str
    kind: CodeKind
    modifiers: tuple[str, ...]
    units: int
    add_on_mark: bool


def _not_a_code(token: str) -> MalformedCode:
    return MalformedCode(
        f"{token!r} is not a code: {_SHAPE_HELP}; add modifiers after a dash (93971-50) "
        "and units after x (37253x6)."
    )


def _check_units(token: str, digits: str) -> int:
    units = int(digits[:6])
    if not 1 <= units <= MAX_UNITS or len(digits) > 6:
        raise MalformedCode(
            f"{token!r}: units must be a whole number from 1 to {MAX_UNITS} (e.g. 37253x6)."
        )
    return units


def _check_mod(token: str, mod: str) -> str:
    mod = mod.upper()
    if mod not in MODIFIERS:
        known = ", ".join(sorted(MODIFIERS))
        raise MalformedCode(f"{token!r}: unknown modifier {mod!r}; known modifiers: {known}.")
    return mod


def parse_claim_line(token: str) -> ClaimLine:
    """Parse one keyed claim line such as "93971-50", "+76937" or "76942-59x2"."""
    m = _LINE_RE.fullmatch(token.strip())
    if m is None:
        raise _not_a_code(token)
    plus, code, mods_s, units_s = m.groups()
    code = code.upper()
    kind = kind_of(code)
    assert kind is not None  # the line pattern admits codes only
    mods: list[str] = []
    for part in mods_s.split("-")[1:]:
        mod = _check_mod(token, part)
        if mod not in mods:
            mods.append(mod)
    units = _check_units(token, units_s) if units_s is not None else 1
    return ClaimLine(code, kind, tuple(mods), units, plus is not None)


def parse_claim_lines(tokens: Iterable[str]) -> list[ClaimLine]:
    """Parse keyed claim lines; tokens may hold several lines split by spaces or commas.

    A lone "x6" or "-59" applies to the line before it ("37253 x6", "76942 -59").
    """
    lines: list[ClaimLine] = []
    for token in tokens:
        for piece in _SPLIT_RE.split(token):
            if not piece:
                continue
            u = _UNITS_ONLY_RE.fullmatch(piece)
            if u is not None and lines:
                lines[-1] = replace(lines[-1], units=_check_units(piece, u.group(1)))
                continue
            mo = _MOD_ONLY_RE.fullmatch(piece)
            if mo is not None and lines:
                mod = _check_mod(piece, mo.group(1))
                last = lines[-1]
                if mod not in last.modifiers:
                    lines[-1] = replace(last, modifiers=(*last.modifiers, mod))
                continue
            lines.append(parse_claim_line(piece))
    return lines


def format_line(code: str, modifiers: Sequence[str] = (), units: int = 1) -> str:
    """A claim line as a coder keys it: '76942-59x2'."""
    return code + "".join(f"-{m}" for m in modifiers) + (f"x{units}" if units != 1 else "")


def format_claim(lines: Iterable[tuple[str, Sequence[str], int]]) -> str:
    """Claim lines (code, modifiers, units) as keyed, separated by spaces."""
    return " ".join(format_line(code, mods, units) for code, mods, units in lines)
