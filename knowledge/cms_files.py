"""Reading the CMS files: the header row found by its column names, rows from .xlsx, .csv or
tab-delimited .txt, cells parsed and checked, and the release quarter a file name states.

The store they are imported into is :mod:`knowledge.cms`.
"""


from __future__ import annotations

import csv
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from knowledge.codes import OFFICIAL_CODE
from knowledge.schema import (
    Adjudication,
)

CmsKind = Literal["ptp", "mue", "aoc"]
ProgressFn = Callable[[Path, int], None]
_Rows = Generator[list[object], None, None]
"""Called as ``progress(file, rows_read)`` every few thousand rows and once at the end."""


# The real files carry a dozen or so notice lines; a header further down than this is
# not a CMS file, and stopping bounds the work done on a wrong file.
HEADER_SCAN_ROWS = 100
BATCH_ROWS = 5000
PROGRESS_EVERY = 50_000

# Shape of a HCPCS/CPT code in the CMS files. Wider than schema.CODE_RE: the files also
# hold PLA (0001U), MAAA (0001M) and Category II codes, which are stored but cannot be
# represented by the schema's Code type, so load_store leaves them out.
_CODE_SHAPE = re.compile(rf"^(?:{OFFICIAL_CODE})$")

_ADJUDICATION = {
    1: (Adjudication.LINE, "line"),
    2: (Adjudication.DATE_POLICY, "day"),
    3: (Adjudication.DATE_CLINICAL, "day"),
}


class CmsImportError(ValueError):
    """A CMS file cannot be imported; the message names the file, row and column.

    ``file`` is the path given, ``row`` the 1-based row as a spreadsheet shows it (None
    when the problem is the whole file) and ``column`` the column's name (or None).
    """

    def __init__(
        self, file: Path, detail: str, row: int | None = None, column: str | None = None
    ) -> None:
        """Keep the location; the message reads ``ptp.csv row 14: ...``."""
        self.file = file
        self.row = row
        self.column = column
        self.detail = detail
        where = file.name if row is None else f"{file.name} row {row}"
        super().__init__(f"{where}: {detail}")


# -- header matching -------------------------------------------------------------------------


def _fold(value: object) -> str:
    """A header cell reduced to lowercase letters and digits ("Column\\n 2*" -> "column2")."""
    if value is None:
        return ""
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


@dataclass(frozen=True)
class _Col:
    key: str
    label: str
    required: bool
    match: Callable[[str], bool]


def _has(*parts: str, start: str = "", without: tuple[str, ...] = ()) -> Callable[[str], bool]:
    def match(h: str) -> bool:
        return (
            h.startswith(start) and all(p in h for p in parts) and not any(w in h for w in without)
        )

    return match


_COLUMNS: dict[CmsKind, tuple[_Col, ...]] = {
    "ptp": (
        _Col("column1", "Column 1", True, _has(start="column1", without=("column2",))),
        _Col("column2", "Column 2", True, _has(start="column2")),
        _Col("prior", "prior-1996 flag", False, _has("1996")),
        _Col("effective", "Effective Date", True, _has(start="effective")),
        _Col("deleted", "Deletion Date", True, _has(start="deletion")),
        _Col("indicator", "Modifier indicator", True, _has(start="modifier")),
        _Col("rationale", "PTP Edit Rationale", False, _has("rationale")),
    ),
    "mue": (
        _Col("code", "HCPCS/CPT Code", True, _has("hcpcs")),
        _Col("value", "MUE value", True, _has("muevalue")),
        _Col("adjudication", "MUE Adjudication Indicator", True, _has("adjudication")),
        _Col("rationale", "MUE Rationale", False, _has("rationale")),
    ),
    "aoc": (
        _Col("addon", "Add-on Code", True, _has(start="addon", without=("date",))),
        _Col(
            "addon_effective", "Add-on Code Effective Date", False, _has("effective", start="addon")
        ),
        _Col("addon_deleted", "Add-on Code Deletion Date", False, _has("deletion", start="addon")),
        _Col("primary", "Primary Code", True, _has(start="primary", without=("date",))),
        _Col(
            "primary_effective",
            "Primary Code Effective Date",
            False,
            _has("effective", start="primary"),
        ),
        _Col(
            "primary_deleted",
            "Primary Code Deletion Date",
            False,
            _has("deletion", start="primary"),
        ),
        _Col("edit_type", "AOC Edit Type", True, _has("edittype")),
        _Col("edit_effective", "AOC Edit Effective Date", False, _has("edit", "effective")),
        _Col("edit_deleted", "AOC Edit Deletion Date", False, _has("edit", "deletion")),
        _Col("notes", "Special Instruction Notes", False, _has("note")),
    ),
}


@dataclass
class _HeaderMatch:
    kind: CmsKind
    index: dict[str, int]
    texts: dict[str, str]
    missing: list[str]


