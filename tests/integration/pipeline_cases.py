"""Questions with verified expected codes, shared by the real-model pipeline tests."""

from __future__ import annotations

from collections.abc import Callable

from advisor.pipeline import Advisor, Answer

OK = {"verified", "corrected"}

# (question, codes that must end verified or corrected, codes that must never be verified)
CASES: list[tuple[str, set[str], set[str]]] = [
    ("What do I bill for an ultrasound-guided knee injection?", {"20611"}, {"20610", "76942"}),
    ("Central venous catheter placement (non-tunneled, age 5 or older) with ultrasound "
     "guidance", {"36556", "76937"}, {"76942"}),
    ("PICC line placement with ultrasound guidance and imaging, what codes?", {"36573"},
     {"76937", "36569"}),
    ("FAST exam in the emergency department: what do I code?", {"93308", "76705"}, set()),
    ("Complete abdominal ultrasound", {"76700"}, {"76705"}),
    ("Thoracentesis with ultrasound guidance", {"32555"}, {"32554", "76942"}),
    ("Ultrasound-guided fine needle aspiration of a thyroid nodule, first lesion", {"10005"},
     {"10021", "76942"}),
    ("Bilateral lower extremity venous duplex, complete", {"93970"}, {"93971"}),
    ("Complete transthoracic echocardiogram with spectral and color Doppler", {"93306"},
     {"93307", "93320", "93325"}),
    ("IVUS of one iliac vessel during angiography, with the catheter placed in the aorta",
     {"37252"}, set()),
    ("PICC line placed with ultrasound guidance in a 60-year-old", {"36573"},
     {"76937", "36572"}),
    ("Paracentesis with ultrasound guidance", {"49083"}, {"49082", "76942"}),
]
CASE_IDS = ["knee", "cvc", "picc", "fast", "abdomen", "thoracentesis", "thyroid-fna",
            "venous-duplex", "tte", "ivus", "picc-adult", "paracentesis"]
# The bar for each backend: at least this many cases end with their expected codes.
MIN_HITS = 10


def outcome(answer: Answer, expected: set[str], forbidden: set[str]) -> tuple[bool, bool, str]:
    """(hit, honest, line to print) for one answer."""
    got = {c.code: c.status.value for c in answer.codes}
    hit = all(got.get(c) in OK for c in expected)
    wrongly_verified = {c for c in forbidden if got.get(c) in OK}
    honest = not wrongly_verified and all(c.status.value for c in answer.codes)
    shown = " ".join(f"{c}:{s}" for c, s in got.items()) or "-"
    line = (f"{'HIT ' if hit else 'MISS'} {answer.timings_ms.get('total', 0) / 1000:5.1f}s "
            f"calls={answer.model_calls} {answer.path:8} {shown}"
            + (f" removed={[c.code for c in answer.removed]}" if answer.removed else "")
            + (f" FORBIDDEN VERIFIED {sorted(wrongly_verified)}" if wrongly_verified else ""))
    return hit, honest, line


def run_cases(
    advisor: Advisor, check_answer: Callable[[Answer], None] | None = None
) -> tuple[int, list[str], list[str]]:
    """Ask every case: (hits, ids of cases with a forbidden code verified, lines to print).

    Every answer's text must name each code of its table (each code carries a verdict);
    ``check_answer`` adds a backend's own assertions.
    """
    hits = 0
    dishonest: list[str] = []
    lines: list[str] = []
    for (question, expected, forbidden), case_id in zip(CASES, CASE_IDS, strict=True):
        answer = advisor.ask(question)
        hit, honest, line = outcome(answer, expected, forbidden)
        hits += hit
        if not honest:
            dishonest.append(case_id)
        lines.append(f"{case_id:13} {line}  | {question[:60]}")
        for c in answer.codes:
            assert c.code in answer.answer
        if check_answer is not None:
            check_answer(answer)
    return hits, dishonest, lines
