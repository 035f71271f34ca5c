"""The shared store: audit write latency on SQLite vs PostgreSQL, and answers/s for one vs
two app replicas sharing a PostgreSQL on the deterministic path (``--backend none``).

1. Writes: ``AuditLog.record`` of a typical entry (masking off: the marker scrubber, so the
   figure is the store's), one after another, then from 4 threads at once; p50/p95 per write.
   SQLite is a file in a temporary folder (WAL); PostgreSQL is Debian's server started here
   (tests/pg.py) with its default durability (fsync on).
2. Replicas: ``python app.py --backend none`` once, then twice, each with its own data dir
   (the shared test index copied) and ADVISOR_DATABASE_URL on one PostgreSQL; N concurrent
   gradio_client sessions, split across the replicas, each asking code-only questions
   (deterministic path, no model). Answers/s over the whole round, every answer checked.

The machine's load average is printed before and after: on the shared 2-core machine other
work changes every figure.

    .venv/bin/python bench/bench_store.py                      # both parts
    .venv/bin/python bench/bench_store.py --writes 1000 --skip-replicas
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
                  TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")

import chatload  # noqa: E402
import helpers  # noqa: E402
import pg  # noqa: E402

from advisor.audit import AuditCode, AuditEntry, AuditLog  # noqa: E402


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        question=f"What do I bill for an ultrasound-guided knee injection? ({i})",
        answer="Report 20611 (arthrocentesis of a major joint with ultrasound guidance). " * 4,
        codes=[AuditCode(code="20611", status="verified"),
               AuditCode(code="76942", status="removed")],
        findings=[{"rule": "pairs.bundled", "message": "76942 is included in 20611",
                   "codes": ["20611", "76942"], "severity": "error"}] * 2,
        ruleset="builtin-2026.11", backend="none", model="", passage_ids=["a1", "b2", "c3"],
        timings_ms={"retrieve": 40, "draft": 0, "check": 2, "total": 45}, path="lookup",
    )


def bench_writes(url: str, spool: Path, n: int) -> dict[str, float]:
    log = AuditLog(url, spool_dir=spool, scrubber=lambda t: t)
    log.record(_entry(-1))  # schema made, connection open
    serial = []
    for i in range(n):
        started = time.perf_counter()
        log.record(_entry(i))
        serial.append(time.perf_counter() - started)
    threaded: list[float] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(n // 4):
            started = time.perf_counter()
            log.record(_entry(base + i))
            with lock:
                threaded.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(n * (k + 1),)) for k in range(4)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    assert log.pending == 0, "a write failed"
    assert len(log.entries()) == 1 + n + 4 * (n // 4)
    log.close()
    return {"p50": _pct(serial, 50), "p95": _pct(serial, 95),
            "t_p50": _pct(threaded, 50), "t_p95": _pct(threaded, 95),
            "t_rate": len(threaded) / wall}


def bench_replicas(server: pg.Postgres, root: Path, replicas: int, sessions: int,
                   questions: int) -> dict[str, Any]:
    from knowledge.catalog import load_catalog

    catalog = load_catalog()
    codes = sorted(c for c, e in catalog.codes.items() if e.active)
    url = server.create_database(f"bench{replicas}")
    steps = [[chatload.Step(f"lookup {codes[(s * questions + q) % len(codes)]}", "model")
              for q in range(questions)] for s in range(sessions)]
    with contextlib.ExitStack() as stack:
        apps = []
        for r in range(replicas):
            data = helpers.private_data_dir(root / f"r{replicas}-{r}", presets=())
            apps.append(stack.enter_context(helpers.run_app(
                data, root / f"r{replicas}-{r}.log", backend="none", database_url=url,
                max_questions_per_minute=0)))
        for app in apps:  # warm: index loaded, first answer given
            chatload.run_session(app.url, -1, [chatload.Step("lookup 76942", "model")],
                                 chatload.SessionReport(-1))
        reports, wall = chatload.run_load([a.url for a in apps], steps, 900)
    results = [r for rep in reports for r in rep.results]
    bad = chatload.problems(reports)
    latencies = sorted(r.seconds for r in results)
    return {"answers": len(results), "wall": wall, "rate": len(results) / wall,
            "p50": chatload.percentile(latencies, 50), "p95": chatload.percentile(latencies, 95),
            "problems": bad[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="Per session.")
    parser.add_argument("--skip-replicas", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, \
            pg.run_postgres(settings=()) as server:
        root = Path(tmp)
        for name, url in (("SQLite", f"sqlite:///{root / 'audit.sqlite3'}"),
                          ("PostgreSQL", server.create_database("writes"))):
            w = bench_writes(url, root / f"spool-{name}", args.writes)
            print(f"audit write, {name}: serial p50 {w['p50']:.2f} ms p95 {w['p95']:.2f} ms; "
                  f"4 threads p50 {w['t_p50']:.2f} ms p95 {w['t_p95']:.2f} ms, "
                  f"{w['t_rate']:.0f} writes/s")
        if not args.skip_replicas:
            for replicas in (1, 2):
                r = bench_replicas(server, root, replicas, args.sessions, args.questions)
                print(f"{replicas} replica(s), {args.sessions} sessions: {r['answers']} answers "
                      f"in {r['wall']:.1f} s = {r['rate']:.1f} answers/s; latency p50 "
                      f"{r['p50']:.2f} s p95 {r['p95']:.2f} s; problems: {r['problems'] or 0}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