def _match_header(cells: Sequence[object]) -> _HeaderMatch | None:
    """The best reading of a row as a header: complete, or the nearest partial one."""
    best: _HeaderMatch | None = None
    best_found = 1  # a partial match needs two required columns to count as a near miss
    for kind, cols in _COLUMNS.items():
        index: dict[str, int] = {}
        texts: dict[str, str] = {}
        for pos, cell in enumerate(cells):
            folded = _fold(cell)
            # Long cells are notice prose, never a column name.
            if not folded or len(folded) > 120:
                continue
            for col in cols:
                if col.key not in index and col.match(folded):
                    index[col.key] = pos
                    texts[col.key] = str(cell)
                    break
        missing = [c.label for c in cols if c.required and c.key not in index]
        found = sum(1 for c in cols if c.required and c.key in index)
        if not missing:
            return _HeaderMatch(kind, index, texts, [])
        if found > best_found:
            best, best_found = _HeaderMatch(kind, index, texts, missing), found
    return best


def _merge_rows(upper: Sequence[object], lower: Sequence[object]) -> list[object]:
    """Two rows read as one header (some exports split a header over two rows)."""
    width = max(len(upper), len(lower))
    merged: list[object] = []
    for i in range(width):
        parts = [str(r[i]) for r in (upper, lower) if i < len(r) and r[i] not in (None, "")]
        merged.append(" ".join(parts) if parts else None)
    return merged


# -- file readers ----------------------------------------------------------------------------


def _read_rows(path: Path) -> _Rows:
    """Rows of a file as lists of cell values, whatever the format."""
    if not path.exists():
        raise CmsImportError(path, "file not found")
    if not path.is_file():
        raise CmsImportError(path, "not a file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path)
    if suffix == ".xls":
        raise CmsImportError(path, "old .xls workbooks are not read; save it as .xlsx or .csv")
    if suffix == ".zip":
        raise CmsImportError(path, "unzip the CMS download and import the files inside")
    return _text_rows(path, suffix)


def _xlsx_rows(path: Path) -> _Rows:
    import openpyxl

    try:
        book: Any = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise CmsImportError(path, f"not a readable .xlsx workbook ({exc})") from exc
    try:
        if not book.worksheets:
            return
        sheet = book.worksheets[0]
        # Some writers store a wrong sheet size; without this read-only mode stops early.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        row_no = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as exc:
                raise CmsImportError(
                    path, f"the workbook is damaged ({exc})", row=row_no + 1
                ) from exc
            row_no += 1
            yield list(row)
    finally:
        book.close()


def _looks_utf8(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still UTF-8.
        return exc.start >= len(sample) - 3
    return True


def _text_rows(path: Path, suffix: str) -> _Rows:
    with path.open("rb") as raw:
        sample = raw.read(1 << 16)
    # The notices carry (c) and (R) signs: UTF-8 in recent files, Windows-1252 in older.
    encoding = "utf-8-sig" if _looks_utf8(sample) else "cp1252"
    if suffix == ".csv":
        delimiter = "\t" if b"\t" in sample and b"," not in sample else ","
    else:
        delimiter = "\t" if b"\t" in sample else ","
    return _csv_rows(path, encoding, delimiter)


def _csv_rows(path: Path, encoding: str, delimiter: str) -> _Rows:
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        row_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CmsImportError(
                    path, f"cannot be read as text rows ({exc})", row_no + 1
                ) from exc
            row_no += 1
            yield list(row)


# -- cell parsing ----------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _shown(value: object) -> str:
    text = _text(value).replace("\n", " ")
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _RowReader:
    """Parses the cells of one data row; errors carry file, row and column."""

    def __init__(self, path: Path, header: _HeaderMatch) -> None:
        self.path = path
        self.index = header.index
        self.labels = {c.key: c.label for c in _COLUMNS[header.kind]}
        self.cells: Sequence[object] = ()
        self.row = 0

    def fail(self, key: str, detail: str) -> CmsImportError:
        label = self.labels[key]
        return CmsImportError(self.path, f"{label} {detail}", self.row, label)

    def raw(self, key: str) -> object:
        pos = self.index.get(key)
        if pos is None or pos >= len(self.cells):
            return None
        return self.cells[pos]

    def code(self, key: str, *, optional: bool = False) -> str | None:
        value = self.raw(key)
        text = _text(value).upper()
        if not text:
            if optional:
                return None
            raise self.fail(key, "is empty")
        # A spreadsheet that saw the column as numbers drops leading zeros (00100 -> 100).
        if text.isdigit() and 3 <= len(text) < 5:
            text = text.zfill(5)
        if not _CODE_SHAPE.match(text):
            if optional:
                return None
            raise self.fail(key, f"{_shown(value)} is not a code")
        return text

    def day(self, key: str) -> str | None:
        """An ISO date, or None for an empty cell or '*' (no date)."""
        value = self.raw(key)
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        text = _text(value)
        if text in ("", "*"):
            return None
        try:
            if re.fullmatch(r"\d{8}", text):
                return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
            m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T][\d:.]+)?", text)
            if m:
                return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
            if m:
                return date(int(m[3]), int(m[1]), int(m[2])).isoformat()
        except ValueError:
            pass
        raise self.fail(key, f"{_shown(value)} is not a date (YYYYMMDD)")

    def number(
        self, key: str, allowed: Iterable[int] | None, expect: str, *, lead: bool = False
    ) -> int:
        value = self.raw(key)
        text = _text(value)
        if not text:
            raise self.fail(key, f"is empty (expected {expect})")
        # MUE and AOC cells read "1 Line Edit" or "3 Date of Service Edit: Clinical".
        m = re.match(r"(\d+)(?:\D|$)", text) if lead else re.fullmatch(r"(\d+)", text)
        if m is None or (allowed is not None and int(m[1]) not in allowed):
            raise self.fail(key, f"{_shown(value)} is not {expect}")
        return int(m[1])

    def note(self, key: str) -> str | None:
        text = _text(self.raw(key))
        return " ".join(text.split()) or None


