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

`parse_claim_line` reads the tokens a coder keys on the command line
("93971-50", "+76937", "37253x6") and raises `MalformedCode` with a message that says
what a code looks like.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

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
    "parse_claim_line",
    "parse_claim_lines",
]

MAX_TEXT_CHARS = 100_000
"""Longer input is cut here: extraction time stays bounded whatever a caller passes."""

MAX_UNITS = 999


class CodeKind(StrEnum):
    """Which code set a code belongs to, from its shape alone."""

    CPT = "cpt"
    CATEGORY_III = "category_iii"
    HCPCS = "hcpcs"


class Polarity(StrEnum):
    """What the text does with a code."""

    RECOMMENDED = "recommended"
    WARNED = "warned"
    MENTIONED = "mentioned"


# Modifiers the checker knows how to reason about, plus common ones a coder may key.
MODIFIERS: frozenset[str] = frozenset(
    {"26", "TC", "50", "52", "59", "XE", "XP", "XS", "XU", "76", "77", "RT", "LT", "25", "51", "91"}
    | {f"F{c}" for c in "123456789A"}
    | {f"T{c}" for c in "123456789A"}
)

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


# ---------------------------------------------------------------------------------------
# Patterns. Each is either anchored (used with .match at a known position) or starts with
# a character class, so the regex engine can skip ahead quickly; none nests quantifiers.
# ---------------------------------------------------------------------------------------

# HCPCS Level II first letters; leaving out I, N, O, W-Z keeps ICD-10 look-alikes
# (Z1231, W1830) and words out.
_HCPCS_LETTERS = "ABCDEGHJKLMPQRSTUV"

# The lookahead lets units follow straight on ("37253x6"); everything else that touches the
# code must be a non-alphanumeric character.
# One leading character class (not an alternation) lets the regex engine skip ahead fast;
# the exact shape (HCPCS ends in a digit) is checked in Python.
_CODE_RE = re.compile(rf"[0-9{_HCPCS_LETTERS}][0-9]{{3}}[0-9Tt](?=[^0-9A-Za-z]|[xX][ \t]?[0-9]|\Z)")

_MOD_ALT = r"(?:26|50|52|59|76|77|25|51|91|TC|XE|XP|XS|XU|RT|LT|F[1-9A]|T[1-9A])"
_MOD_END = r"(?=[^0-9A-Za-z]|[xX×][ \t]?[0-9]|\Z)"

# Everything that may trail a code: "-59", " -50", "-rt", " with modifier 50", " modifier -59",
# " RT" (upper case only when separated by a space, so words are not taken), and units.
_TAIL_RE = re.compile(
    rf"[ \t]?[-–][ \t]?({_MOD_ALT}){_MOD_END}"
    r"|[ \t]*,?[ \t]*(?:(?:may|can|should|must|is|are)[ \t]+(?:be[ \t]+)?"
    r"(?:reported|billed|coded|appended)[ \t]+)?"
    rf"(?:(?:with|and|plus|using)[ \t]+)?(?:the[ \t]+|a[ \t]+)?"
    rf"(?:modifiers?|mod\.?)[ \t]*[:#]?[ \t]*-?[ \t]?({_MOD_ALT}){_MOD_END}"
    rf"|[ \t]((?-i:TC|XE|XP|XS|XU|RT|LT)){_MOD_END}"
    r"|[ \t]*[xX×][ \t]?([0-9]{1,3})(?![0-9])(?:[ \t]*units?\b)?"
    r"|[ \t]*\([ \t]*(?:[xX×][ \t]?([0-9]{1,3})|([0-9]{1,3})[ \t]*units?"
    r"|units?[ \t]*[:=]?[ \t]*([0-9]{1,3}))[ \t]*\)"
    r"|,?[ \t]*([0-9]{1,3})[ \t]+units?\b"
    r"|,?[ \t]*units?[ \t]*[:=]?[ \t]*([0-9]{1,3})(?![0-9])",
    re.IGNORECASE,
)
# No modifier or unit can start with these, so the tail pattern need not run.
_NOT_TAIL_START = frozenset(".;:)]'\"!?/+&=\n")
# More modifiers after "modifiers 59 and XU".
_MORE_MODS_RE = re.compile(rf"[ \t]*(?:,|/|&|\+|and)[ \t]*-?[ \t]?({_MOD_ALT}){_MOD_END}", re.I)

