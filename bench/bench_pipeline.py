"""Latency of the drafting pipeline: time to first token and total, p50/p95, per backend/preset.

Runs 20 public coding questions through ``Advisor.stream`` (retrieval, draft, check, re-ask
when needed) and prints a table. The first question of each configuration is a warm-up
(model load, embeddings, corpus) and is reported separately, not in the percentiles.

    .venv/bin/python bench/bench_pipeline.py                      # embedded, both presets
    .venv/bin/python bench/bench_pipeline.py --presets small -n 5
    .venv/bin/python bench/bench_pipeline.py --backend openai     # ADVISOR_OPENAI_BASE_URL

The index is built once into --data-dir (a temporary folder by default) from the packaged
guidelines; the GGUF files come from ADVISOR_TEST_DATA_DIR (default .venv/test-data).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from advisor.gguf import ensure_gguf  # noqa: E402
from advisor.pipeline import Advisor, Answer  # noqa: E402
from advisor.settings import Settings, load_settings  # noqa: E402
from knowledge.catalog import load_catalog  # noqa: E402

QUESTIONS = [
    "What do I bill for an ultrasound-guided knee injection?",
    "Central venous catheter placement with ultrasound guidance, patient is 40",
    "PICC line placement with ultrasound guidance and imaging",
    "FAST exam in the emergency department",
    "Complete abdominal ultrasound",
    "Thoracentesis with ultrasound guidance",
    "Ultrasound-guided fine needle aspiration of a thyroid nodule",
    "Bilateral lower extremity venous duplex, complete",
    "Complete transthoracic echocardiogram with spectral and color Doppler",
    "IVUS of one iliac vessel during angiography",
    "Paracentesis with ultrasound guidance",
    "Limited retroperitoneal ultrasound of the kidneys",
    "Ultrasound-guided shoulder joint injection",
    "Carotid duplex scan, bilateral",
    "Transvaginal pelvic ultrasound, non-obstetric",
    "Ultrasound-guided breast biopsy, first lesion",
    "Unilateral upper extremity arterial duplex, limited",
    "Obstetric ultrasound in the first trimester, single fetus",
    "Ultrasound-guided peripheral nerve block of the femoral nerve",
    "Limited transthoracic echo follow-up",
]


def pct(values: list[float], p: float) -> float:
    """Percentile by nearest rank (small samples)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def run(label: str, settings: Settings, questions: list[str]) -> dict[str, object]:
    """Time every question; return the row of the table."""
    advisor = Advisor(settings, catalog=load_catalog())
    ttft: list[float] = []
    total: list[float] = []
    reasks = fallbacks = 0
    warm = None
    for i, q in enumerate(questions):
        started = time.perf_counter()
        first = None
        answer: Answer | None = None
        for item in advisor.stream(q):
            if isinstance(item, Answer):
                answer = item
            elif first is None:
                first = time.perf_counter() - started
        elapsed = time.perf_counter() - started
        assert answer is not None
        codes = " ".join(f"{c.code}:{c.status.value[:4]}" for c in answer.codes)
        print(f"  [{label}] {elapsed:6.1f}s calls={answer.model_calls} {answer.path:8} "
              f"{codes or '-'}  | {q[:60]}", flush=True)
        if i == 0:
            warm = elapsed
            continue
        total.append(elapsed)
        ttft.append(first if first is not None else elapsed)
        reasks += answer.model_calls > 1
        fallbacks += answer.path == "fallback"
    return {
        "config": label, "n": len(total), "warmup_s": warm,
        "ttft_p50": pct(ttft, 50), "ttft_p95": pct(ttft, 95),
        "total_p50": pct(total, 50), "total_p95": pct(total, 95),
        "mean": statistics.fmean(total), "reasks": reasks, "fallbacks": fallbacks,
    }


def main() -> None:
    """Parse arguments, build the index once, run each configuration, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="embedded", choices=["embedded", "openai", "ollama"])
    ap.add_argument("--presets", default="default,small", help="Embedded presets, comma list.")
    ap.add_argument("-n", type=int, default=len(QUESTIONS), help="Questions to run (+1 warm-up).")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--data-dir", type=Path, default=None, help="Keeps the index between runs.")
    args = ap.parse_args()

    models = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    base = load_settings(data_dir=data_dir, max_tokens=args.max_tokens, n_ctx=2048)
    from advisor.index import build_index

    started = time.perf_counter()
    report = build_index(base, catalog=load_catalog())
    print(f"index: {report.summary()} ({time.perf_counter() - started:.1f} s)")
    questions = QUESTIONS[: args.n + 1]

    rows = []
    if args.backend == "embedded":
        for preset in args.presets.split(","):
            path = ensure_gguf(Settings(data_dir=models, model_preset=preset))
            settings = base.model_copy(update={"model_path": path, "model_preset": preset})
            rows.append(run(f"embedded:{preset}", settings, questions))
    else:
        settings = base.model_copy(update={"backend": args.backend})
        rows.append(run(args.backend, settings, questions))

    head = (f"{'config':<18}{'n':>3}{'warm-up':>9}{'TTFT p50':>10}{'TTFT p95':>10}"
            f"{'total p50':>11}{'total p95':>11}{'mean':>8}{'re-asks':>9}{'fallbacks':>10}")
    print("\n" + head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['config']:<18}{r['n']:>3}{r['warmup_s']:>8.1f}s{r['ttft_p50']:>9.1f}s"
              f"{r['ttft_p95']:>9.1f}s{r['total_p50']:>10.1f}s{r['total_p95']:>10.1f}s"
              f"{r['mean']:>7.1f}s{r['reasks']:>9}{r['fallbacks']:>10}")
    print(f"\n{os.cpu_count()} CPUs; TTFT = first streamed chunk of the draft; seconds.")


if __name__ == "__main__":
    main()