def _parse_ptp(r: _RowReader) -> tuple[object, ...]:
    c1, c2 = r.code("column1"), r.code("column2")
    indicator = r.number("indicator", (0, 1, 9), "0, 1 or 9")
    prior = _text(r.raw("prior")) == "*"
    return (
        c1,
        c2,
        int(prior),
        r.day("effective"),
        r.day("deleted"),
        indicator,
        r.note("rationale"),
    )


def _adjudication(r: _RowReader) -> int:
    text = _text(r.raw("adjudication")).lower()
    # Tolerate an indicator written out without its number.
    for word, value in (("line", 1), ("policy", 2), ("clinical", 3)):
        if text and not text[0].isdigit() and word in text:
            return value
    return r.number(
        "adjudication",
        (1, 2, 3),
        "1 (line), 2 (date of service: policy) or 3 (date: clinical)",
        lead=True,
    )


def _parse_mue(r: _RowReader) -> tuple[object, ...]:
    code = r.code("code")
    value = r.number("value", None, "a whole number of units")
    return (code, value, _adjudication(r), r.note("rationale"))


def _parse_aoc(r: _RowReader) -> tuple[object, ...]:
    addon = r.code("addon")
    edit_type = r.number("edit_type", (1, 2, 3), "1, 2 or 3")
    # Type 2 lists no primaries: the file holds a placeholder (e.g. CCCCC) or nothing.
    primary = r.code("primary", optional=edit_type == 2)
    return (
        addon,
        primary,
        edit_type,
        r.day("addon_effective"),
        r.day("addon_deleted"),
        r.day("primary_effective"),
        r.day("primary_deleted"),
        r.day("edit_effective"),
        r.day("edit_deleted"),
        r.note("notes"),
    )


_PARSERS: dict[CmsKind, Callable[[_RowReader], tuple[object, ...]]] = {
    "ptp": _parse_ptp,
    "mue": _parse_mue,
    "aoc": _parse_aoc,
}


def _active(row: tuple[object, ...], kind: CmsKind, on: str) -> bool:
    """Whether a stored row is in effect on an ISO date (deletion date = last day in effect)."""
    if kind == "ptp":
        spans = [(row[3], row[4])]
    elif kind == "aoc":
        spans = [(row[3], row[4]), (row[5], row[6]), (row[7], row[8])]
    else:
        return True
    return all(
        (start is None or str(start) <= on) and (end is None or str(end) >= on)
        for start, end in spans
    )


# -- release labels --------------------------------------------------------------------------


def quarter_from_name(name: str) -> str | None:
    """The release quarter a CMS file name states, e.g. 'ccipra-v323r0-f1.xlsx' -> '2026Q4'.

    Understood: NCCI versions (vYYQ: v32.3 is the fourth quarter of 2026), 'Eff_10-01-2026'
    style effective dates, and labels like 'V2026Q4' or '2026-Q4'.
    """
    lower = name.lower()
    m = re.search(r"(20\d\d)[\s_-]*q([1-4])", lower)
    if m:
        return f"{m[1]}Q{m[2]}"
    # NCCI versions count years from 1994 (v26.0 took effect in January 2020).
    m = re.search(r"(?<![a-z0-9])v(\d{2})\.?([0-3])(?:r\d+)?(?![0-9])", lower)
    if m:
        return f"{1994 + int(m[1])}Q{int(m[2]) + 1}"
    m = re.search(r"(?<!\d)(\d{1,2})[-_.](\d{1,2})[-_.](20\d\d)(?!\d)", lower)
    if m and 1 <= int(m[1]) <= 12:
        return f"{m[3]}Q{(int(m[1]) - 1) // 3 + 1}"
    m = re.search(r"(?<!\d)(20\d\d)[-_]?(\d{2})[-_]?(\d{2})(?!\d)", lower)
    if m and 1 <= int(m[2]) <= 12:
        return f"{m[1]}Q{(int(m[2]) - 1) // 3 + 1}"
    return None


