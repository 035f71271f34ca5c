"""Cross-references of the question vocabulary: concepts name concepts that exist, of the
right kind, and so do the codes' `describes` blocks (run by the catalog build)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge.loader import Located, line_of

if TYPE_CHECKING:
    from knowledge.catalog import CodesOrigin
    from knowledge.schema import CodesFile
    from knowledge.vocab_schema import VocabularyFile


# Which concept kinds each `describes` list may name.
_DESCRIBES_KINDS: dict[str, frozenset[str]] = {
    "sites": frozenset({"site"}),
    "exclude_sites": frozenset({"site"}),
    "actions": frozenset({"action"}),
    "exams": frozenset({"exam"}),
    "devices": frozenset({"device"}),
    "approach": frozenset({"approach"}),
}


def check_vocabulary(
    vocab: VocabularyFile, codes_file: CodesFile, nodes: dict[str, Located],
    origin: CodesOrigin,
) -> list[str]:
    """Concepts reference concepts that exist, of the right kind; so do codes' `describes`."""
    problems: list[str] = []

    def where(fname: str, *loc: int | str) -> str:
        located = nodes[fname]
        line = line_of(located, *loc)
        return f"{located.path}:{line}" if line else str(located.path)

    kinds: dict[str, str] = {}
    for i, c in enumerate(vocab.concepts):
        if c.id in kinds:
            problems.append(f"{where('vocabulary', 'concepts', i)}: duplicate concept {c.id}")
        kinds[c.id] = c.kind
    for i, c in enumerate(vocab.concepts):
        for field_name in ("parents", "implies"):
            for ref in getattr(c, field_name):
                if ref not in kinds:
                    problems.append(
                        f"{where('vocabulary', 'concepts', i, field_name)}: no concept {ref}"
                    )
        for ref in c.parents:
            if ref in kinds and kinds[ref] != c.kind:
                problems.append(
                    f"{where('vocabulary', 'concepts', i, 'parents')}: parent {ref} is a "
                    f"{kinds[ref]}, not a {c.kind}"
                )
        for j, pair in enumerate(c.formed_by):
            first = {"action": ("action", "cue"), "service": ("cue",)}.get(c.kind, ("site",))
            second = {"action": ("site", "cue"), "service": ("cue",)}.get(c.kind,
                                                                         ("site", "patient"))
            if c.kind not in ("action", "site", "service") or len(pair) != 2 or kinds.get(
                    pair[0]) not in first or kinds.get(pair[1]) not in second:
                problems.append(f"{where('vocabulary', 'concepts', i, 'formed_by')}: pair "
                                f"{j} must name an existing action and site of an action (or "
                                "a cue that names the action beside the site; the second may "
                                "be a cue of the means), two sites (or a site and a patient) of a "
                                "site, or two cues of a service")
        for other in c.may_be:
            if c.kind != "action" or kinds.get(other) != c.kind:
                problems.append(f"{where('vocabulary', 'concepts', i, 'may_be')}: {other} is "
                                f"not an action, or {c.id} is not one")
        if c.negates is not None and c.negates not in kinds:
            problems.append(f"{where('vocabulary', 'concepts', i, 'negates')}: no concept "
                            f"{c.negates}")
    for i, entry in enumerate(codes_file.codes):
        d = entry.describes
        if d is None:
            continue
        fkey, j = origin.codes[i]
        loc = ("codes", j, "describes")
        for field_name, allowed in _DESCRIBES_KINDS.items():
            for ref in getattr(d, field_name):
                if ref == "any" and field_name == "sites":
                    continue
                kind = kinds.get(ref)
                if kind is None:
                    problems.append(f"{where(fkey, *loc, field_name)}: no concept {ref}")
                elif kind not in allowed:
                    problems.append(
                        f"{where(fkey, *loc, field_name)}: {ref} is a {kind} concept"
                    )
        for ref in (*d.requires, *d.contradicted_by, *d.features, *d.requires_absent,
                    *d.any_age_with):
            if ref not in kinds:
                problems.append(f"{where(fkey, *loc)}: no concept {ref}")
    return problems
