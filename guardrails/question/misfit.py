"""One way a code does not fit a question, and the words that say it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.schema import CodeEntry, Confidence

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


@dataclass(frozen=True, slots=True)
class Misfit:
    """One way a code does not fit the question."""

    code: str
    dimension: str  # site, approach, guidance, action, exam, device, feature, patient, ...
    contradiction: bool  # True: the question affirms the opposite; False: it is silent
    message: str
    said: str = ""  # the question's words behind a contradiction
    alternatives: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    confidence: Confidence = Confidence.MEDIUM
    need: str = ""  # the concept left unsaid, where a dimension has several ('requires')


def _words(concepts: Iterable[str]) -> str:
    items = [c.replace("_", " ") for c in concepts]
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


_VESSEL_WORDS = frozenset({"vessel", "artery", "vein"})
_BAND = {"under_5": "under 5", "5_and_older": "5 or older"}


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo} to {hi}" if lo != hi else str(lo)
    if lo is not None:
        return f"{lo} or more"
    return f"at most {hi}"


# Rule sources for the reading rules that are policy, not code descriptions: the imaging of
# a guided procedure is its guidance, and a diagnostic study beside it needs its own
# indication (NCCI Policy Manual Ch. IX).
NCCI_DIAGNOSTIC_WITH_GUIDANCE = ("NCCI_IX_H9_medlearn2018", "NCCI_IX_H9_priority")

# The guidance concept that names each modality.
GUIDANCE_OF = {
    "ultrasound": "guidance_ultrasound",
    "fluoroscopy": "guidance_fluoroscopy",
    "ct": "guidance_ct",
    "mr": "guidance_mr",
    # stereotactic (mammographic) guidance of a breast procedure: not ultrasound (19081 ff.)
    "mammography": "guidance_stereotactic",
}
_ALL_IMAGING = frozenset({"ultrasound", "fluoroscopy", "ct", "mr"})


def modalities_of(guidance: Iterable[str]) -> set[str]:
    """The imaging modalities a code's included guidance covers ('imaging': all of them)."""
    out: set[str] = set()
    for g in guidance:
        if g == "imaging":
            out |= _ALL_IMAGING
        elif g != "none":
            out.add(g)
    return out


def included_modalities(entry: CodeEntry, catalog: Catalog) -> set[str]:
    """The imaging a procedure code includes: its description's guidance, and the modality
    of each guidance code its data lists as included (33016 lists 76942, 77002 ...)."""
    out = modalities_of(entry.describes.guidance) if entry.describes is not None else set()
    for g in entry.included_guidance:
        ge = catalog.get(g)
        if ge is None:
            continue
        gd = ge.describes
        m = gd.guidance[0] if gd is not None and gd.guidance else ge.modality
        if m is not None:
            out |= modalities_of((m,))
    return out