# Before a code: "append modifier 59 to 76942", "6 units of 37253".
_BEFORE_RE = re.compile(
    rf"(?:modifiers?|mod\.?)[ \t]*-?[ \t]?({_MOD_ALT})[ \t]+(?:to|on|with|for)[ \t]+"
    r"(?:the[ \t]+)?(?:code[ \t]+)?\+?\Z"
    r"|(?<![0-9])([0-9]{1,3})[ \t]+units?[ \t]+(?:of[ \t]+)?(?:code[ \t]+)?\+?\Z",
    re.IGNORECASE,
)

# A number right after one of these labels is an identifier, not a code.
_LABEL_WORDS = (
    "mrn",
    "zip",
    "code",
    "acct",
    "account",
    "phone",
    "tel",
    "fax",
    "npi",
    "id",
    "invoice",
    "order",
    "member",
    "policy",
    "room",
    "ext",
    "extension",
    "no",
    "number",
    "box",
    "num",
)
_LABEL_RE = re.compile(
    r"(?<![a-z])(?:mrn|zip|zip[ \t]*code|postal[ \t]*code|acct|account|phone|tel|fax|npi|id"
    r"|invoice|order|member|policy|room|ext|extension|claim[ \t]*(?:no\.?|number|#)|po[ \t]*box)"
    r"[ \t]*(?:no\.?|number|num|#)?[ \t]*[:#]?[ \t]*\Z"
)

# Sentence ends: . ! ? before white space or the end, and every line break (bullets).
_SENT_RE = re.compile(r"[\n.!?](?:(?<=\n)|[.!?]*(?=[\s\"'”’)\]*_]|\Z))")
_ABBREV = ("e.g", "i.e", " vs", "etc", " dr", "approx", " fig", " cf", " al", "u.s")

# Clause breaks inside a sentence. A comma between two codes ("20604, 20606 or 20611")
# continues a list rather than starting a clause (group 1 marks a comma before a code).
_CLAUSE_RE = re.compile(
    r"[;(),\-–—](?:(?<=,)((?=[ \t]*(?:(?:and|or|and/or|&)[ \t]+)?\+?(?:[0-9]{4}|[a-v][0-9]{4})))?"
    r"|(?<=[;()—])|(?<=\s[-–])(?=\s))"
)

# ----- keyword anchors: one pass over the lower-cased text finds every word that matters.
# Categories: B clause break, N negation, C context, BC both, J judgement (wrong/incorrect),
# P post-code cue, E extent, A add-on, S stand-alone, GI guidance verb, GW "without",
# GN guidance noun, BI bilateral, UN unilateral, D* documentation elements.
_KEYWORDS: dict[str, str] = {}


def _kw(cat: str, words: str) -> None:
    for w in words.split("|"):
        _KEYWORDS[w] = cat


_kw(
    "B",
    "but|however|otherwise|instead|and then|and report|and use|and bill|and code"
    "|and add|and append|and submit|and list|and choose|and select|and instead",
)
_kw("BN", "instead of|rather than")
_kw(
    "N",
    "do not|don't|does not|doesn't|did not|never|not|avoid|avoids|avoiding|in place of"
    "|no longer|cannot|can't|can not|should not|shouldn't|must not|mustn't|may not|could not"
    "|would not|won't|should never|must never|nor|drop|remove|omit|exclude|replace|replaces"
    "|replacing",
)
_kw("J", "wrong|wrongly|incorrect|incorrectly|invalid|erroneous|erroneously")
_kw(
    "P",
    "deleted|retired|obsolete|outdated|bundled|packaged|included|mutually exclusive"
    "|replaced by|superseded by|an error|a mistake",
)
_kw("C", "since|because|given that|when|whenever|if|once|unless")
_kw("BC", "while|whereas|although|though|even though")
_kw("E", "complete|limited")
_kw("A", "add-on|add-ons|addon|addons|add on code|add on codes")
_kw("S", "stand-alone|standalone")
_kw("GI", "include|includes|including|incorporate|incorporates|bundle|bundles|contain|contains")
_kw("GW", "without")
_kw("GN", "guidance|imaging|rs&i|s&i|supervision")
_kw(
    "BI",
    "bilateral|bilaterally|both sides|both breasts|both legs|both arms|both extremities"
    "|both knees|both shoulders|both hips|both kidneys",
)
_kw("UN", "unilateral|unilaterally|one side|single side")
_kw("DP", "permanent|permanently|hard copy|hard-copy")
_kw("DI", "image|images")
_kw("DV", "patency|patent")
_kw("DS", "site|sites")
_kw("DR", "real-time|realtime|real time")
_kw("DN", "needle")
_kw("DW", "written|separate|formal|signed|dictated|interpretation")
_kw("DM", "medical|medically")


