"""Instant code lookups for coders: everything the catalog knows about a code, no model."""

from __future__ import annotations

from typing import Any

from knowledge.catalog import Catalog
from knowledge.codes import MalformedCode, normalize_code
from knowledge.schema import PairRelation

# The code grammar's names, kept here for callers of the lookup.
MalformedCodeError = MalformedCode
__all__ = ["MalformedCodeError", "format_lookup", "lookup", "normalize_code"]


def _source_list(catalog: Catalog, keys: tuple[str, ...]) -> list[dict[str, str]]:
    out = []
    for k in keys:
        s = catalog.sources.get(k)
        out.append({"key": k, "where": s.where if s else ""})
    return out


def _pairs(code: str, entry: Any, ap: Any, catalog: Catalog) -> list[dict[str, Any]]:
    """The pair edits of a code, the most asked first."""
    pairs = []
    for edit in catalog.pairs_for(code):
        other = edit.column2 if edit.column1 == code else edit.column1
        pairs.append({
            "column1": edit.column1, "column2": edit.column2, "other": other,
            "relation": edit.relation.value,
            "modifier_indicator": (int(edit.modifier_indicator)
                                   if edit.modifier_indicator is not None else None),
            "rationale": edit.rationale, "allow_with": edit.allow_with,
            "fix": (list(edit.replacement) if edit.replacement
                    else ([edit.column1] if edit.drop_column2 else None)),
            "rule": edit.rule_id, "origin": edit.origin,
            "sources": list(edit.sources), "confidence": edit.confidence.value,
        })
    # The pairs most asked first: those with a replacement (the usual mistake), then the code
    # with its primaries (an add-on), with the guidance it includes, or with the procedures
    # that include it (76942 with 20611); then bundled before the rest.
    asked = (set(ap.primaries) if ap else set()) | set(entry.included_guidance) | {
        c for c, e in catalog.codes.items() if code in e.included_guidance}
    for p in pairs:
        p["replaced"] = bool(p["fix"]) and p["fix"] != [p["column1"]]
        p["most_asked"] = p["other"] in asked or p["replaced"]
    # A pair with a replacement code (20610 + 76942 -> 20611: the usual mistake) leads.
    pairs.sort(key=lambda p: (not p["replaced"], not p["most_asked"],
                              p["relation"] != PairRelation.BUNDLED.value, p["other"]))
    return pairs


def lookup(code: str, catalog: Catalog) -> dict[str, Any]:
    """The stable lookup record for one (normalized) code."""
    entry = catalog.get(code)
    status = catalog.status(code)
    if entry is None:
        return {
            "code": code, "label": None, "family": None, "extent": None, "counterpart": None,
            "add_on": None, "primaries": [], "guidance_included": None, "unit_limit": None,
            "documentation": [], "pairs": [], "sources": [], "confidence": None,
            "status": status,
        }
    ap = catalog.addon_primaries(code)
    limit = catalog.unit_limit(code)
    docs = []
    for set_id in entry.documentation:
        es = catalog.element_sets[set_id]
        docs.append({"set": es.id, "title": es.title,
                     "elements": [{"id": e.id, "label": e.label} for e in es.elements],
                     "sources": list(es.sources), "confidence": es.confidence.value})
    if entry.complete_elements:
        es = catalog.element_sets[entry.complete_elements]
        docs.append({"set": es.id, "title": es.title,
                     "elements": [{"id": e.id, "label": e.label} for e in es.elements],
                     "sources": list(es.sources), "confidence": es.confidence.value})
    pairs = _pairs(code, entry, ap, catalog)
    return {
        "code": entry.code,
        "label": entry.label,
        "family": entry.family,
        "family_title": catalog.families[entry.family].title,
        "kind": entry.kind.value,
        "extent": entry.extent.value,
        "counterpart": entry.counterpart,
        "add_on": catalog.is_add_on(code),
        "primaries": sorted(ap.primaries) if ap else [],
        "primaries_exhaustive": ap.exhaustive if ap else None,
        "excluded_primaries": sorted(ap.excluded) if ap else [],
        "primaries_note": entry.primaries_note,
        "guidance_included": entry.guidance_included,
        "included_guidance": list(entry.included_guidance),
        "pc_tc": entry.pc_tc.value,
        "bilateral": entry.bilateral.value,
        "unit_limit": (
            {"value": limit.value, "per": limit.per, "adjudication": limit.adjudication.value,
             "note": limit.note, "sources": list(limit.sources),
             "confidence": limit.confidence.value}
            if limit else None
        ),
        "documentation": docs,
        "pairs": pairs,
        "notes": entry.notes,
        "deleted": entry.deleted.isoformat() if entry.deleted else None,
        "replaced_by": list(entry.replaced_by),
        "sources": _source_list(catalog, entry.sources),
        "confidence": entry.confidence.value,
        "needs_review": entry.confidence.value == "low",
        "status": status,
        "ruleset": catalog.ruleset,
    }


