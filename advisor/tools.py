"""The deterministic tools behind the web app's tabs and API: code lookup, claim check and
note audit (the codes a model suggests for a note are advisor.suggest). The app only wires
them to its widgets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from advisor.lookup import lookup, normalize_code
from advisor.ui import codes_in_text, parse_code_list

if TYPE_CHECKING:
    from advisor.batch import ClaimResult
    from guardrails.audit import NoteAudit
    from guardrails.repair import Outcome
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)


def lookup_codes(text: str, catalog: Catalog) -> list[dict[str, Any]]:
    """Lookup records for the codes typed ('76937, 20611 +76942'); MalformedCode on a bad one."""
    codes = [normalize_code(t) for t in parse_code_list(text or "")]
    if not codes:
        raise ValueError("Type one or more codes, e.g. 76937 or 20611 76942.")
    return [lookup(c, catalog) for c in dict.fromkeys(codes)]


def check_keyed(text: str, catalog: Catalog) -> Outcome:
    """Check one claim as keyed ('20610 76942', '93971-50', '37253x6', '20610+76942')."""
    from advisor.batch import split_keyed
    from guardrails import check_claim

    outcome = check_claim(split_keyed(text or ""), catalog)
    if not outcome.first.draft.codes:
        raise ValueError("Type claim lines, e.g. 20610 76942, 93971-50 or 37253x6.")
    return outcome


def check_many(text: str, catalog: Catalog) -> list[ClaimResult]:
    """Each non-blank line of the claim box checked as its own claim (one line = one claim:
    a second encounter's codes are never read as the first one's)."""
    from advisor.batch import check_all, read_plain

    results = list(check_all(read_plain((text or "").splitlines()), catalog))
    if not results:
        raise ValueError("Type claim lines, e.g. 20610 76942, 93971-50 or 37253x6.")
    return results


def audit(note: str, codes: str, catalog: Catalog) -> NoteAudit:
    """Audit a note for the codes given (or, when none are given, the codes it names)."""
    from guardrails.audit import audit_note

    if not (note or "").strip():
        raise ValueError("Paste a de-identified procedure or point-of-care note first.")
    chosen = [normalize_code(t) for t in parse_code_list(codes or "")]
    chosen = chosen or codes_in_text(note, catalog)
    if not chosen:
        raise ValueError("Pick the codes to audit (e.g. 76937), or press 'Suggest codes'.")
    return audit_note(note, chosen, catalog)