def _trie(words: Iterable[str]) -> str:
    """Alternation grouped by first letter: far fewer branches are tried at each word."""
    by_first: dict[str, list[str]] = {}
    for w in words:
        by_first.setdefault(w[0], []).append(w[1:])
    parts = []
    for first, rests in sorted(by_first.items()):
        alts = sorted(set(rests), key=lambda r: (-len(r), r))
        body = "|".join(re.escape(r).replace(r"\ ", r"[ \t]+") for r in alts)
        parts.append(f"{re.escape(first)}(?:{body})")
    return "|".join(parts)


# Scanned over " " + lower-cased text, so every anchor is preceded by a separator character;
# starting the pattern with that character class keeps the scan fast.
_KW_RE = re.compile(r"[\s(\"'/\[\-–—*_](" + _trie(_KEYWORDS) + r")(?![a-z0-9&-])")


def _kw_cat(word: str) -> str:
    cat = _KEYWORDS.get(word)
    if cat is None:  # the matched text had a tab or several spaces inside a phrase
        cat = _KEYWORDS.get(" ".join(word.split()), "")
    return cat


# "not" that negates something other than reporting the code that follows.
_NOT_EXCLUDED_RE = re.compile(
    r"(?:do|does|did)?[ \t]*(?:not|n't)[ \t]+(?:an?[ \t]+|the[ \t]+|a[ \t]+separate[ \t]+)?"
    r"(?:add-?ons?|add on|need|needed|require[sd]?|include[sd]?|including|bilateral|unilateral"
    r"|complete|limited|only|all|just|exist|necessarily|always|forget|have to|mean|say)\b"
)
_NEG_WORDS = (
    "not",
    "n't",
    "never",
    "cannot",
    "nor",
    "no longer",
    "avoid",
    "instead of",
    "rather than",
    "in place of",
    "drop",
    "remove",
    "omit",
    "exclude",
    "replac",
    "wrong",
    "incorrect",
    "invalid",
    "erroneous",
)

# Cues that follow a code and condemn it: "76942 is not separately reportable".
_POST_RE = re.compile(
    r"(?:wrong|incorrect|invalid|erroneous|outdated|obsolete|deleted|retired|an[ \t]+error"
    r"|a[ \t]+mistake|mutually[ \t]+exclusive|superseded[ \t]+by|replaced[ \t]+by"
    r"|bundled|packaged|included[ \t]+(?:in|into|with)\b"
    r"|not[ \t]+(?:separately[ \t]+)?(?:reportable|billable|payable|allowed|covered|appropriate"
    r"|permitted|valid|correct)"
    r"|(?:(?:should|must|may|can|could|would)[ \t]+)?(?:not|never)[ \t]+(?:be[ \t]+)?"
    r"(?:separately[ \t]+)?(?:billed|reported|coded|used|submitted|added|paid|appended)"
    r"|(?:cannot|can't|can[ \t]+not|shouldn't|mustn't|won't)[ \t]+be[ \t]+(?:separately[ \t]+)?"
    r"(?:billed|reported|coded|used|submitted|added|paid|appended)"
    r"|(?:does|do)[ \t]+not[ \t]+exist|(?:don't|doesn't)[ \t]+exist"
    r"|no[ \t]+longer[ \t]+(?:exists?|valid|reportable|active|in[ \t]+use|used))\b"
)
# What may sit between a code and a post-code cue ("20610 + 76942 together is wrong").
_POST_GAP_RE = re.compile(
    r"[\s'\"’”)\]*]*(?:(?:is|are|was|were|be|been|being|also|always|then|both|codes?|here"
    r"|together|alone|simply|clearly|definitely|actually|now|currently|considered|now)"
    r"[\s'\"’”*]+){0,3}"
)
# "since 1/1/2015" and "since 2016" are about time; "since 20611 includes guidance" is a reason.
_SINCE_TEMPORAL_RE = re.compile(
    r"since[ \t]+(?:[0-9]{1,2}[/.-]|(?:19|20)[0-9]{2}(?![0-9])"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|the[ \t]+[0-9]|cpt[ \t]+[0-9]"
    r"|then\b|last\b)"
)
_WITHOUT_CODE_RE = re.compile(
    r"without[ \t]+(?:(?:the|a|code|cpt|adding|billing|reporting)[ \t]+)?\+?"
    r"(?:[0-9]{4}|[a-v][0-9]{4})"
)

