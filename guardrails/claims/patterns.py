"""The claims extractor's patterns and cue words, compiled once.

Each pattern is either anchored (used with .match at a known position) or starts with a
character class, so the regex engine can skip ahead quickly; none nests quantifiers. Code
shapes and modifiers come from the code grammar (:mod:`knowledge.codes`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from knowledge.codes import HCPCS_LETTERS as _HCPCS_LETTERS
from knowledge.codes import MODIFIER_PATTERN as _MOD_ALT

# The start of a code in lower-cased text, for cues that look ahead to a code.
_HCPCS_LOW = _HCPCS_LETTERS.lower()

# The lookahead lets units follow straight on ("37253x6"); everything else that touches the
# code must be a non-alphanumeric character.
# One leading character class (not an alternation) lets the regex engine skip ahead fast;
# the exact shape (HCPCS ends in a digit) is checked in Python.
_CODE_RE = re.compile(rf"[0-9{_HCPCS_LETTERS}][0-9]{{3}}[0-9Tt](?=[^0-9A-Za-z]|[xX][ \t]?[0-9]|\Z)")
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
    r"[;(),\-–—](?:(?<=,)((?=[ \t]*(?:(?:and|or|and/or|&)[ \t]+)?\+?(?:[0-9]{4}|"
    rf"[{_HCPCS_LOW}][0-9]{{4}})))?"
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
    r"(?:[0-9]{4}|"
    rf"[{_HCPCS_LOW}][0-9]{{4}})"
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
    r"(?=[0-9]{4}|"
    rf"[{_HCPCS_LOW}][0-9]{{4}}))?"
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
