"""Many claims at once: one line of a file is one claim (``advisor check --file``, the web
app's claim box with several lines).

What a file may hold:

- plain lines: each non-blank line is one claim, keyed as for ``advisor check``
  (``20610 76942``, ``93971-50 37253x6``, ``20610+76942``) or, when it holds words, a
  drafted sentence whose codes are the claim; ``#`` starts a comment line;
- CSV (a ``.csv`` file, or a first line that is a header naming a ``code`` column): each row
  is one claim line (the code cell may hold a keyed line such as ``93971-50`` or
  ``37253x6``; ``modifier``/``mod1``... and ``units`` columns are read too). Rows with the
  same value in an id column (``id``, ``claim_id``, ``claim``, ``encounter``,
  ``encounter_id``) are one claim; without an id column a blank line ends a claim, and a
  file without any blank line has one claim per row.

Each claim is checked on its own by the same front door as a single claim
(:func:`guardrails.check_claim`); a claim seen before in the batch is not checked again (the
checker is deterministic for a catalog), which is what makes large batches fast.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.codes import MalformedCode, parse_claim_lines

if TYPE_CHECKING:
    from guardrails.repair import Outcome
    from knowledge.catalog import Catalog

ID_COLUMNS = ("id", "claim_id", "claim", "encounter", "encounter_id")
CODE_COLUMNS = ("code", "codes", "cpt", "hcpcs", "cpt_code", "procedure_code")
MODIFIER_COLUMNS = ("modifier", "modifiers", "mod", "mod1", "mod2", "mod3", "mod4")
UNIT_COLUMNS = ("units", "unit", "qty", "quantity")

# Three letters in a row never occur in a keyed claim line (codes, modifiers, xUNITS): such
# a line is a drafted sentence, read for the codes it names.
_WORDS_RE = re.compile(r"[A-Za-z]{3,}")
# '20610+76942' is two lines, as '20610 76942' ('+76937' alone keeps its add-on mark).
_PLUS_RE = re.compile(r"(?<=[0-9A-Za-z])\+")

VERDICTS = ("pass", "review", "fail", "empty", "error")


@dataclass(frozen=True, slots=True)
class ClaimInput:
    """One claim read from a batch: where it was, what was keyed, or why it is not a claim."""

    line: int  # 1-based line of the file where the claim starts
    keyed: str = ""  # the claim lines as keyed ('' for a drafted sentence)
    text: str = ""  # a drafted sentence whose codes are the claim
    id: str | None = None  # the id column's value (CSV)
    error: str | None = None  # why this is not a claim (bad input)


def split_keyed(text: str) -> list[str]:
    """Keyed claim text as tokens for ``parse_claim_lines``: '20610+76942' as two lines."""
    return [_PLUS_RE.sub(" ", text)]


def is_sentence(text: str) -> bool:
    """True when a line is words (a drafted sentence), not keyed claim lines."""
    return _WORDS_RE.search(text) is not None


def _claim(line: int, raw: str, claim_id: str | None = None) -> ClaimInput:
    raw = raw.strip()
    if is_sentence(raw):
        return ClaimInput(line, text=raw, id=claim_id)
    return ClaimInput(line, keyed=raw, id=claim_id)


def read_plain(lines: Iterable[str]) -> Iterator[ClaimInput]:
    """One claim per non-blank, non-comment line."""
    for n, raw in enumerate(lines, 1):
        s = raw.strip()
        if s and not s.startswith("#"):
            yield _claim(n, s)


def _header(row: list[str]) -> dict[str, list[int]] | None:
    """Column roles of a CSV header row, or None when it names no code column."""
    names = [c.strip().lower().replace(" ", "_") for c in row]
    roles: dict[str, list[int]] = {"id": [], "code": [], "mod": [], "units": []}
    for i, name in enumerate(names):
        for role, options in (("id", ID_COLUMNS), ("code", CODE_COLUMNS),
                              ("mod", MODIFIER_COLUMNS), ("units", UNIT_COLUMNS)):
            if name in options:
                roles[role].append(i)
    return roles if roles["code"] else None


def looks_like_csv_header(first_line: str) -> bool:
    """True when a first line is a CSV header naming a code column ('id,code,units', or
    'code' alone)."""
    return _header(next(csv.reader([first_line]), [])) is not None


def _row_keyed(row: list[str], roles: dict[str, list[int]]) -> str:
    """A CSV row as keyed: '93971-50x2' from code 93971, modifier 50, units 2."""
    cell = " ".join(row[i].strip() for i in roles["code"] if i < len(row)).strip()
    mods = [m.strip() for i in roles["mod"] if i < len(row)
            for m in re.split(r"[\s,;]+", row[i]) if m.strip()]
    units = next((row[i].strip() for i in roles["units"] if i < len(row) and row[i].strip()),
                 "")
    if not cell:
        return ""
    out = cell + "".join(f"-{m.lstrip('-')}" for m in mods)
    if units and units != "1":
        out += f"x{units}"
    return out


def read_csv(lines: Iterable[str]) -> Iterator[ClaimInput]:
    """Claims from CSV rows: grouped by an id column, else by blank lines, else one per row."""
    rows = list(enumerate(csv.reader(lines), 1))
    head = next(((n, r) for n, r in rows if any(c.strip() for c in r)), None)
    if head is None:
        return
    roles = _header(head[1])
    if roles is None:
        yield ClaimInput(head[0], error="the CSV header names no code column (one of "
                         + ", ".join(CODE_COLUMNS) + ")")
        return
    body = [(n, r) for n, r in rows if n > head[0]]
    if roles["id"]:
        groups: dict[str, tuple[int, list[str]]] = {}
        for n, r in body:
            if not any(c.strip() for c in r):
                continue
            key = " ".join(r[i].strip() for i in roles["id"] if i < len(r))
            keyed = _row_keyed(r, roles)
            start, parts = groups.setdefault(key, (n, []))
            if keyed:
                parts.append(keyed)
        for key, (start, parts) in groups.items():
            yield _claim(start, " ".join(parts), key or None)
        return
    blanks = any(not any(c.strip() for c in r) for _, r in body)
    start, parts = 0, []
    for n, r in body:
        if not any(c.strip() for c in r):
            if parts:
                yield _claim(start, " ".join(parts))
            start, parts = 0, []
            continue
        keyed = _row_keyed(r, roles)
        if not keyed:
            continue
        if not blanks:
            yield _claim(n, keyed)
            continue
        start = start or n
        parts.append(keyed)
    if parts:
        yield _claim(start, " ".join(parts))


def read_lines(path: Path) -> list[str]:
    """The lines of a claims file, or of stdin for '-' (a byte-order mark is dropped)."""
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    return path.read_text(encoding="utf-8-sig").splitlines()


def read_claims(lines: list[str], *, csv_mode: bool | None = None) -> Iterator[ClaimInput]:
    """Claims from a file's lines; ``csv_mode`` None decides by the first non-blank line."""
    if csv_mode is None:
        first = next((ln for ln in lines if ln.strip()), "")
        csv_mode = looks_like_csv_header(first)
    return read_csv(lines) if csv_mode else read_plain(lines)


