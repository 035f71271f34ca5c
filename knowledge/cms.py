"""Importers for the quarterly CMS practitioner files and the local store they fill.

Three files are understood, each as .xlsx, .csv or tab-delimited .txt:

* NCCI PTP edits (practitioner): Column 1, Column 2, prior-1996 flag, Effective Date,
  Deletion Date, Modifier indicator, PTP Edit Rationale.
* MUE (practitioner services): HCPCS/CPT Code, MUE value, MUE Adjudication Indicator,
  MUE Rationale.
* Add-on code edits: Add-on Code, Primary Code, AOC Edit Type and the effective/deletion
  dates of the add-on, the primary and the edit.

The readers are header-driven: the real files open with notice lines, and their header
cells hold line breaks and footnotes, so the header row is found by matching known column
names after folding case, spaces and punctuation. The kind of file is detected from that
header. Every row is imported (no filtering to codes of interest); :func:`load_store`
returns the rows active on a date, which :mod:`knowledge.catalog` overlays on the built-in
edits.

The store is one SQLite file under the CMS data folder. An import runs in a single
transaction that is committed only after every given file has been read and validated to
the end, so a malformed file raises :class:`CmsImportError` and leaves what was imported
before untouched. Rows are streamed into the transaction in batches rather than collected
first, which keeps memory flat for the multi-million-row PTP files.

Pass all parts of a multi-part release (the PTP edits come split by code range) in one
:func:`import_files` call: files of one kind in the same call are combined, and a later
call replaces every row of the kinds it imports.
"""

from __future__ import annotations

import csv
import errno
import gc
import itertools
import re
import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from knowledge.schema import (
    CODE_RE,
    Adjudication,
    Confidence,
    ModifierIndicator,
    PairEdit,
    PairRelation,
    UnitLimit,
)

CmsKind = Literal["ptp", "mue", "aoc"]
ProgressFn = Callable[[Path, int], None]
_Rows = Generator[list[object], None, None]
"""Called as ``progress(file, rows_read)`` every few thousand rows and once at the end."""

STORE_FILE = "cms.sqlite3"
KIND_TITLES: dict[CmsKind, str] = {
    "ptp": "NCCI PTP",
    "mue": "MUE",
    "aoc": "add-on code",
}
SOURCE_KEYS: dict[CmsKind, str] = {"ptp": "CMS_NCCI_PTP", "mue": "CMS_MUE", "aoc": "CMS_AOC"}
_SHORT: dict[str, str] = {"ptp": "PTP", "mue": "MUE", "aoc": "AOC"}

# The real files carry a dozen or so notice lines; a header further down than this is
# not a CMS file, and stopping bounds the work done on a wrong file.
HEADER_SCAN_ROWS = 100
BATCH_ROWS = 5000
PROGRESS_EVERY = 50_000
_SCHEMA_VERSION = 1

# Shape of a HCPCS/CPT code in the CMS files. Wider than schema.CODE_RE: the files also
# hold PLA (0001U), MAAA (0001M) and Category II codes, which are stored but cannot be
# represented by the schema's Code type, so load_store leaves them out.
_CODE_SHAPE = re.compile(r"^(?:\d{4}[0-9A-Z]|[A-Z]\d{4})$")
_ALLOW_WITH_1 = (
    "Both codes may be paid when an NCCI PTP-associated modifier (such as 59 or XE/XS/XP/XU) "
    "marks a distinct service and the record supports it."
)
_NO_RATIONALE = "CMS NCCI PTP edit (no rationale given)."
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


class CmsStoreError(RuntimeError):
    """The local CMS store cannot be read or written (not a problem of an imported file)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AocPrimaries(_Frozen):
    """The primary codes CMS lists for one add-on code, as active on the store's date."""

    primaries: frozenset[str] = Field(description="Listed primary codes (types 1 and 3).")
    exhaustive: bool = Field(
        description="Only the listed primaries are valid (every active edit is type 1)."
    )
    edit_types: frozenset[int] = Field(description="AOC edit types seen for the add-on (1-3).")


