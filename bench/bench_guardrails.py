"""Lookup latency, `advisor lookup` cold start, and checker throughput.

Run: .venv/bin/python bench/bench_guardrails.py
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import guardrails.claims.patterns as claims_mod  # noqa: E402
from advisor.lookup import lookup  # noqa: E402
from guardrails.checker import check  # noqa: E402
from guardrails.claims import extract, lower_keep_offsets  # noqa: E402
from guardrails.report import Draft  # noqa: E402
from knowledge.catalog import build_catalog  # noqa: E402

# The shape: a drafted answer of about 300 words naming 6 codes.
DRAFT = (
    "For an ultrasound-guided aspiration and injection of the right knee, report 20611 with "
    "modifier RT. That code already includes the ultrasound guidance with permanent recording "
    "and reporting, so do not add 76942 on the same claim; 20610 is the right choice only when "
    "no imaging is used at all, for example when the joint is entered by palpation of the "
    "usual landmarks. If the same visit also included a central venous catheter placed under "
    "real-time ultrasound, report 36556 with the add-on +76937, provided the note documents "
    "the evaluation of potential access sites, the patency of the chosen vein, real-time "
    "visualization of the needle entering the vessel, and a permanent image with a written "
    "interpretation. Without those elements the guidance is part of the line placement and "
    "is not reported on its own. Fine-needle aspiration of a thyroid nodule with ultrasound "
    "guidance is 10005 for the first lesion, and no separate guidance code is added because "
    "the imaging is part of the biopsy code. Remember that the needle guidance code is "
    "counted once per encounter under Medicare rules whatever the number of lesions, and "
    "that a complete and a limited exam of one region are not reported in the same session. "
    "Modifier 59 never bypasses an edit whose modifier indicator is 0, and the documentation "
    "must support every code on the claim, including the side, the structures seen, the "
    "findings and the name of the physician who interpreted the images. When a payer asks for "
    "the images, send the saved frames with the signed report rather than a summary. Payers "
    "may differ from these national rules; check the current quarter's edit files when they "
    "are imported, read any local coverage determination that applies, and keep a copy of "
    "the policy with the claim so that an appeal can cite it."
)


QUESTION = ("Ultrasound-guided injection of the right knee joint for osteoarthritis, with a "
            "permanent image saved and a report. What do I bill?")


def main() -> None:
    cat = build_catalog()
    codes = list(cat.codes)
    # warm
    for c in codes:
        lookup(c, cat)
    samples = []
    for _ in range(20):
        for c in codes:
            t = time.perf_counter()
            lookup(c, cat)
            samples.append(time.perf_counter() - t)
    samples.sort()
    p50 = samples[len(samples) // 2] * 1e3
    p99 = samples[int(len(samples) * 0.99)] * 1e3
    print(f"machine: {platform.machine()} cores={os.cpu_count()} "
          f"python {platform.python_version()}")
    print(f"lookup in-process: n={len(samples)} p50={p50:.4f} ms p99={p99:.4f} ms")

    cold = []
    exe = ROOT / ".venv" / "bin" / "advisor"
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([str(exe), "lookup", "76937"], check=True, capture_output=True)
        cold.append(time.perf_counter() - t)
    print(f"advisor lookup cold start: median={statistics.median(cold):.3f} s "
          f"max={max(cold):.3f} s")

    words = len(DRAFT.split())
    claims = extract(DRAFT)
    ncodes = len(claims.codes())
    check(DRAFT, cat)

    def rate(fn, n: int = 3000) -> float:
        """Calls per second, best of three runs of n calls (the least disturbed)."""
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, time.perf_counter() - t)
        return n / best

    full = rate(lambda: check(DRAFT, cat))
    print(f"checker: {words}-word draft with {ncodes} codes: {full:,.0f} checks/s "
          f"({1e6 / full:.0f} µs per check, one core)")
    # With the question the draft answers: the frame is read once per question (cached),
    # each check then compares every code with it.
    asked = Draft(text=DRAFT, context=QUESTION)
    check(asked, cat)
    with_q = rate(lambda: check(asked, cat))
    print(f"checker with the question ({len(QUESTION.split())} words) read into a frame: "
          f"{with_q:,.0f} checks/s ({1e6 / with_q:.0f} µs per check, one core)")
    ext = rate(lambda: extract(DRAFT))
    print(f"  claims extraction alone: {ext:,.0f}/s ({1e6 / ext:.0f} µs)")
    rules_ = rate(lambda: check(DRAFT, cat, claims=claims))
    print(f"  rules and report, claims given: {rules_:,.0f}/s ({1e6 / rules_:.0f} µs)")
    # The floor of this design: the three whole-text regex scans every check needs
    # (sentence ends, code shapes, cue words), with nothing done with their matches.
    low = lower_keep_offsets(DRAFT)
    scan = " " + low
    floor = rate(lambda: (
        list(claims_mod._SENT_RE.finditer(low)),
        list(claims_mod._CODE_RE.finditer(DRAFT)),
        list(claims_mod._KW_RE.finditer(scan)),
    ))
    print(f"  the three whole-text regex scans alone: {floor:,.0f}/s ({1e6 / floor:.0f} µs)")

if __name__ == "__main__":
    main()
