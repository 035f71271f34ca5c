"""The golden snapshot: what the checker concludes for every suite question and claim line.

Three files, one record per line (``key<TAB>value``), kept in this folder:

- ``questions.txt``: for each public suite question as written (not the hold-out cases
  nor the variants), the question-reading findings (``misfits``)
  of every catalog code drafted alone, and ``check_and_repair`` of the expected codes
  and of the expected plus forbidden codes, with the question as context;
- ``claims.txt``: every catalog code keyed 14 ways (plain, ``+``, eleven modifiers, units)
  through the claim front door: verdict, statuses, rules fired, corrected claim and whether
  the claim changed;
- ``cli.txt``: every check case of the suites through ``advisor check --json`` (exit code
  and JSON), and malformed input through ``advisor lookup`` and ``advisor check``.

A change of behaviour shows as a diff against these files (``tests/unit/test_golden.py``).
When the change is on purpose, regenerate and say why in the commit::

    make golden        # = .venv/bin/python tests/golden/snapshot.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FILES = ("questions.txt", "claims.txt", "cli.txt")

# Each catalog code is keyed these ways in claims.txt ({} is the code).
CLAIM_SHAPES = (
    "{}", "+{}", "{}-26", "{}-TC", "{}-50", "{}-52", "{}-59", "{}-XU", "{}-76", "{}-RT",
    "{}-LT", "{}x2", "{}-59x2", "{}-50x2",
)
# Input that is no claim line: lookup and check must both refuse it.
BAD_INPUT = ("Z1234", "7694", "abc", "769420", "76942-ZZ", "37253x0", "I1234", "0346X")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _outcome_record(outcome: Any) -> str:
    data = outcome.to_dict()
    codes = " ".join(
        f"{c['code']}{''.join('-' + m for m in c['modifiers'])}"
        f"{'x' + str(c['units']) if c['units'] != 1 else ''}={c['status']}"
        for c in data["codes"]
    )
    rules = " ".join(sorted({f["rule"] for f in data["findings"]}))
    claim = " ".join(
        c.code + "".join(f"-{m}" for m in c.modifiers) + (f"x{c.units}" if c.units != 1 else "")
        for c in outcome.draft.codes
    )
    return f"{data['verdict']} | {codes} | claim: {claim or '-'} | rules: {rules or '-'}"


def _questions(catalog: Any, suites: list[Any]) -> Iterator[tuple[str, str]]:
    from guardrails.fit import misfits
    from guardrails.repair import check_and_repair
    from guardrails.report import Draft, DraftCode

    codes = sorted(catalog.codes)
    for suite in suites:
        for case in suite.cases:
            if case.type != "question":
                continue
            if case.tags.set == "holdout":
                # Hold-out questions stay out of sight of rule changes; `advisor eval` scores
                # them (variants are not suite cases here either).
                continue
            q, history = case.turns[-1], case.earlier
            key = f"{suite.name}/{case.id}"
            by_rule: dict[str, list[str]] = {}
            for code in codes:
                for f in misfits(catalog, code, q, history):
                    to = f"{code}>{'+'.join(f.fix.add)}" if f.fix and f.fix.add else code
                    by_rule.setdefault(f.rule, []).append(to)
            for rule, hits in sorted(by_rule.items()):
                yield f"{key} misfit {rule}", " ".join(hits)
            drafts = {"expected": list(case.expect_codes)}
            if case.forbid_codes:
                drafts["with-forbidden"] = [*case.expect_codes, *case.forbid_codes]
            for name, drafted in drafts.items():
                if not drafted:
                    continue
                draft = Draft(
                    codes=tuple(DraftCode(c) for c in drafted),
                    context=q.lower(),
                    history=history.lower(),
                )
                yield f"{key} {name}", _outcome_record(check_and_repair(draft, catalog))


def _claims(catalog: Any) -> Iterator[tuple[str, str]]:
    from advisor.render import format_outcome
    from advisor.ui import outcome_html
    from guardrails.claims import parse_claim_lines
    from guardrails.repair import check_and_repair
    from guardrails.report import Draft, DraftCode

    for code in sorted(catalog.codes):
        for shape in CLAIM_SHAPES:
            keyed = shape.format(code)
            lines = parse_claim_lines([keyed])
            draft = Draft(
                codes=tuple(
                    DraftCode(ln.code, ln.units, ln.modifiers, add_on_mark=ln.add_on_mark)
                    for ln in lines
                )
            )
            outcome = check_and_repair(draft, catalog)
            # Whether the claim changed, as the CLI and the web app each show it.
            cli = "corrected claim:" in format_outcome(outcome)
            ui = "Corrected claim:" in outcome_html(outcome, catalog)
            yield keyed, f"{_outcome_record(outcome)} | changed: ui={ui} cli={cli}"


def _cli(suites: list[Any]) -> Iterator[tuple[str, str]]:
    from typer.testing import CliRunner

    from advisor.cli import app

    runner = CliRunner()
    for suite in suites:
        for case in suite.cases:
            if case.type != "check":
                continue
            args = ["check", *case.codes.split()]
            if case.text:
                args += ["--text", case.text]
            r = runner.invoke(app, [*args, "--json"])
            yield f"{suite.name}/{case.id} check --json", f"exit {r.exit_code} {_compact(_json(r))}"
    for bad in BAD_INPUT:
        for command in ("lookup", "check"):
            r = runner.invoke(app, [command, bad])
            first = (r.stderr or r.output).strip().splitlines()
            yield f"{command} {bad}", f"exit {r.exit_code} {first[0] if first else ''}"


def _json(result: Any) -> Any:
    try:
        return json.loads(result.stdout)
    except ValueError:
        return {"stdout": result.stdout.strip(), "stderr": (result.stderr or "").strip()}


def build() -> dict[str, list[tuple[str, str]]]:
    """Every record of the snapshot, per file, in a stable order."""
    # The CLI reads its data dir from the environment: an empty one, so no CMS import
    # on this machine changes the result.
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("ADVISOR_DATA_DIR")
        os.environ["ADVISOR_DATA_DIR"] = tmp
        try:
            from advisor.evaluation.suite import load_suites
            from knowledge.catalog import clear_cache, load_catalog

            clear_cache()
            catalog = load_catalog()
            suites = load_suites([REPO / "suites"], catalog)
            return {
                "questions.txt": list(_questions(catalog, suites)),
                "claims.txt": list(_claims(catalog)),
                "cli.txt": list(_cli(suites)),
            }
        finally:
            if old is None:
                os.environ.pop("ADVISOR_DATA_DIR", None)
            else:
                os.environ["ADVISOR_DATA_DIR"] = old
            clear_cache()


def render(records: list[tuple[str, str]]) -> str:
    """The file text: one ``key<TAB>value`` line per record."""
    return "".join(f"{k}\t{v}\n" for k, v in records)


def parse(text: str) -> dict[str, str]:
    """Records of a snapshot file, by key."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        out[key] = value
    return out


