"""What kind of question this is: only codes, a follow-up, or outside ultrasound coding."""

from __future__ import annotations

import itertools
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knowledge.codes import CODE_LIKE

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

_VERB_RE = re.compile(r"^\s*(?:look\s*up|lookup|check|verify|scrub)\b\s*:?\s*", re.IGNORECASE)
# Tokens someone keying codes types: a code (or what may be meant as one: the lookup says
# why it is not), modifiers, units.
_CLAIM_TOKEN_RE = re.compile(
    rf"^(?:\+?(?:{CODE_LIKE})(?:-[A-Za-z0-9]{{2}})*(?:[xX]\d+)?"
    r"|[xX]\d+|-[A-Za-z0-9]{2})$"
)
_SEPARATORS = frozenset({"+", "and", "&", "with", "plus"})
_US_RE = re.compile(
    r"\b(?:ultrasound\w*|ultrasonograph\w*|sonograph\w*|sonogram\w*|us|usg|doppler|duplex|"
    r"echo\w*|tte|tee|ivus|pocus|fast|elastograph\w*|transvaginal|transrectal|"
    r"obstetric\w*|fetal)\b",
    re.IGNORECASE,
)
_OTHER_MODALITY_RE = re.compile(
    r"\b(?:mri|mra|magnetic\s+resonance|ct|cta|computed\s+tomography|cat\s+scan|x-?rays?|"
    r"radiograph\w*|pet|mammogra\w*|nuclear|spect|dexa|colonoscop\w*|endoscop\w*)\b",
    re.IGNORECASE,
)
# Image guidance of any modality: the ruleset holds the CT, fluoroscopic and MR guidance
# codes and the procedures that include them, so "CT-guided FNA" is in scope; "knee MRI" is not.
_GUIDANCE_RE = re.compile(r"\bguid(?:ed|ance|ing)\b|\bfluoro\w*", re.IGNORECASE)
_FOLLOW_UP_RE = re.compile(
    r"^\s*(?:and|also|what\s+about|how\s+about|what\s+if|if|same|but|or|then|plus|now|"
    r"actually|correction|instead|wait|sorry|okay\s+so|ok\s+so)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z]{4,}")
_GENERIC = frozenset(
    "with without each code codes bill billing billed report reported procedure service "
    "services first additional other than more include includes including when what which "
    "this that from into only same single level levels".split()
)


def parse_code_query(text: str) -> list[str] | None:
    """Claim tokens if the question is only codes ('20610 76942', 'check 93971-50'), else None."""
    rest = _VERB_RE.sub("", text, count=1)
    tokens = [t for t in re.split(r"[\s,;]+", rest.strip()) if t]
    tokens = [t for t in tokens if t.lower() not in _SEPARATORS]
    if not tokens or not all(_CLAIM_TOKEN_RE.match(t) for t in tokens):
        return None
    if not any(re.match(r"^\+?\w{5}", t) for t in tokens):
        return None
    return tokens


def vocabulary(catalog: Catalog) -> frozenset[str]:
    """Words of the catalog's labels and family titles: a question using none is off topic."""
    words: set[str] = set()
    for entry in catalog.codes.values():
        words.update(_WORD_RE.findall(entry.label.lower()))
    for fam in catalog.families.values():
        words.update(_WORD_RE.findall(str(getattr(fam, "title", "")).lower()))
    return frozenset(words - _GENERIC)


def described_words(catalog: Catalog) -> frozenset[str]:
    """Words that describe a service, for reading a question that names codes: the labels'
    words and the question-reading vocabulary's words for sites, procedures and patients."""
    from guardrails.question.vocab import vocabulary_of

    terms = vocabulary_of(catalog).terms
    said = {w for t in terms for w in _WORD_RE.findall(t)}
    return vocabulary(catalog) | (said - _GENERIC)


def is_follow_up(question: str) -> bool:
    """A short or connective question that leans on the previous turn ('and if both legs?')."""
    return bool(_FOLLOW_UP_RE.match(question)) or len(question.split()) <= 5


# Codes named as choices ("20610 or 20611?", "20611 instead of 20610"): no claim is described.
_ALTERNATIVES_RE = re.compile(
    r"\b(?:or|vs|versus|instead\s+of|rather\s+than|either|replace[sd]?)\b", re.IGNORECASE
)
# What lies between two codes of one claim: "20610 and 76942", "20610 + 76942", "with".
_JOINED_RE = re.compile(
    r"^[\s,;&+]*(?:(?:and|plus|with|together|along|alongside|beside|on\s+top\s+of|also|be|"
    r"billed|reported|coded|x\s*\d+|units?|-[A-Za-z0-9]{2})[\s,;&+]*)*$",
    re.IGNORECASE,
)
# Words of a billing question that say nothing about the service itself.
_CHATTER = frozenset({"right", "medicare", "medicaid", "payer", "payers", "commercial"})