# How two neighbouring codes are joined.
_LIST, _PLUS, _WITH, _WITH_NEG, _TO, _BUNDLED, _NONE = range(7)
_MAX_CHAIN_FOR_PAIRS = 16
_PAIR_JOINS = frozenset({_PLUS, _WITH, _WITH_NEG, _TO, _BUNDLED})
_GAP_FAST: dict[str, int] = {
    "/": _LIST,
    ", ": _LIST,
    " and ": _LIST,
    " or ": _LIST,
    ",": _LIST,
    " ": _LIST,
    ", and ": _LIST,
    ", or ": _LIST,
    " and/or ": _LIST,
    "-": _LIST,
    "–": _LIST,
    " & ": _LIST,
    " + ": _PLUS,
    "+": _PLUS,
    " plus ": _PLUS,
    " with ": _WITH,
    " [": _PLUS,
    " (": _NONE,
}
_GAP_LIST_RE = re.compile(
    r"[\s'\"’”*]*(?:/|,|&|and/or|and|or|-|–|through|thru|,[ \t]*and|,[ \t]*or)?[\s'\"’”*]*"
)
_GAP_TO_RE = re.compile(r"[\s'\"’”*]*to[\s'\"’”*]+(?:the[ \t]+)?(?:primary[ \t]+)?(?:code[ \t]+)?")
_GAP_PLUS_RE = re.compile(r"[\s'\"’”*]*(?:[\[(][ \t]*)?(?:\+|plus|&[ \t]*\+)[\s'\"’”*]*")
_GAP_BUNDLED_RE = re.compile(
    r"[\s'\"’”*]*(?:(?:is|are|was|were|be|been|already|also|always|typically|usually)[ \t]+)*"
    r"(?:bundled|included|packaged)[ \t]+(?:in|into|with)[ \t]+(?:the[ \t]+)?"
    r"(?:[a-z'’-]+[ \t]+){0,2}?"
)
_GAP_WITH_RE = re.compile(
    r"([^.;:()\[\]0-9]{0,40}?)\b(?:along[ \t]+with|together[ \t]+with|in[ \t]+addition[ \t]+to"
    r"|on[ \t]+top[ \t]+of|alongside|with)[ \t]+(?:[a-z'’-]+[ \t]+){0,3}?"
)
_GAP_NEG_RE = re.compile(r"\b(?:not|never|cannot|no)\b|n't")
_ADD_BEFORE_RE = re.compile(r"(?:add|adding|append|appending|report|reporting)[ \t]+\Z")
_TOGETHER_RE = re.compile(
    r"[^.;:()]{0,40}?\b(?:together|on[ \t]+the[ \t]+same[ \t]+(?:day|date|claim|encounter"
    r"|session|service)|at[ \t]+the[ \t]+same[ \t]+(?:session|encounter))\b"
)