# Lookup values in words (the JSON keeps the enum values).
WORDS: dict[str, dict[str, str]] = {
    "kind": {"diagnostic": "diagnostic exam", "screening": "screening exam",
             "guidance": "imaging guidance", "procedure": "procedure",
             "unlisted": "unlisted procedure"},
    "pc_tc": {"split": "26/TC split applies (modifier 26 or TC allowed)",
              "none": "no 26/TC split (no modifier 26 or TC)", "unknown": "26/TC split unknown"},
    "bilateral": {"modifier_50": "modifier 50 allowed (or RT/LT lines, by payer)",
                  "each_side": "each side paid in full (-50 or RT/LT lines, by payer)",
                  "inherent": "covers both sides already (no modifier 50)",
                  "not_applicable": "not applicable (not a sided service; no modifier 50)",
                  "unknown": "bilateral rule unknown"},
    "adjudication": {"line": "per claim line (MAI 1)", "date_policy": "per day, policy (MAI 2)",
                     "date_clinical": "per day, clinical (MAI 3)",
                     "encounter_policy": "per encounter (NCCI policy)",
                     "unknown": "how it is applied is unknown"},
    "relation": {"bundled": "bundled (not billed together)", "allowed": "allowed together",
                 "review": "disputed (review)"},
}


def in_words(field: str, value: Any) -> str:
    """A lookup value in words ('modifier_50' -> 'modifier 50 allowed ...')."""
    text = str(value if value is not None else "unknown")
    return WORDS.get(field, {}).get(text, text.replace("_", " "))


def guidance_words(rec: dict[str, Any]) -> str | None:
    """What the record says of imaging guidance, or None when there is nothing to say (a
    guidance code itself, or a code the ruleset holds nothing about on this)."""
    if rec.get("kind") == "guidance":
        return None
    if rec.get("guidance_included") is True:
        inc = ", ".join(rec.get("included_guidance") or [])
        return "included" + (f" (do not add {inc})" if inc else "")
    if rec.get("guidance_included") is False:
        return "not included"
    return None


PAIRS_SHOWN = 12  # pair edits shown in text unless --all


def format_lookup(rec: dict[str, Any], *, all_pairs: bool = False) -> str:
    """Plain-text rendering of a lookup record for the terminal and the UI."""
    code = rec["code"]
    if rec["status"] == "unknown":
        return f"{code}: not in the ruleset (unknown code). Nothing about it can be verified."
    lines = [f"{code}  {rec['label']}"]
    if rec["status"] == "deleted":
        repl = ", ".join(rec["replaced_by"]) or "no direct replacement"
        lines.append(f"  DELETED since {rec['deleted']}; use: {repl}")
    lines.append(f"  family: {rec['family_title']}   kind: {in_words('kind', rec['kind'])}")
    ext = rec["extent"]
    if ext == "single":
        lines.append("  extent: single code (no complete/limited version)")
    else:
        lines.append(f"  extent: {ext}" + (f"; counterpart {rec['counterpart']}"
                                           if rec["counterpart"] else ""))
    if rec["add_on"]:
        prim = ", ".join(rec["primaries"]) or "(no fixed list)"
        lines.append(f"  add-on: yes; primaries: {prim}"
                     + ("" if rec["primaries_exhaustive"] else " (list not exhaustive)"))
        if rec["excluded_primaries"]:
            lines.append(f"  never with: {', '.join(rec['excluded_primaries'])}")
    else:
        lines.append("  add-on: no")
    guidance = guidance_words(rec)
    if guidance:
        lines.append(f"  imaging guidance: {guidance}")
    ul = rec["unit_limit"]
    if ul:
        lines.append(f"  unit limit: {ul['value']} per {ul['per']}, "
                     f"{in_words('adjudication', ul['adjudication'])}"
                     + (f" - {ul['note']}" if ul["note"] else ""))
    lines.append(f"  26/TC: {in_words('pc_tc', rec['pc_tc'])}")
    lines.append(f"  bilateral: {in_words('bilateral', rec['bilateral'])}")
    for d in rec["documentation"]:
        lines.append(f"  {d['title']}:")
        lines.extend(f"    - {e['label']}" for e in d["elements"])
    if rec["pairs"]:
        lines.append("  pair edits:")
        shown = rec["pairs"] if all_pairs else rec["pairs"][:PAIRS_SHOWN]
        for p in shown:
            mi = p["modifier_indicator"]
            lines.append(f"    - {p['column1']} / {p['column2']}: "
                         f"{in_words('relation', p['relation'])}"
                         + (f", modifier indicator {mi}" if mi is not None else "")
                         + f" [{p['confidence']}]")
        if len(rec["pairs"]) > len(shown):
            lines.append(f"    ... {len(rec['pairs']) - len(shown)} more (use --all to show "
                         "them, or --json)")
    if rec["notes"]:
        lines.append(f"  notes: {rec['notes']}")
    srcs = ", ".join(s["key"] for s in rec["sources"])
    review = "  NEEDS REVIEW (weakly sourced)" if rec["needs_review"] else ""
    lines.append(f"  sources: {srcs}   confidence: {rec['confidence']}{review}")
    return "\n".join(lines)