class CmsStore(_Frozen):
    """Imported CMS rows active on ``as_of``, in the shapes the catalog overlays."""

    quarter: str | None = Field(description="Release label, e.g. 2026Q4, or one per kind.")
    quarters: dict[str, str] = Field(description="Release label per imported kind.")
    as_of: date = Field(description="Date the active rows were selected for.")
    ptp: list[PairEdit] = Field(description="PTP edits with origin 'cms', in file order.")
    mue: dict[str, UnitLimit] = Field(description="Practitioner MUE per code.")
    aoc: dict[str, AocPrimaries] = Field(description="Add-on code -> its CMS primaries.")


class ImportResult(_Frozen):
    """What one imported file held."""

    kind: CmsKind = Field(description="ptp, mue or aoc, detected from the header.")
    file: Path = Field(description="The file imported.")
    rows_read: int = Field(ge=0, description="Data rows read after the header.")
    rows_kept: int = Field(ge=0, description="Rows stored (every valid data row).")
    rows_active: int = Field(ge=0, description="Stored rows in effect on the import date.")
    quarter: str = Field(description="Release label from the file name, else the import date.")


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


# -- store -----------------------------------------------------------------------------------

_TABLES: dict[CmsKind, tuple[str, ...]] = {
    "ptp": ("column1", "column2", "prior_1996", "effective", "deleted", "indicator", "rationale"),
    "mue": ("code", "value", "adjudication", "rationale"),
    "aoc": (
        "addon",
        "primary_code",
        "edit_type",
        "addon_effective",
        "addon_deleted",
        "primary_effective",
        "primary_deleted",
        "edit_effective",
        "edit_deleted",
        "notes",
    ),
}
_DDL = """
CREATE TABLE IF NOT EXISTS imports (
    kind TEXT PRIMARY KEY, quarter TEXT NOT NULL, files TEXT NOT NULL,
    imported TEXT NOT NULL, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ptp (
    column1 TEXT NOT NULL, column2 TEXT NOT NULL, prior_1996 INTEGER NOT NULL,
    effective TEXT, deleted TEXT, indicator INTEGER NOT NULL, rationale TEXT);
CREATE TABLE IF NOT EXISTS mue (
    code TEXT NOT NULL, value INTEGER NOT NULL, adjudication INTEGER NOT NULL, rationale TEXT);
CREATE TABLE IF NOT EXISTS aoc (
    addon TEXT NOT NULL, primary_code TEXT, edit_type INTEGER NOT NULL,
    addon_effective TEXT, addon_deleted TEXT, primary_effective TEXT, primary_deleted TEXT,
    edit_effective TEXT, edit_deleted TEXT, notes TEXT);
"""


def _insert_sql(kind: CmsKind) -> str:
    cols = _TABLES[kind]
    return f"INSERT INTO {kind} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608


@dataclass
class _Batch:
    """State of one import_files call: which kinds were cleared, what each kind came from."""

    con: sqlite3.Connection
    today: date
    cleared: set[str]
    files: dict[str, list[str]]
    quarters: dict[str, tuple[str, bool]]  # kind -> (label, label came from a file name)
    rows: dict[str, int]


def _import_one(batch: _Batch, path: Path, progress: ProgressFn | None) -> ImportResult:
    source = _read_rows(path)
    try:
        return _import_rows(batch, path, source, progress)
    finally:
        # Close the workbook or text file now, not when the generator is collected.
        source.close()


