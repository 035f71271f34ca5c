"""Latency of the drafting pipeline: time to first token and total, p50/p95, per backend/preset.

Runs 20 public coding questions through ``Advisor.stream`` (retrieval, draft, check, re-ask
when needed) and prints a table. The first question of each configuration is a warm-up
(model load, embeddings, corpus, the server's first request) and is reported separately,
not in the percentiles.

    .venv/bin/python bench/bench_pipeline.py                      # embedded, both presets
    .venv/bin/python bench/bench_pipeline.py --presets small --limit 5
    .venv/bin/python bench/bench_pipeline.py --backend openai --serve default
    .venv/bin/python bench/bench_pipeline.py --backend embedded,openai --serve default
    .venv/bin/python bench/bench_pipeline.py --backend openai     # ADVISOR_OPENAI_BASE_URL

``--serve PRESET`` starts a local ``python -m llama_cpp.server`` on the packaged GGUF of that
preset (loopback, free port, same context size and prompt-cache budget as the embedded
backend) for the openai backend, and stops it afterwards; without it the openai backend
uses ADVISOR_OPENAI_BASE_URL / ADVISOR_OPENAI_MODEL.

TTFT is the time from the question to the first readable text of the draft (the first
drafted code or the start of the answer prose). The embedded backend streams that to the
app. The app does not stream the openai backend's draft; to see its first tokens, the bench
asks for the same draft streamed (same request body and response format as the app's
request, with ``stream`` on) and reads it with the app's renderer.

The index is built once into --data-dir (a temporary folder by default) from the packaged
guidelines; the GGUF files come from ADVISOR_TEST_DATA_DIR (default .venv/test-data).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))  # the llama_cpp.server helper

from llama_server import PROMPT_CACHE_ARGS, serve_llama  # noqa: E402

from advisor import llm, structured  # noqa: E402
from advisor.gguf import ensure_gguf  # noqa: E402
from advisor.pipeline import Advisor, Answer  # noqa: E402
from advisor.settings import Backend, Settings, load_settings  # noqa: E402
from advisor.streaming import DraftRenderer  # noqa: E402
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


@contextlib.contextmanager
def streamed_openai_drafts(marks: list[float]) -> Iterator[None]:
    """Stream the openai backend's structured calls; append when readable text first shows.

    Sends what ``llm.structured_call`` sends (the ``json_schema`` form, or ``json_object``
    with the schema for endpoints that rejected it) with streaming on, and parses the
    joined reply the same way. Other backends go through unchanged.
    """
    original = llm.structured_call
    seen: set[str] = set()

    def streamed(model: Any, messages: Any, schema: dict[str, Any], *,
                 timeout_s: float | None = None) -> dict[str, Any]:
        endpoint = structured._endpoint(model)
        if not structured._is_openai(model) or endpoint not in seen:
            # Other backends; and an endpoint's first call (in the warm-up question), which
            # finds out through the app's own path which response format the server knows.
            seen.add(endpoint)
            return original(model, messages, schema, timeout_s=timeout_s)
        renderer = DraftRenderer()
        parts: list[str] = []
        response_format: dict[str, Any] = (
            {"type": "json_object", "schema": schema}
            if endpoint in structured._json_object_only
            else {"type": "json_schema",
                  "json_schema": {"name": str(schema.get("title") or "response"),
                                  "schema": schema}}
        )
        with structured._translated_errors(model):
            for chunk in model.stream(messages, response_format=response_format,
                                      **structured._timeout_kwargs(model, timeout_s)):
                text = chunk.content if isinstance(chunk.content, str) else ""
                parts.append(text)
                if renderer.feed(text):
                    marks.append(time.perf_counter())
        return structured.parse_json_reply("".join(parts), schema)

    llm.structured_call = streamed  # the pipeline imports it from advisor.llm per call
    try:
        yield
    finally:
        llm.structured_call = original


def run(label: str, settings: Settings, questions: list[str]) -> dict[str, object]:
    """Time every question; return the row of the table."""
    advisor = Advisor(settings, catalog=load_catalog())
    ttft: list[float] = []
    total: list[float] = []
    reasks = fallbacks = 0
    lines: list[int] = []  # code lines an answer ruled on (shown and removed): draft length
    warm = None
    marks: list[float] = []
    streamed = (contextlib.nullcontext() if Backend(settings.backend) is Backend.EMBEDDED
                else streamed_openai_drafts(marks))
    with streamed:
        for i, q in enumerate(questions):
            started = time.perf_counter()
            marks.clear()
            first = None
            answer: Answer | None = None
            for item in advisor.stream(q):
                if isinstance(item, Answer):
                    answer = item
                elif first is None:
                    first = time.perf_counter() - started
            elapsed = time.perf_counter() - started
            if first is None and marks:
                first = marks[0] - started
            assert answer is not None
            codes = " ".join(f"{c.code}:{c.status.value[:4]}" for c in answer.codes)
            shown = "-" if first is None else f"{first:.1f}s"
            print(f"  [{label}] ttft={shown:>6} total={elapsed:6.1f}s calls={answer.model_calls} "
                  f"{answer.path:8} {codes or '-'}  | {q[:60]}", flush=True)
            if i == 0:
                warm = elapsed
                continue
            total.append(elapsed)
            # No readable text before the answer (a fallback, or nothing drafted): the
            # first thing shown is the checked answer.
            ttft.append(first if first is not None else elapsed)
            reasks += answer.model_calls > 1
            lines.append(len(answer.codes) + len(answer.removed))
            fallbacks += answer.path == "fallback"
    if not total:
        raise SystemExit("need at least 2 questions: the first one is the warm-up")
    return {
        "config": label, "n": len(total), "warmup_s": warm,
        "ttft_p50": pct(ttft, 50), "ttft_p95": pct(ttft, 95),
        "total_p50": pct(total, 50), "total_p95": pct(total, 95),
        "mean": statistics.fmean(total), "reasks": reasks, "fallbacks": fallbacks,
        "lines": statistics.fmean(lines),
    }


def openai_run(base: Settings, models: Path, serve: str | None, questions: list[str],
               work: Path) -> dict[str, object]:
    """The openai backend, against a llama_cpp.server started here when ``serve`` is set."""
    settings = base.model_copy(update={"backend": Backend.OPENAI})
    if serve is None:
        return run(f"openai:{settings.openai_model}", settings, questions)
    model = ensure_gguf(Settings(data_dir=models, model_preset=serve))
    log_path = work / f"llama-server-{serve}.log"
    started = time.perf_counter()
    with serve_llama(model, log_path, n_ctx=base.n_ctx, n_threads=base.n_threads,
                     extra_args=PROMPT_CACHE_ARGS) as server:
        print(f"llama_cpp.server ({serve}) ready at {server.base_url} in "
              f"{time.perf_counter() - started:.1f} s; log {log_path}", flush=True)
        settings = settings.model_copy(update={"openai_base_url": server.base_url,
                                               "openai_model": server.model_id})
        return run(f"openai-server:{serve}", settings, questions)


def main() -> None:
    """Parse arguments, build the index once, run each configuration, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="embedded",
                    help="Comma list of embedded, openai, ollama (default: embedded).")
    ap.add_argument("--presets", default="default,small", help="Embedded presets, comma list.")
    ap.add_argument("--serve", choices=["default", "small"], default=None,
                    help="Start a local llama_cpp.server on this packaged preset for openai.")
    ap.add_argument("-n", "--limit", type=int, default=len(QUESTIONS) - 1, dest="n",
                    help="Timed questions per configuration (plus one warm-up).")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--data-dir", type=Path, default=None, help="Keeps the index between runs.")
    args = ap.parse_args()
    backends = [Backend(b.strip()) for b in args.backend.split(",") if b.strip()]

    models = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    base = load_settings(data_dir=data_dir, max_tokens=args.max_tokens, n_ctx=2048)
    from advisor.index import build_index

    started = time.perf_counter()
    report = build_index(base, catalog=load_catalog())
    print(f"index: {report.summary()} ({time.perf_counter() - started:.1f} s)")
    questions = QUESTIONS[: args.n + 1]

    rows = []
    for backend in backends:
        if backend is Backend.EMBEDDED:
            for preset in args.presets.split(","):
                path = ensure_gguf(Settings(data_dir=models, model_preset=preset))
                settings = base.model_copy(update={"model_path": path, "model_preset": preset})
                rows.append(run(f"embedded:{preset}", settings, questions))
        elif backend is Backend.OPENAI:
            rows.append(openai_run(base, models, args.serve, questions, data_dir))
        else:
            settings = base.model_copy(update={"backend": backend})
            rows.append(run(str(backend), settings, questions))

    head = (f"{'config':<22}{'n':>3}{'warm-up':>9}{'TTFT p50':>10}{'TTFT p95':>10}"
            f"{'total p50':>11}{'total p95':>11}{'mean':>8}{'re-asks':>9}{'fallbacks':>10}"
            f"{'lines':>7}")
    print("\n" + head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['config']:<22}{r['n']:>3}{r['warmup_s']:>8.1f}s{r['ttft_p50']:>9.1f}s"
              f"{r['ttft_p95']:>9.1f}s{r['total_p50']:>10.1f}s{r['total_p95']:>10.1f}s"
              f"{r['mean']:>7.1f}s{r['reasks']:>9}{r['fallbacks']:>10}{r['lines']:>7.1f}")
    print(f"\n{os.cpu_count()} CPUs; TTFT = first readable text of the draft (openai: of the "
          "same draft streamed); seconds; lines = code lines ruled on per answer (shown and "
          "removed), which most of a draft's length depends on.")


if __name__ == "__main__":
    main()
