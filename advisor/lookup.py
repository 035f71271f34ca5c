"""Instant code lookups for coders: everything the catalog knows about a code, no model."""

from __future__ import annotations

import re
from typing import Any

from knowledge.catalog import Catalog
from knowledge.schema import PairRelation

_NORMAL = re.compile(r"^\+?\s*([0-9]{5}|[0-9]{4}[Tt]|[A-Za-z][0-9]{4})$")


class MalformedCodeError(ValueError):
    """The input does not have the shape of a code."""

    retryable = False


def normalize_code(token: str) -> str:
    """'+76937' -> '76937', '0346t' -> '0346T', 'g0389' -> 'G0389'; else MalformedCodeError."""
    m = _NORMAL.match(token.strip())
    if not m:
        raise MalformedCodeError(
            f"'{token}' is not a code: a CPT code is 5 digits (76942), a Category III code is "
            "4 digits and T (0346T), a HCPCS code is a letter and 4 digits (G0389)."
        )
    return m.group(1).upper()


def _source_list(catalog: Catalog, keys: tuple[str, ...]) -> list[dict[str, str]]:
    out = []
    for k in keys:
        s = catalog.sources.get(k)
        out.append({"key": k, "where": s.where if s else ""})
    return out


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
    pairs.sort(key=lambda p: (p["relation"] != PairRelation.BUNDLED.value, p["other"]))
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


def format_lookup(rec: dict[str, Any]) -> str:
    """Plain-text rendering of a lookup record for the terminal and the UI."""
    code = rec["code"]
    if rec["status"] == "unknown":
        return f"{code}: not in the ruleset (unknown code). Nothing about it can be verified."
    lines = [f"{code}  {rec['label']}"]
    if rec["status"] == "deleted":
        repl = ", ".join(rec["replaced_by"]) or "no direct replacement"
        lines.append(f"  DELETED since {rec['deleted']}; use: {repl}")
    lines.append(f"  family: {rec['family_title']}   kind: {rec['kind']}")
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
    if rec["guidance_included"] is True:
        inc = ", ".join(rec["included_guidance"])
        lines.append("  imaging guidance: included" + (f" (do not add {inc})" if inc else ""))
    elif rec["guidance_included"] is False:
        lines.append("  imaging guidance: not included")
    ul = rec["unit_limit"]
    if ul:
        lines.append(f"  unit limit: {ul['value']} per {ul['per']} ({ul['adjudication']})"
                     + (f" - {ul['note']}" if ul["note"] else ""))
    lines.append(f"  26/TC: {rec['pc_tc']}   bilateral: {rec['bilateral']}")
    for d in rec["documentation"]:
        lines.append(f"  {d['title']}:")
        lines.extend(f"    - {e['label']}" for e in d["elements"])
    if rec["pairs"]:
        lines.append("  pair edits:")
        for p in rec["pairs"][:12]:
            mi = p["modifier_indicator"]
            lines.append(f"    - {p['column1']} / {p['column2']}: {p['relation']}"
                         + (f", modifier indicator {mi}" if mi is not None else "")
                         + f" [{p['confidence']}]")
        if len(rec["pairs"]) > 12:
            lines.append(f"    ... {len(rec['pairs']) - 12} more (use --json)")
    if rec["notes"]:
        lines.append(f"  notes: {rec['notes']}")
    srcs = ", ".join(s["key"] for s in rec["sources"])
    review = "  NEEDS REVIEW (weakly sourced)" if rec["needs_review"] else ""
    lines.append(f"  sources: {srcs}   confidence: {rec['confidence']}{review}")
    return "\n".join(lines)