def _import_rows(
    batch: _Batch, path: Path, source: _Rows, progress: ProgressFn | None
) -> ImportResult:
    rows: Iterator[tuple[int, list[object]]] = enumerate(source, start=1)
    header: _HeaderMatch | None = None
    near: tuple[int, _HeaderMatch] | None = None
    previous: list[object] | None = None
    header_cells: list[object] | None = None
    seen_any = False
    for row_no, cells in rows:
        if any(_text(c) for c in cells):
            seen_any = True
        found = single = _match_header(cells)
        if (found is None or found.missing) and previous is not None:
            merged = _match_header(_merge_rows(previous, cells))
            if merged is not None and not merged.missing:
                found = merged
        if found is not None and not found.missing:
            header = found
            header_cells = cells if found is single else None
            break
        if found is not None and near is None:
            near = (row_no, found)
        if row_no >= HEADER_SCAN_ROWS:
            break
        previous = cells
    if header is None:
        if not seen_any:
            raise CmsImportError(path, "the file is empty")
        if near is not None:
            row_no, partial = near
            missing = ", ".join(repr(m) for m in partial.missing)
            raise CmsImportError(
                path,
                f"the {KIND_TITLES[partial.kind]} header lacks the column(s) {missing}",
                row_no,
                partial.missing[0],
            )
        raise CmsImportError(
            path,
            f"no header row found in the first {HEADER_SCAN_ROWS} rows: not an NCCI PTP, MUE "
            "or add-on code file (expected columns such as 'Column 1', 'HCPCS/CPT Code' or "
            "'Add-on Code')",
        )
    # A header split over two rows can match whole on its first row ("Effective" over
    # "Date"): a next row with an empty first column continues the header, it is not data.
    following = next(rows, None)
    if following is not None:
        first = min(header.index.values())
        cells = following[1]
        lead = _text(cells[first]) if first < len(cells) else ""
        if not lead and any(_text(c) for c in cells) and header_cells is not None:
            merged = _match_header(_merge_rows(header_cells, cells))
            if merged is not None and merged.kind == header.kind and not merged.missing:
                header = merged
                following = None
        if following is not None:
            rows = itertools.chain([following], rows)
    kind = header.kind
    if kind == "mue":
        value_header = _fold(header.texts["value"])
        if any(w in value_header for w in ("hospital", "facility", "dme", "supplier")):
            raise CmsImportError(
                path,
                "this is not the practitioner services MUE file "
                f"({' '.join(header.texts['value'].split())!r}); import the practitioner file",
            )
    quarter = quarter_from_name(path.name)
    label, from_name = (quarter, True) if quarter else (batch.today.isoformat(), False)
    if kind in batch.quarters:
        old_label, old_from_name = batch.quarters[kind]
        if from_name and old_from_name and old_label != label:
            raise CmsImportError(
                path,
                f"is release {label} but this import already holds {KIND_TITLES[kind]} release "
                f"{old_label}; import one release at a time",
            )
        if old_from_name and not from_name:
            label, from_name = old_label, old_from_name
    batch.quarters[kind] = (label, from_name)
    if kind not in batch.cleared:
        # The new release replaces the old one whole; the transaction keeps the old rows
        # if anything later fails.
        batch.con.execute(f"DELETE FROM {kind}")  # noqa: S608
        batch.cleared.add(kind)
    parse = _PARSERS[kind]
    reader = _RowReader(path, header)
    first_key = min(header.index, key=header.index.__getitem__)
    first_cell, header_key = header.index[first_key], _fold(header.texts[first_key])
    sql = _insert_sql(kind)
    on = batch.today.isoformat()
    pending: list[tuple[object, ...]] = []
    read = kept = active = 0
    for row_no, cells in rows:
        if not any(_text(c) for c in cells):
            continue
        # Files joined by hand can repeat the header; it is not data.
        if first_cell < len(cells) and _fold(cells[first_cell]) == header_key:
            continue
        read += 1
        reader.cells, reader.row = cells, row_no
        parsed = parse(reader)
        pending.append(parsed)
        kept += 1
        active += _active(parsed, kind, on)
        if len(pending) >= BATCH_ROWS:
            batch.con.executemany(sql, pending)
            pending.clear()
        if progress is not None and read % PROGRESS_EVERY == 0:
            progress(path, read)
    if pending:
        batch.con.executemany(sql, pending)
    if progress is not None:
        progress(path, read)
    batch.files.setdefault(kind, []).append(path.name)
    batch.rows[kind] = batch.rows.get(kind, 0) + kept
    return ImportResult(
        kind=kind, file=path, rows_read=read, rows_kept=kept, rows_active=active, quarter=label
    )