# ---------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------


@dataclass
class ClaimResult:
    """One claim's check: the verdict ('empty' when it named no code, 'error' for bad
    input), the outcome when there was one, and the result as a JSON object."""

    claim: ClaimInput
    verdict: str
    outcome: Outcome | None
    data: dict[str, Any]
    checked: _Checked | None = None

    def data_json(self) -> str:
        """``data`` as JSON, made once per distinct claim of the batch."""
        if self.checked is None:
            return json.dumps(self.data, default=str)
        if self.checked.json is None:
            self.checked.json = json.dumps(self.data, default=str)
        return self.checked.json


@dataclass
class _Checked:
    verdict: str
    outcome: Outcome | None
    data: dict[str, Any]
    json: str | None = None


@dataclass
class Summary:
    """How many claims had each verdict, and how many the fixes changed."""

    counts: Counter[str] = field(default_factory=Counter)
    changed: int = 0

    @property
    def claims(self) -> int:
        return sum(self.counts.values())

    def add(self, result: ClaimResult) -> None:
        self.counts[result.verdict] += 1
        self.changed += bool(result.data.get("claim_changed"))

    def to_dict(self) -> dict[str, int]:
        return {"claims": self.claims, **{v: self.counts[v] for v in VERDICTS},
                "changed": self.changed}

    def text(self) -> str:
        parts = [f"{self.counts[v]:,} {v}" for v in VERDICTS if self.counts[v]]
        return (f"{self.claims:,} claim{'s' if self.claims != 1 else ''}: "
                + (", ".join(parts) or "none") + f"; {self.changed:,} corrected")

    def exit_code(self) -> int:
        """2 when a line was bad input, 1 when a claim did not pass, else 0."""
        if self.counts["error"]:
            return 2
        return 0 if self.counts["pass"] == self.claims else 1


def empty_result(outcome: Outcome) -> bool:
    """True when the check had nothing to look at: no code, and nothing said of one."""
    return not outcome.first.draft.codes and not outcome.verdicts and not outcome.findings