@dataclass(frozen=True)
class ClaimQuestion:
    """The claim a question describes: the codes it names as one claim, and its context."""

    tokens: tuple[str, ...]  # claim tokens as a coder keys them: '93971-50', '37253x6'
    context: str  # the question when it describes the service, else ''


def _claim_token(m: Any) -> str:
    mods = "".join(f"-{x}" for x in m.modifiers)
    units = f"x{m.units}" if m.units and m.units != 1 else ""
    return f"{'+' if m.add_on_mark else ''}{m.code}{mods}{units}"


def claim_in_question(
    text: str, described: AbstractSet[str] = frozenset()
) -> ClaimQuestion | None:
    """The claim a question describes by its codes, or None.

    "Can I bill 20610 and 76942 together?", "Can I bill 20610 + 76942?" and "Is 76937 an
    add-on?" describe a claim (the codes named, as keyed) that the checker answers at once.
    Codes named as choices ("20610 or 20611?") describe none. A question that also describes
    the service (words of ``described``: "knee injection under ultrasound: 20610 plus
    76942?") is handed to the checker as context, so its readings (site, age, guidance used)
    apply; with one code and a described service the question is about which code fits, and
    the drafting flow answers it (None).
    """
    from guardrails.claims import Polarity, extract

    claims = extract(text)
    named = [m for m in claims.mentions if m.polarity is not Polarity.WARNED]
    if not named:
        return None
    for a, b in itertools.pairwise(claims.mentions):
        if _ALTERNATIVES_RE.search(text[a.end : b.start]):
            return None
    rest = text
    for m in reversed(claims.mentions):
        rest = rest[: m.start] + " " + rest[m.end :]
    words = set(_WORD_RE.findall(rest.lower())) - _CHATTER
    is_described = bool(_US_RE.search(rest)) or bool(words & described)
    joined = len(named) >= 2 and all(
        _JOINED_RE.match(text[a.end : b.start]) for a, b in itertools.pairwise(named)
    )
    if is_described and not joined:
        return None
    tokens = tuple(dict.fromkeys(_claim_token(m) for m in named))
    return ClaimQuestion(tokens=tokens, context=text if is_described else "")


def names_codes(text: str) -> bool:
    """True when the text names a code (as the claims reader finds codes)."""
    from guardrails.claims import extract

    return bool(extract(text).mentions)


# Function words: a question is read as English unless it holds clearly more of another
# language's than of English's. Words that are also English or medical abbreviations
# (la: left atrium, de: de Quervain, do, as) count for neither.
_ENGLISH_WORDS = frozenset(
    "the an and or of for with to in on at is are was were be been do does did can could "
    "should would will what which how when where why who i we my our you your it this that "
    "these those there not no yes bill code codes report".split()
)
_FOREIGN_WORDS = frozenset(
    # Spanish
    "el los las del que y en un una para con por es cómo como qué puedo se al lo su "
    "ecografía ecografia facturar código codigo rodilla "
    # French
    "le les des du et est pour avec une je quel quelle comment dans sur au aux "
    "échographie echographie genou "
    # German
    "der die das und ist mit für fur ein eine wie ich kann welche welcher nicht auf "
    "abrechnen ultraschall knie "
    # Portuguese and Italian
    "os com uma não nao posso il gli della delle per che sono cosa quale".split()
)
_LETTERS_RE = re.compile(r"[^\W\d_]+")


def is_english(text: str) -> bool:
    """False when the text is plainly in another language (mostly another script, or more
    of another language's function words than of English's); short or code-only text is
    English."""
    letters = [ch for ch in text if ch.isalpha()]
    if letters:
        latin = sum(1 for ch in letters if ch.isascii() or "\u00c0" <= ch <= "\u024f")
        if latin / len(letters) < 0.5:
            return False
    words = [w.lower() for w in _LETTERS_RE.findall(text)]
    english = sum(w in _ENGLISH_WORDS for w in words)
    foreign = sum(w in _FOREIGN_WORDS for w in words)
    return not (foreign >= 2 and foreign > english)



def out_of_scope(text: str, vocabulary: frozenset[str], candidates: list[Any],
                 retrieval_failed: bool) -> bool:
    """True when the question is not about ultrasound coding (so nothing is guessed).

    A question naming a code is about coding it, whatever else it says.
    """
    if names_codes(text):
        return False
    has_us = bool(_US_RE.search(text))
    if _OTHER_MODALITY_RE.search(text) and not has_us and not _GUIDANCE_RE.search(text):
        return True
    words = set(_WORD_RE.findall(text.lower()))
    if not has_us and not (words & vocabulary):
        return True
    return not candidates and not retrieval_failed
