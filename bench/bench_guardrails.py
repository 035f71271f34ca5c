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

from advisor.lookup import lookup  # noqa: E402
from guardrails.checker import check  # noqa: E402
from guardrails.claims import extract  # noqa: E402
from knowledge.catalog import build_catalog  # noqa: E402

DRAFT = (
    "For an ultrasound-guided aspiration and injection of the right knee, report 20611 with "
    "modifier RT. The code already includes the ultrasound guidance with permanent recording "
    "and reporting, so do not add 76942; 20610 is the code only when no imaging is used. "
    "If the same visit also included a central venous catheter placed under real-time "
    "ultrasound, report 36556 with the add-on +76937, provided the note documents the "
    "evaluation of potential access sites, the patency of the chosen vein, real-time "
    "visualization of needle entry and a permanent image with a report. A bedside FAST "
    "exam is reported with 93308 and 76705 when a written report and saved images exist; "
    "otherwise it is part of the evaluation and management service. Fine-needle aspiration "
    "of a thyroid nodule with ultrasound guidance is 10005 for the first lesion and +10006 "
    "for each additional lesion, and no separate guidance code is added. Remember that the "
    "needle guidance code is counted once per encounter under Medicare rules whatever the "
    "number of lesions, and that complete and limited exams of one region are not reported "
    "in the same session. Modifier 59 never bypasses an edit whose modifier indicator is 0, "
    "and documentation must support every code on the claim. Payers may differ; check the "
    "current quarter's edit files when they are imported."
)


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
    ncodes = len(extract(DRAFT).codes())
    n = 3000
    check(DRAFT, cat)
    t = time.perf_counter()
    for _ in range(n):
        check(DRAFT, cat)
    dt = time.perf_counter() - t
    print(f"checker: {words}-word draft with {ncodes} codes: {n / dt:,.0f} checks/s (one core)")
    t = time.perf_counter()
    for _ in range(n):
        extract(DRAFT)
    dt2 = time.perf_counter() - t
    print(f"claims extraction alone: {n / dt2:,.0f} extractions/s")


if __name__ == "__main__":
    main()