def diff(name: str, stored: dict[str, str], now: dict[str, str], limit: int = 40) -> list[str]:
    """Readable differences of one file: records added, removed and changed (first ``limit``)."""
    out: list[str] = []
    for key in list(stored) + [k for k in now if k not in stored]:
        old, new = stored.get(key), now.get(key)
        if old == new:
            continue
        if len(out) >= limit * 3:
            out.append("  ...")
            break
        out.append(f"{name}: {key}")
        if old is None:
            out.append(f"    + {new}")
            continue
        if new is None:
            out.append(f"    - {old}")
            continue
        out.append(f"    - {_short(old)}\n    + {_short(new)}")
        out.extend(f"      {line}" for line in _what_changed(old, new))
    return out


def _short(value: str, limit: int = 300) -> str:
    return value if len(value) <= limit else value[:limit] + " ..."


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{path}[{i}]"))
        return out or {path: []}
    return {path: value}


def _what_changed(old: str, new: str, limit: int = 12) -> list[str]:
    """The parts that differ: JSON paths for a JSON record, words otherwise."""
    o_head, _, o_json = old.partition(" {")
    n_head, _, n_json = new.partition(" {")
    try:
        o, n = _flat(json.loads("{" + o_json)), _flat(json.loads("{" + n_json))
    except ValueError:
        gone = [t for t in old.split() if t not in new.split()]
        came = [t for t in new.split() if t not in old.split()]
        return [f"(gone: {' '.join(gone) or '-'}; new: {' '.join(came) or '-'})"]
    lines = [f"{o_head} -> {n_head}"] if o_head != n_head else []
    for key in list(o) + [k for k in n if k not in o]:
        if o.get(key, "<none>") != n.get(key, "<none>"):
            lines.append(f"{key}: {_short(repr(o.get(key, '<none>')), 120)} -> "
                         f"{_short(repr(n.get(key, '<none>')), 120)}")
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def main(argv: list[str] | None = None) -> int:
    """Write the snapshot (--write) or compare with it."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--write", action="store_true", help="rewrite the stored snapshot")
    args = p.parse_args(argv)
    built = build()
    problems: list[str] = []
    for name in FILES:
        path = HERE / name
        text = render(built[name])
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)} ({len(built[name])} records)")
        else:
            stored = parse(path.read_text(encoding="utf-8")) if path.exists() else {}
            problems += diff(name, stored, dict(built[name]))
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
