"""Load on the real app: concurrent chat sessions through gradio_client, on 127.0.0.1.

Starts ``python app.py`` as a subprocess on a private data dir (the shared test index
copied, the packaged models linked), warms it up (index, model, one model answer, one
lookup), then runs rounds of N concurrent sessions, each a separate gradio_client Client
asking its own questions (tests/chatload.py: two code-only questions per session, one
body-site question for the first --model-sessions sessions, drafted by the model, or by
the deterministic fallback with --backend none) and exporting its conversation; the
exports of a round happen at the same moment. Every answer is checked as in
tests/e2e/test_app_load.py.

Prints per round: answers, wall time, throughput, latency p50/p95 per kind, and the app's
resident memory (after warm-up, peak, end).

    .venv/bin/python bench/bench_load.py                         # 20 sessions, 3 rounds
    .venv/bin/python bench/bench_load.py --backend none
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
                  TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")

import chatload  # noqa: E402
import helpers  # noqa: E402

from knowledge.catalog import load_catalog  # noqa: E402

WARMUP = ["What do I bill for an ultrasound-guided knee injection?", "lookup 76942"]


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{chatload.percentile(values, 50):.2f} / {chatload.percentile(values, 95):.2f} s "
            f"(n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--model-sessions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="embedded", choices=["embedded", "none"])
    parser.add_argument("--preset", default="small", choices=["small", "default"])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--deadline", type=float, default=600.0, help="Seconds per round.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        data = helpers.private_data_dir(root / "data", presets=(args.preset,))
        catalog = load_catalog()
        steps = chatload.plan(args.sessions, args.model_sessions, catalog, root / "plan")
        settings: dict[str, object] = {"backend": args.backend, "llm_timeout_s": 600}
        if args.backend == "embedded":
            settings.update(model_preset=args.preset, max_tokens=args.max_tokens)
        started = time.perf_counter()
        with helpers.run_app(data, root / "app.log", **settings) as app:
            up = time.perf_counter() - started
            from gradio_client import Client

            client = Client(app.url, verbose=False, download_files=False)
            chat: list = []
            t0 = time.perf_counter()
            for question in WARMUP:
                chat, _ = client.predict(question, chat, api_name="/chat")
            warm_s = time.perf_counter() - t0
            rss_warm = helpers.rss_mb(app.pid)
            print(f"app up in {up:.1f} s; warm-up (index, model, {len(WARMUP)} answers) "
                  f"{warm_s:.1f} s; RSS after warm-up {rss_warm:.0f} MiB")
            print(f"{args.sessions} sessions per round ({args.model_sessions} with a body-site "
                  f"question), backend {args.backend}"
                  + (f" {args.preset}, max_tokens {args.max_tokens}"
                     if args.backend == "embedded" else ""))
            print("| round | answers | wall | answers/s | code-only p50 / p95 "
                  "| body-site p50 / p95 | all p50 / p95 | RSS peak | RSS end | problems |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            failed = 0
            for rnd in range(1, args.rounds + 1):
                with chatload.RssSampler(app.pid) as sampler:
                    reports, wall = chatload.run_load(app.url, steps, args.deadline)
                rss_end = helpers.rss_mb(app.pid)
                results = [r for rep in reports for r in rep.results if not r.error]
                found = chatload.problems(reports)
                failed += len(found)
                code = [r.seconds for r in results if r.step.kind == "code"]
                model = [r.seconds for r in results if r.step.kind == "model"]
                print(f"| {rnd} | {len(results)} | {wall:.1f} s | {len(results) / wall:.2f} "
                      f"| {_fmt(code)} | {_fmt(model)} | {_fmt(code + model)} "
                      f"| {sampler.peak:.0f} MiB | {rss_end:.0f} MiB | {len(found)} |")
                for p in found[:10]:
                    print(f"  problem: {p}")
            print(f"RSS growth from warm-up to the end: {rss_end - rss_warm:+.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
