"""Batch claim checking (`advisor check --file`): structured claim lines per second, one core.

A claim line here is one claim as a coder keys it (1 to 3 codes of the catalog, some with
modifiers or units: '20610 76942', '93971-RT', '37252 37253x2'). Two batches:

- a work-day batch: N lines drawn (fixed seed) from a pool of distinct claims, so claims
  repeat as they do in a department's file (the same injection or line placement many times);
- all distinct: every line a claim not seen before in the batch (the worst case: every
  line goes through the whole checker).

Each is measured in process (reading, checking and writing JSON lines to a null sink,
`advisor.batch.run`, best of 3) and end to end as `advisor check --file F --json > /dev/null`
(process start, catalog load and all). One process, one thread: one core.

Run: .venv/bin/python bench/bench_batch.py [--lines 200000] [--pool 2000] [--distinct 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor import batch  # noqa: E402
from knowledge.catalog import build_catalog  # noqa: E402

MODIFIERS = ["RT", "LT", "50", "26", "TC", "59", "XS", "52"]


def claims(n: int, seed: int, catalog_codes: list[str]) -> list[str]:
    """n distinct keyed claims of 1-3 active catalog codes, some with a modifier or units."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        parts = []
        for code in rng.sample(catalog_codes, rng.choice((1, 2, 2, 3))):
            line = code
            if rng.random() < 0.2:
                line += "-" + rng.choice(MODIFIERS)
            if rng.random() < 0.1:
                line += f"x{rng.randint(2, 4)}"
            parts.append(line)
        out[" ".join(parts)] = None
    return list(out)


class Null:
    """A sink that counts what is written."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> None:
        self.chars += len(s)


def in_process(lines: list[str], catalog: object, repeat: int = 3) -> float:
    """Best lines/s of ``repeat`` runs of the whole batch (read, check, JSON lines)."""
    best = 0.0
    for _ in range(repeat):
        sink = Null()
        t = time.perf_counter()
        summary = batch.run(lines, catalog, sink.write, as_json=True)  # type: ignore[arg-type]
        dt = time.perf_counter() - t
        assert summary.claims == len(lines), (summary.claims, len(lines))
        best = max(best, len(lines) / dt)
    return best


def end_to_end(lines: list[str]) -> tuple[float, float]:
    """(seconds, lines/s) of `advisor check --file F --json > /dev/null`."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        exe = str(Path(sys.executable).with_name("advisor"))
        t = time.perf_counter()
        r = subprocess.run([exe, "check", "--file", path, "--json"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=False)
        dt = time.perf_counter() - t
        assert r.returncode in (0, 1, 2), r.stderr
    finally:
        os.unlink(path)
    return dt, len(lines) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=200_000, help="lines of the work-day batch")
    ap.add_argument("--pool", type=int, default=2_000, help="distinct claims it draws from")
    ap.add_argument("--distinct", type=int, default=20_000, help="lines of the distinct batch")
    args = ap.parse_args()
    catalog = build_catalog()
    codes = sorted(c for c, e in catalog.codes.items() if getattr(e, "deleted", None) is None)
    pool = claims(args.pool, 1, codes)
    rng = random.Random(2)
    workday = [rng.choice(pool) for _ in range(args.lines)]
    distinct = claims(args.distinct, 3, codes)
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {len(codes)} active codes")
    rate = in_process(workday, catalog)
    print(f"work-day batch, {args.lines:,} lines from {args.pool:,} distinct claims, "
          f"in process: {rate:,.0f} lines/s")
    rate = in_process(distinct, catalog, repeat=1)
    print(f"all distinct, {args.distinct:,} lines, in process: {rate:,.0f} lines/s")
    dt, rate = end_to_end(workday)
    print(f"work-day batch, end to end (advisor check --file --json): {dt:.2f} s, "
          f"{rate:,.0f} lines/s")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