def checked_data(outcome: Outcome) -> dict[str, Any]:
    """An outcome as JSON, with verdict 'empty' and a message when nothing was checked."""
    data = outcome.to_dict()
    if empty_result(outcome):
        data["verdict"] = "empty"
        data["message"] = "Nothing was checked: no code was found."
    return data


class BatchChecker:
    """Checks claims one by one; a claim keyed or written the same way as one before is
    answered from the first check (same catalog, same result)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._seen: dict[tuple[str, str], _Checked] = {}
        self._by_lines: dict[tuple[Any, ...], _Checked] = {}

    def _check_keyed(self, keyed: str) -> _Checked:
        from guardrails import check_claim

        try:
            lines = tuple(parse_claim_lines(split_keyed(keyed)))
        except MalformedCode as exc:
            return _Checked("error", None, {"verdict": "error", "error": str(exc)})
        hit = self._by_lines.get(lines)
        if hit is None:
            outcome = check_claim(list(lines), self.catalog)
            data = checked_data(outcome)
            hit = self._by_lines[lines] = _Checked(str(data["verdict"]), outcome, data)
        return hit

    def _check_text(self, text: str) -> _Checked:
        from guardrails import check_claim

        outcome = check_claim([], self.catalog, text=text)
        data = checked_data(outcome)
        return _Checked(str(data["verdict"]), outcome, data)

    def check(self, claim: ClaimInput) -> ClaimResult:
        if claim.error is not None:
            return ClaimResult(claim, "error", None, {"verdict": "error", "error": claim.error})
        key = (claim.keyed, claim.text)
        hit = self._seen.get(key)
        if hit is None:
            hit = self._check_text(claim.text) if claim.text else self._check_keyed(claim.keyed)
            self._seen[key] = hit
        return ClaimResult(claim, hit.verdict, hit.outcome, hit.data, hit)


def check_all(claims: Iterable[ClaimInput], catalog: Catalog) -> Iterator[ClaimResult]:
    """Each claim checked on its own, in order."""
    checker = BatchChecker(catalog)
    for claim in claims:
        yield checker.check(claim)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def json_line(result: ClaimResult) -> str:
    """One claim's result as a JSON line: where it was, what was keyed, then the check."""
    c = result.claim
    head = json.dumps({"line": c.line, "id": c.id, "claim": c.keyed or c.text})
    body = result.data_json()
    return head[:-1] + ", " + body[1:] if body != "{}" else head


def results_json(results: Iterable[ClaimResult]) -> dict[str, Any]:
    """Several claims' results as one JSON object: {"claims": [...], "summary": {...}}."""
    summary = Summary()
    out = []
    for r in results:
        summary.add(r)
        out.append({"line": r.claim.line, "id": r.claim.id,
                    "claim": r.claim.keyed or r.claim.text, **r.data})
    return {"claims": out, "summary": summary.to_dict()}


def text_block(result: ClaimResult) -> str:
    """One claim's result as text: a line with the verdict (and the corrected claim), then
    the findings that are not informational, indented."""
    c = result.claim
    where = f"line {c.line}" + (f" ({c.id})" if c.id else "")
    shown = c.keyed or c.text
    if result.verdict == "error":
        return f"{where}: {shown}  BAD INPUT: {result.data['error']}"
    if result.verdict == "empty":
        return f"{where}: {shown}  NOTHING CHECKED: no code was found"
    data = result.data
    head = f"{where}: {shown}  {result.verdict.upper()}"
    if data.get("claim_changed"):
        head += f"; corrected claim: {data['corrected_claim_text'] or '(nothing billable)'}"
    out = [head]
    out.extend(
        f"    [{f['severity'].upper()}] {f['rule']} ({'+'.join(f['codes']) or 'text'}): "
        f"{f['message']}"
        for f in data["findings"] if f["severity"] != "info"
    )
    return "\n".join(out)


def run(
    lines: list[str], catalog: Catalog, write: Any, *, as_json: bool = False,
    csv_mode: bool | None = None,
) -> Summary:
    """Check every claim of a file and write one result per claim, then the summary (as
    text, or JSON lines ending with ``{"summary": {...}}``); ``write`` takes a string."""
    summary = Summary()
    for result in check_all(read_claims(lines, csv_mode=csv_mode), catalog):
        summary.add(result)
        write((json_line(result) if as_json else text_block(result)) + "\n")
    if as_json:
        write(json.dumps({"summary": summary.to_dict()}) + "\n")
    else:
        write(("\n" if summary.claims else "") + summary.text() + "\n")
    return summary
