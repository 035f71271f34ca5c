"""The most specific of the codes that fit a question: CPT reports the code that most
exactly describes the service (AMA_CPT_descriptor), so a code another fitting code describes
more exactly is not offered as fitting beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardrails.question.frame import Frame
from guardrails.question.vocab import Vocabulary

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


def most_specific(vocab: Vocabulary, catalog: Catalog, frame: Frame, codes: tuple[str, ...]
                  ) -> tuple[str, ...]:
    """``codes`` less each one another code of the same kind of service describes more
    exactly: the other covers every affirmed fact this one covers, and names more of them
    by its own concept (shear wave elastography of the liver is 76981, not also the limited
    abdomen 76705, whose study is ultrasound in general)."""
    facts = [f for f in frame.facts if f.affirmed
             and f.kind in ("exam", "action", "device", "site", "approach", "feature")]
    cover: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
    for c in codes:
        d = catalog.codes[c].describes
        assert d is not None
        # what the code names: its study, action, device, sites, approach, the features it
        # is with and the facts it requires (the NT measurement of 76813)
        own = (*d.exams, *d.actions, *d.devices, *d.sites, *d.approach, *d.requires,
               *(k for k, v in d.features.items() if v == "with"))
        anywhere = "any" in d.sites  # every site, none by name
        cover[c] = (
            frozenset(i for i, f in enumerate(facts)
                      if (anywhere and f.kind == "site")
                      or any(vocab.is_a(f.concept, y) for y in own)),
            frozenset(i for i, f in enumerate(facts) if f.concept in own))
    kind = {c: catalog.codes[c].describes.service  # type: ignore[union-attr]
            for c in codes}
    return tuple(c for c in codes if not any(
        o != c and kind[o] == kind[c] and cover[c][0] <= cover[o][0]
        and cover[c][1] < cover[o][1] for o in codes))