def _connect(db: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    else:
        con = sqlite3.connect(db)
    # Transactions are opened and closed explicitly (autocommit otherwise).
    con.isolation_level = None
    return con


def _store_hint(store_dir: Path, exc: BaseException) -> str:
    """What to do about a store that cannot be opened or written."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return (
            f"; the store is damaged: move {store_dir / STORE_FILE} aside and import the CMS "
            "files again"
        )
    denied = isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    if denied or "readonly" in text or "unable to open" in text:
        return (
            "; the folder is not writable: make it writable or set ADVISOR_DATA_DIR to a "
            "writable folder"
        )
    return ""


def import_files(
    paths: Sequence[Path],
    store_dir: Path,
    *,
    progress: ProgressFn | None = None,
    today: date | None = None,
) -> list[ImportResult]:
    """Import CMS PTP, MUE and add-on code files into the store under ``store_dir``.

    The kind of each file is detected from its header. Files of one kind in the same call
    are combined (pass every part of a split release together); each kind imported
    replaces that kind's previous rows. All files are read and validated before anything
    is committed: on a :class:`CmsImportError` the store keeps its previous contents.
    ``progress(file, rows_read)`` is called every 50,000 rows and at the end of each file.
    ``today`` (default: the current date) dates the import and counts active rows.
    """
    if not paths:
        return []
    today = today or date.today()
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        con = _connect(store_dir / STORE_FILE)
    except (OSError, sqlite3.Error) as exc:
        raise CmsStoreError(
            f"cannot open the CMS store in {store_dir}: {exc}{_store_hint(store_dir, exc)}"
        ) from exc
    try:
        con.execute("BEGIN IMMEDIATE")
        for statement in _DDL.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        batch = _Batch(con, today, set(), {}, {}, {})
        results = [_import_one(batch, Path(p), progress) for p in paths]
        for kind in batch.cleared:
            con.execute(
                "INSERT OR REPLACE INTO imports (kind, quarter, files, imported, rows) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    kind,
                    batch.quarters[kind][0],
                    "\n".join(batch.files[kind]),
                    today.isoformat(),
                    batch.rows[kind],
                ),
            )
        con.execute("COMMIT")
        return results
    except sqlite3.Error as exc:
        raise CmsStoreError(
            f"cannot write the CMS store in {store_dir}: {exc}{_store_hint(store_dir, exc)}"
        ) from exc
    finally:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()


def _combined_quarter(quarters: dict[str, str]) -> str | None:
    if not quarters:
        return None
    labels = set(quarters.values())
    if len(labels) == 1:
        return labels.pop()
    order = [k for k in _TABLES if k in quarters]
    return ", ".join(f"{_SHORT[k]} {quarters[k]}" for k in order)


def _ptp_edits(con: sqlite3.Connection, on: str) -> list[PairEdit]:
    # One validated edit per indicator; rows are copies with their own codes, dates and
    # rationale. The copies skip validation, which halves load time for a full release;
    # every row was validated on import and the code shapes are checked again below.
    templates = {
        indicator: PairEdit(
            column1="00000",
            column2="00000",
            relation=(
                PairRelation.ALLOWED
                if indicator is ModifierIndicator.NOT_APPLICABLE
                else PairRelation.BUNDLED
            ),
            modifier_indicator=indicator,
            rationale=_NO_RATIONALE,
            allow_with=_ALLOW_WITH_1 if indicator is ModifierIndicator.ALLOWED else None,
            drop_column2=indicator is ModifierIndicator.NOT_ALLOWED,
            rule_id="cms_ptp",
            origin="cms",
            sources=(SOURCE_KEYS["ptp"],),
            confidence=Confidence.HIGH,
        )
        for indicator in ModifierIndicator
    }
    rows = con.execute(
        "SELECT column1, column2, effective, deleted, indicator, rationale FROM ptp "
        "WHERE (effective IS NULL OR effective <= ?) AND (deleted IS NULL OR deleted >= ?) "
        "ORDER BY rowid",
        (on, on),
    )
    # A release repeats a few hundred dates and rationales over millions of rows: sharing
    # one object per distinct value keeps a full release's memory down.
    days: dict[str | None, date | None] = {None: None}
    notes: dict[str | None, str] = {None: _NO_RATIONALE, "": _NO_RATIONALE}
    match = CODE_RE.match
    edits: list[PairEdit] = []
    # Creating a million acyclic objects would otherwise trigger repeated full
    # collections, which cost more than the objects themselves.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for c1, c2, effective, deleted, indicator, rationale in rows:
            if not (match(c1) and match(c2)):
                continue  # stored, but outside the code shapes the schema represents
            for day in (effective, deleted):
                if day not in days:
                    days[day] = date.fromisoformat(day)
            edits.append(
                templates[ModifierIndicator(indicator)].model_copy(
                    update={
                        "column1": c1,
                        "column2": c2,
                        "rationale": notes.setdefault(rationale, rationale),
                        "effective": days[effective],
                        "deleted": days[deleted],
                    }
                )
            )
    finally:
        if collecting:
            gc.enable()
    return edits


def _mue_limits(con: sqlite3.Connection) -> dict[str, UnitLimit]:
    limits: dict[str, UnitLimit] = {}
    for code, value, adjudication, rationale in con.execute(
        "SELECT code, value, adjudication, rationale FROM mue ORDER BY rowid"
    ):
        if not CODE_RE.match(code):
            continue
        how, per = _ADJUDICATION[adjudication]
        limits[code] = UnitLimit(
            value=value,
            adjudication=how,
            per=per,
            note=rationale,
            sources=(SOURCE_KEYS["mue"],),
            confidence=Confidence.HIGH,
        )
    return limits


def _aoc_primaries(con: sqlite3.Connection, on: str) -> dict[str, AocPrimaries]:
    listed: dict[str, set[str]] = {}
    types: dict[str, set[int]] = {}
    cols = ", ".join(_TABLES["aoc"])
    for row in con.execute(f"SELECT {cols} FROM aoc ORDER BY rowid"):  # noqa: S608
        if not _active(row, "aoc", on) or not CODE_RE.match(row[0]):
            continue
        addon, primary, edit_type = row[0], row[1], row[2]
        listed.setdefault(addon, set())
        types.setdefault(addon, set()).add(edit_type)
        if primary is not None and edit_type != 2 and CODE_RE.match(primary):
            listed[addon].add(primary)
    return {
        addon: AocPrimaries(
            primaries=frozenset(primaries),
            # Type 1 means only the listed primaries; any type 2 or 3 edit admits others.
            exhaustive=types[addon] == {1} and bool(primaries),
            edit_types=frozenset(types[addon]),
        )
        for addon, primaries in listed.items()
    }


def load_store(store_dir: Path, as_of: date | None = None) -> CmsStore | None:
    """The imported CMS rows in effect on ``as_of`` (default today); None if nothing imported.

    Edits and add-on rows count as in effect from their effective date through their
    deletion date; rows outside that span stay in the store but are left out here. Codes
    the schema cannot represent (e.g. PLA codes like 0001U) are left out as well.
    """
    db = store_dir / STORE_FILE
    if not db.is_file():
        return None
    on_date = as_of or date.today()
    on = on_date.isoformat()
    try:
        con = _connect(db, readonly=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "imports" not in tables:
                return None
            quarters = {k: q for k, q in con.execute("SELECT kind, quarter FROM imports")}
            if not quarters:
                return None
            return CmsStore(
                quarter=_combined_quarter(quarters),
                quarters=quarters,
                as_of=on_date,
                ptp=_ptp_edits(con, on) if "ptp" in quarters else [],
                mue=_mue_limits(con) if "mue" in quarters else {},
                aoc=_aoc_primaries(con, on) if "aoc" in quarters else {},
            )
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise CmsStoreError(
            f"the CMS store {db} cannot be read ({exc}): move it aside (e.g. rename it to "
            f"{db.name}.damaged) and import the CMS files again with `advisor import-cms`"
        ) from exc
