"""Model-free check of the reading on probe questions of the project's own wording.

Run: .venv/bin/python bench/probe_check.py [--file bench/probes.txt] [--show] [--json]

The suites' variants are paraphrases of the suite questions; the probes are not: each is a
question written from the reference facts (`bench/probes.txt`), with the codes that are
right for it together and codes that are each wrong for it. For every probe the right codes
are drafted together with the question and must all come out verified (or corrected), with
none added or removed; each wrong code, drafted alone, must not come out verified (a leak).
No language model and no index are needed. It is a diagnostic of the reading, like
`bench/reading_check.py`, not a score of the system.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHOWN_OK = ("verified", "corrected")


def probes(path: Path) -> list[tuple[str, list[str], list[str]]]:
    """(question, right codes, wrong codes) of every probe line; '#' lines are comments."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise SystemExit(f"{path}:{n}: expected 'question | right codes | wrong codes'")
        out.append((parts[0], parts[1].split(), parts[2].split()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=ROOT / "bench" / "probes.txt",
                    help="probe file (default: bench/probes.txt)")
    ap.add_argument("--show", action="store_true", help="print each probe that misses")
    ap.add_argument("--json", action="store_true", help="one JSON line of totals")
    args = ap.parse_args(argv)

    from guardrails import policy
    from guardrails.report import Draft, DraftCode
    from knowledge.catalog import load_catalog

    cat = load_catalog()

    def statuses(question: str, codes: list[str]) -> dict[str, str]:
        draft = Draft(codes=tuple(DraftCode(c) for c in codes), context=question)
        return {v.code: v.status.value for v in policy.first_round(draft, cat).outcome.verdicts}

    items = probes(args.file)
    right_ok = leaks = both = 0
    for question, right, wrong in items:
        got = statuses(question, right)
        ok = set(got) == set(right) and all(got[c] in SHOWN_OK for c in right)
        leaked = [c for c in wrong if statuses(question, [c]).get(c) == "verified"]
        right_ok += ok
        leaks += bool(leaked)
        both += ok and not leaked
        if args.show and (not ok or leaked):
            print(f"{'' if ok else 'RIGHT '}{'LEAK ' if leaked else ''}{question}\n"
                  f"   right: {got}   leaked: {leaked}")
    if args.json:
        print(json.dumps({"probes": len(items), "ok": both, "right_verified": right_ok,
                          "leaked": leaks}))
    else:
        print(f"probes: {both}/{len(items)} ok; right codes verified in {right_ok}, "
              f"a wrong code verified in {leaks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