# Extent, add-on, guidance, bilateral phrases.
_EXTENT_SKIP_RE = re.compile(r"(?:complete|limited)[ \t]+(?:to|the|a|an|by|this|all)\b")
_WORD_RE = re.compile(r"[a-z]+")
_ADDON_BACK_GAP_RE = re.compile(
    r"[\s'\"’”*]*(?:\([^()]{0,60}\)[\s'\"’”*]*)?"
    r"(?:(?:is|are|was|were|be|been|as|also|always|an?|the|designated|listed|considered"
    r"|defined|classified|itself|not|never|isn't|aren't|no|both|codes?|truly|really|actually"
    r"|indeed|only|technically|officially|an?)\b[\s'\"’”*]*|[=:,\-–][\s'\"’”*]*)*"
)
_ADDON_FWD_GAP_RE = re.compile(
    r"[\s'\"’”*]*(?:codes?\b)?[\s'\"’”*]*(?:[(:,=]|such[ \t]+as\b|e\.g\.,?|like\b)?[\s'\"’”*]*\+?"
)
_ADDON_NEG_BEFORE_RE = re.compile(r"(?:not|n't|never)[ \t]+(?:an?[ \t]+|the[ \t]+)?\Z|non-?\Z")
_GAP_NEG_WORD_RE = re.compile(r"\b(?:not|never|no)\b|n't")

_GNOUN = (
    r"(?:(?:us|ultrasound|ultrasonic|sonographic|image|imaging|radiologic(?:al)?|fluoroscopic)"
    r"[ \t-]+)?guidance|(?:all[ \t]+)?imaging(?:[ \t]+guidance)?|rs&i|s&i"
    r"|supervision[ \t]+and[ \t]+interpretation"
)
_G_ACTIVE_RE = re.compile(
    r"(?:includes?|including|incorporates?|bundles?|contains?)[ \t]+"
    rf"(?:the[ \t]+|all[ \t]+|any[ \t]+|its[ \t]+)?(?:{_GNOUN})\b"
)
_G_ACTIVE_NEG_BEFORE_RE = re.compile(r"(?:not|n't|never)[ \t]+(?:\w+[ \t]+)?\Z")
_G_WITHOUT_RE = re.compile(rf"without[ \t]+(?:the[ \t]+|any[ \t]+)?(?:{_GNOUN})\b")
_G_PASSIVE_RE = re.compile(
    rf"(?:{_GNOUN})[ \t]+(?:is[ \t]+|are[ \t]+)?(?:(not)[ \t]+)?(?:already[ \t]+|also[ \t]+)?"
    r"(?:included|bundled|incorporated|built[ \t]+in)\b"
    r"(?:[ \t]+(in|into|with)\b(?:[ \t]+(?:the|a|an)\b)?(?:[ \t]+[a-z'’-]+){0,3}?[ \t]*\+?"
    r"(?=[0-9]{4}|[a-v][0-9]{4}))?"
)
# The subject of "includes guidance" is a noun phrase of its own ("the procedure includes").
_G_OTHER_SUBJECT_RE = re.compile(
    r"\b(?:the|this|that|these|those|its|an?)[ \t]+(?:[a-z-]+[ \t]+){1,3}\Z"
    r"|\b(?:when|if|because|since|as|while|where|but|whereas|although|unless)\b"
)
_G_PASSIVE_BACK_GAP_RE = re.compile(r"[^,;:.]{0,60}")
_BILAT_NOT_RE = re.compile(r"(?:not|n't)[ \t]+(?:\w+[ \t]+)?\Z")

