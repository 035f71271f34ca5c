"""Note audit: ordinary phrasings of each documentation element, affirmed and denied.

The table is tests/fixtures/note_phrasings.yaml. Every sentence is audited against every
element set of the ruleset that holds the element: a `present` phrasing must read as
present, a `negated` one as stated not done (never as present).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from guardrails.audit import ElementStatus, audit_element
from knowledge.catalog import load_catalog

CAT = load_catalog()
TABLE = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "fixtures" / "note_phrasings.yaml").read_text()
)


def _elements(element_id: str) -> list[tuple[str, object]]:
    found = [
        (es.id, e)
        for es in CAT.element_sets.values()
        for e in es.elements
        if e.id == element_id
    ]
    assert found, f"no element set holds {element_id}"
    return found


CASES = [
    pytest.param(element, kind, sentence, set_id, el, id=f"{set_id}.{element}.{kind}.{i}")
    for element, forms in TABLE.items()
    for kind in ("present", "negated")
    for i, sentence in enumerate(forms.get(kind, ()))
    for set_id, el in _elements(element)
]


@pytest.mark.parametrize(("element", "kind", "sentence", "set_id", "el"), CASES)
def test_phrasing_is_read_as_written(
    element: str, kind: str, sentence: str, set_id: str, el: object
) -> None:
    result = audit_element(sentence, el)  # type: ignore[arg-type]
    want = ElementStatus.PRESENT if kind == "present" else ElementStatus.NEGATED
    assert result.status is want, f"{set_id}/{element}: {sentence!r} read as {result.status}"


def test_the_table_covers_every_documentation_element_of_a_procedure() -> None:
    procedure_sets = ("vascular_access_guidance", "needle_guidance", "guided_joint")
    ids = {e.id for s in procedure_sets for e in CAT.element_sets[s].elements}
    assert ids <= set(TABLE)


def test_the_issue_note_documents_sites_evaluated() -> None:
    from guardrails.audit import audit_note

    note = ("Procedure: right internal jugular central venous catheter.\n"
            "The right and left IJ were scanned with ultrasound.\n"
            "Under real-time ultrasound guidance the needle entry into the vein was visualized.\n"
            "The vein was patent and compressible. An image was saved to PACS.")
    audit = audit_note(note, ["76937"], CAT).for_code("76937")
    assert audit is not None
    assert audit.documented is True, audit.message
