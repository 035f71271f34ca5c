"""The types of what the claims extractor finds: mentions, assertions, statements, Claims."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from knowledge.codes import CodeKind

MAX_TEXT_CHARS = 100_000
"""Longer input is cut here: extraction time stays bounded whatever a caller passes."""


class Polarity(StrEnum):
    """What the text does with a code."""

    RECOMMENDED = "recommended"
    WARNED = "warned"
    MENTIONED = "mentioned"


DOC_ELEMENTS: frozenset[str] = frozenset(
    {
        "permanent_image",
        "vessel_patency",
        "sites_evaluated",
        "realtime_needle_entry",
        "written_report",
        "medical_necessity",
    }
)


@dataclass(frozen=True, slots=True)
class CodeMention:
    """One code as written in the text."""

    code: str
    kind: CodeKind
    start: int
    end: int
    add_on_mark: bool
    modifiers: tuple[str, ...]
    units: int | None
    polarity: Polarity
    sentence: int


@dataclass(frozen=True, slots=True)
class ExtentAssertion:
    """The text calls `code` the complete or the limited exam."""

    code: str
    extent: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AddOnAssertion:
    """The text says `code` is (or is not) an add-on code."""

    code: str
    is_add_on: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class GuidanceAssertion:
    """The text says `code` includes (or does not include) imaging guidance."""

    code: str
    includes_guidance: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BilateralAssertion:
    """The text says `code` is (or is not) bilateral, in words or with modifier 50."""

    code: str
    bilateral: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PairStatement:
    """The text says two codes are billed together (together=True) or must not be."""

    first: str
    second: str
    together: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DocStatement:
    """The text says a documentation element is needed (required=True) or not needed."""

    code: str | None
    element: str
    required: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Claims:
    """Everything `extract` found in one text."""

    text: str
    sentences: tuple[tuple[int, int], ...]
    mentions: tuple[CodeMention, ...]
    extents: tuple[ExtentAssertion, ...]
    add_ons: tuple[AddOnAssertion, ...]
    guidance: tuple[GuidanceAssertion, ...]
    bilateral: tuple[BilateralAssertion, ...]
    pairs: tuple[PairStatement, ...]
    docs: tuple[DocStatement, ...]

    def recommended(self) -> tuple[CodeMention, ...]:
        """Mentions the text recommends reporting."""
        return tuple(m for m in self.mentions if m.polarity is Polarity.RECOMMENDED)

    def warned(self) -> tuple[CodeMention, ...]:
        """Mentions the text warns against."""
        return tuple(m for m in self.mentions if m.polarity is Polarity.WARNED)

    def codes(self) -> tuple[str, ...]:
        """Distinct codes in order of first mention."""
        return tuple(dict.fromkeys(m.code for m in self.mentions))


