"""Model-free check of how the checker reads the suite questions, on a dev/hold-out split.

Run: .venv/bin/python bench/reading_check.py [--split dev|holdout|all]
         [--variants only|none] [--show] [--json]

No language model: for each question case with variants (or each variant), with the real
retriever (the guideline index must exist: `advisor index`) and the catalog, it checks

  scope  a case that expects codes is answered, one that expects no code at all (the
         out-of-scope cases) is called out of scope
  cand   every expected code is among the first 8 candidates the model would be shown
  exp    the expected codes, drafted alone with the question, all come out verified (or
         corrected), with no code added or removed
  leak   a forbidden code drafted alone with the question comes out verified

A case is "ok" when scope, cand and exp hold and nothing leaks. It is a diagnostic of the
reading, not a score of the system (the model may draft otherwise; `advisor eval` scores it).

The split: "dev" is every case whose id's SHA-1, read as an integer, is even, plus the
cases whose variant wording was read while rules were written (SEEN below); "holdout" is
the rest. --show prints the dev misses with their wording; it refuses the hold-out, whose
wording is not to be read while writing rules.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

SUITES = ("cardio-vascular", "conversations-and-scope", "diagnostic", "primaries",
          "procedures", "web-errors", "holdout-new-users")
# Cases whose variant wording was read while rules were written: dev from then on.
SEEN = ("dx-transrectal", "oos-knee-arthroscopy", "conv-tte-then-no-doppler",
        "cv-tte-no-doppler", "cv-tte-congenital", "cv-tee-complete")
TOP = 8


def half(case_id: str) -> str:
    """'dev' or 'holdout' for a case id."""
    if case_id in SEEN or int(hashlib.sha1(case_id.encode()).hexdigest(), 16) % 2 == 0:
        return "dev"
    return "holdout"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "holdout", "all"), default="dev",
                    help="which half of the cases (default: dev)")
    ap.add_argument("--variants", choices=("only", "none"), default="only",
                    help="the variants (default) or the questions as written")
    ap.add_argument("--show", action="store_true", help="print the dev misses")
    ap.add_argument("--json", action="store_true", help="one JSON line of totals")
    args = ap.parse_args(argv)
    if args.show and args.split != "dev":
        ap.error("--show prints question wording: only for --split dev")

    from advisor.evaluation.suite import QuestionCase, load_suites
    from advisor.pipeline import Advisor, outside, supported
    from advisor.scope import is_follow_up, names_codes, out_of_scope
    from advisor.settings import load_settings
    from guardrails import policy
    from guardrails.report import CodeStatus, Draft, DraftCode

    adv = Advisor(load_settings(backend="none"))
    cat = adv.catalog
    suites = load_suites([ROOT / "suites" / f"{s}.yaml" for s in SUITES], cat)
    cases = []
    for s in suites:
        for c in s.cases:
            if not isinstance(c, QuestionCase) or not c.variants:
                continue
            if args.split != "all" and half(c.id) != args.split:
                continue
            cases += c.variant_cases() if args.variants == "only" else [c]
    good = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    tot = {"cases": 0, "ok": 0, "scope": 0, "cand": 0, "exp": 0, "leak": 0, "with_forbidden": 0}
    by_kind: dict[str, dict[str, int]] = {}  # totals by variant kind (no wording)
    for case in cases:
        turns = case.turns
        q = turns[-1]
        history = turns[-2] if len(turns) > 1 and is_follow_up(q) else ""
        query = f"{history} {q}" if history else q
        _, cands, banner, _ = adv._retrieve(query)
        off = out_of_scope(query if history else q, adv._vocab, cands, banner is not None)
        if not off and not names_codes(q):
            off = outside(cat, q, history)
        off = off and not supported(cat, q, history)
        expect = list(case.expect_codes)
        scope_ok = (not off) if expect else (off if case.expect_no_codes else True)
        top = [c.code for c in adv._fitting(cands, q, history)[:TOP]]
        cand_ok = all(c in top for c in expect)
        exp_ok = True
        if expect:
            out = policy.first_round(Draft(codes=tuple(DraftCode(c) for c in expect),
                                           context=q, history=history), cat).outcome
            got = {v.code: v.status for v in out.verdicts}
            exp_ok = set(got) == set(expect) and all(s in good for s in got.values())
        leaks = []
        for f in case.forbid_codes:
            out = policy.first_round(Draft(codes=(DraftCode(f),), context=q, history=history),
                                     cat).outcome
            if any(v.code == f and v.status is CodeStatus.VERIFIED for v in out.verdicts):
                leaks.append(f)
        ok = scope_ok and cand_ok and exp_ok and not leaks
        tot["cases"] += 1
        tot["ok"] += ok
        tot["scope"] += scope_ok
        tot["cand"] += cand_ok
        tot["exp"] += exp_ok
        tot["leak"] += bool(leaks)
        tot["with_forbidden"] += bool(case.forbid_codes)
        kind = getattr(case, "variant_kind", None) or "original"
        k = by_kind.setdefault(str(kind), {"cases": 0, "ok": 0, "leak": 0})
        k["cases"] += 1
        k["ok"] += ok
        k["leak"] += bool(leaks)
        if args.show and not ok:
            why = [w for w, b in (("scope", scope_ok), ("cand", cand_ok), ("exp", exp_ok))
                   if not b] + ([f"leak {' '.join(leaks)}"] if leaks else [])
            print(f"{case.id}: {'; '.join(why)} | expect {expect} | top {top[:6]}")
            print(f"   Q: {q}" + (f" | earlier: {history}" if history else ""))
    n = max(tot["cases"], 1)
    result = {"split": args.split, "variants": args.variants, **tot,
              "ok_pct": round(100 * tot["ok"] / n, 1), "by_kind": by_kind}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.split} {args.variants}: ok {tot['ok']}/{tot['cases']} "
              f"({result['ok_pct']}%); scope {tot['scope']}, candidates {tot['cand']}, "
              f"expected verified {tot['exp']}; a forbidden code verified alone in "
              f"{tot['leak']} of {tot['with_forbidden']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
