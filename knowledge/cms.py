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

import errno
import gc
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from knowledge.cms_files import (
    _ADJUDICATION,
    _PARSERS,
    BATCH_ROWS,
    HEADER_SCAN_ROWS,
    PROGRESS_EVERY,
    CmsImportError,
    CmsKind,
    ProgressFn,
    _active,
    _fold,
    _HeaderMatch,
    _match_header,
    _merge_rows,
    _read_rows,
    _RowReader,
    _Rows,
    _text,
    quarter_from_name,
)
from knowledge.schema import (
    CODE_RE,
    Confidence,
    ModifierIndicator,
    PairEdit,
    PairRelation,
    UnitLimit,
)

__all__ = [
    "KIND_TITLES",
    "SOURCE_KEYS",
    "STORE_FILE",
    "AocPrimaries",
    "CmsImportError",
    "CmsKind",
    "CmsStore",
    "CmsStoreError",
    "ImportResult",
    "import_files",
    "load_store",
    "quarter_from_name",
]

STORE_FILE = "cms.sqlite3"
KIND_TITLES: dict[CmsKind, str] = {
    "ptp": "NCCI PTP",
    "mue": "MUE",
    "aoc": "add-on code",
}
SOURCE_KEYS: dict[CmsKind, str] = {"ptp": "CMS_NCCI_PTP", "mue": "CMS_MUE", "aoc": "CMS_AOC"}
_SHORT: dict[str, str] = {"ptp": "PTP", "mue": "MUE", "aoc": "AOC"}

_SCHEMA_VERSION = 1

_ALLOW_WITH_1 = (
    "Both codes may be paid when an NCCI PTP-associated modifier (such as 59 or XE/XS/XP/XU) "
    "marks a distinct service and the record supports it."
)
_NO_RATIONALE = "CMS NCCI PTP edit (no rationale given)."


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


# Long: one streaming pass finds the header (two-row headers, near misses), then parses,
# checks and batches every row; split up, its state would be threaded through each call
# for every row of a multi-million-row file.
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