# Documentation statements.
_D_PERMANENT_RE = re.compile(
    r"(?:permanent(?:ly)?|hard[ \t-]copy)(?:[ \t]+(?:recorded|saved|stored|archived|retained))?"
    r"[ \t]+(?:[a-z]+[ \t]+)?(?:images?|record(?:ing|ed)?s?|documentation|copy|copies)\b"
)
_D_IMAGE_BEFORE_RE = re.compile(
    r"(?:sav(?:e|ed|es|ing)|stor(?:e|ed|es|ing)|retain(?:ed|s|ing)?|archiv(?:e|ed|es|ing)"
    r"|captur(?:e|ed|es|ing)|record(?:ed|s|ing)?|keep|kept|print(?:ed)?|no|requires?|required"
    r"|needs?|needed|representative)[ \t]+(?:an?[ \t]+|the[ \t]+|one[ \t]+|any[ \t]+)?"
    r"(?:[a-z]+[ \t]+)?\Z"
)
_D_IMAGE_AFTER_RE = re.compile(
    r"images?[ \t]+(?:(?:is|are|was|were)[ \t]+)?"
    r"(?:(?:must|should|needs?[ \t]+to|has[ \t]+to"
    r"|have[ \t]+to)[ \t]+)?(?:be[ \t]+)?(?:not[ \t]+)?(?:saved|stored|retained|archived"
    r"|recorded|kept|captured|needed|required|necessary)\b"
)
_D_PATENCY_RE = re.compile(r"patency\b|patent[ \t]+(?:vessel|vein|artery)s?\b")
_D_SITE_AFTER_RE = re.compile(
    r"sites?[ \t]+(?:was[ \t]+|were[ \t]+|are[ \t]+|is[ \t]+)?(?:evaluated|examined|assessed"
    r"|surveyed)\b"
)
_D_SITE_BEFORE_RE = re.compile(
    r"(?:evaluat\w*|assess\w*|examin\w*|survey\w*)[ \t]+(?:of[ \t]+)?(?:the[ \t]+)?"
    r"(?:all[ \t]+)?(?:potential[ \t]+|possible[ \t]+|candidate[ \t]+)?"
    r"(?:access[ \t]+|puncture[ \t]+|venous[ \t]+|vascular[ \t]+)?\Z"
)
_D_REALTIME_RE = re.compile(
    r"real[ \t-]?time[ \t]+(?:(?:ultrasound|us|sonographic)[ \t]+)?"
    r"(?:visuali[sz]ation[ \t]+(?:of[ \t]+)?(?:the[ \t]+)?)?(?:vascular[ \t]+)?needle"
    r"(?:[ \t]+(?:entry|insertion|placement|puncture))?\b"
)
_D_NEEDLE_RE = re.compile(r"needle[ \t]+entry\b")
_D_REPORT_RE = re.compile(
    r"(?:(?:written|separate|formal|signed|dictated)[ \t]+(?:[a-z]+[ \t]+)?reports?"
    r"|interpretation[ \t]+and[ \t]+report)\b"
)
_D_NECESSITY_RE = re.compile(r"medical(?:ly)?[ \t]+necess(?:ity|ary)\b")
_DOC_NEG_RE = re.compile(
    r"\b(?:no|without|never|optional|unnecessary|need[ \t]+not|not[ \t]+(?:[a-z]+[ \t]+)?"
    r"(?:need(?:ed)?|require[sd]?|necessary|mandatory|have[ \t]+to|be[ \t]+(?:saved|stored"
    r"|documented|retained|kept|recorded)|document(?:ed)?|sav(?:e|ed)|include[sd]?))\b"
    r"|n't[ \t]+(?:[a-z]+[ \t]+)?(?:need|require|have[ \t]+to|document|save|include)"
)
_DOC_NEG_AFTER_RE = re.compile(
    r"\b(?:not[ \t]+(?:needed|required|necessary|mandatory)|optional|unnecessary)\b"
)
_DOC_LIST_GAP_RE = re.compile(
    r"[\s,]*(?:and|or|nor)?[\s,]*(?:an?[ \t]+|the[ \t]+)?(?:[a-z-]+[ \t]+)?"
)

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ’", "abcdefghijklmnopqrstuvwxyz'")


# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------


# emit(kind, mention index, value, start, end): records one assertion for a code's group.
_Emit = Callable[[str, int, "bool | str", int, int], None]


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


# ---------------------------------------------------------------------------------------
# Claim lines as a coder keys them
# ---------------------------------------------------------------------------------------


class MalformedCode(ValueError):
    """A token that is not a code line; the message says what a code looks like."""

    retryable = False


_SHAPE_HELP = (
    "a CPT code is 5 digits (76942), a Category III code is 4 digits and T (0346T), "
    "a HCPCS code is a letter and 4 digits (G0389)"
)
_LINE_RE = re.compile(
    rf"(\+)?([0-9]{{5}}|[0-9]{{4}}[Tt]|[{_HCPCS_LETTERS}{_HCPCS_LETTERS.lower()}][0-9]{{4}})"
    r"((?:-[0-9A-Za-z]{1,3})*)(?:[xX×]([0-9]+))?"
)
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
    t = token.strip()
    m = _LINE_RE.fullmatch(t)
    if m is None:
        raise _not_a_code(token)
    plus, code, mods_s, units_s = m.groups()
    if code[0].isalpha():
        kind, code = CodeKind.HCPCS, code.upper()
    elif code[4] in "Tt":
        kind, code = CodeKind.CATEGORY_III, code[:4] + "T"
    else:
        kind = CodeKind.CPT
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
