"""CMS file importers: header detection, the three kinds, the store and the catalog overlay."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from knowledge.catalog import DATA_DIR, build_catalog, clear_cache, load_catalog
from knowledge.cms import (
    CmsImportError,
    CmsStore,
    import_files,
    load_store,
    quarter_from_name,
)
from knowledge.schema import Adjudication, ModifierIndicator, PairRelation

TODAY = date(2026, 11, 5)

NOTICE = [
    ["CPT codes, descriptions and other data only are copyright 2025 American Medical "
     "Association. All Rights Reserved."],
    ["Applicable FARS/HHSARS apply.", "", ""],
    [],
]  # fmt: skip

PTP_HEADER = [
    "Column 1",
    "Column 2",
    "*=in existence\nprior to 1996",
    "Effective\nDate",
    "Deletion\nDate\n*=no data",
    "Modifier\n0=not allowed\n1=allowed\n9=not applicable",
    "PTP Edit\nRationale",
]
MUE_HEADER = [
    "HCPCS/CPT\nCode",
    "Practitioner\nServices MUE\nValues",
    "MUE\nAdjudication\nIndicator",
    "MUE Rationale",
]
AOC_HEADER = [
    "Add-on Code",
    "Add-On Code\nEffective Date",
    "Add-On Code\nDeletion Date\n*=no data",
    "Primary Code",
    "Primary Code\nEffective Date",
    "Primary Code\nDeletion Date\n*=no data",
    "AOC Edit Type",
    "AOC Edit\nEffective Date",
    "AOC Edit\nDeletion Date\n*=no data",
    "Special Instruction Notes",
]

PTP_ROWS = [
    ["20610", "76942", "", "20150101", "*", "1", "Standards of medical / surgical practice"],
    ["76700", "76705", "*", "19960101", "*", "0", "Misuse of column two code with column one code"],
    ["76536", "76604", "", "20100101", "20200101", "0", "Mutually exclusive procedures"],
    ["93880", "93882", "", "20100101", "20100101", "9", "Deleted retroactively"],
]
MUE_ROWS = [
    ["76942", "3", "3 Date of Service Edit: Clinical", "Clinical: Data"],
    ["76700", "1", "2 Date of Service Edit: Policy", "Anatomic Consideration"],
    ["93880", "1", "1 Line Edit", "Code Descriptor / CPT Instruction"],
]
AOC_ROWS = [
    ["76937", "20040101", "*", "36555", "20040101", "*", "1", "20130101", "*", ""],
    ["76937", "20040101", "*", "36556", "20040101", "*", "1", "20130101", "*", ""],
    ["76937", "20040101", "*", "36000", "20040101", "20100101", "1", "20130101", "*", "old"],
    ["77002", "20040101", "*", "CCCCC", "*", "*", "2", "20130101", "*", "contractor"],
    ["93320", "20040101", "*", "93303", "20040101", "*", "3", "20130101", "*", ""],
]

HEADERS = {"ptp": PTP_HEADER, "mue": MUE_HEADER, "aoc": AOC_HEADER}
ROWS = {"ptp": PTP_ROWS, "mue": MUE_ROWS, "aoc": AOC_ROWS}
NAMES = {
    "ptp": "ccipra-v323r0-f1",
    "mue": "MCR_MUE_PractitionerServices_Eff_10-01-2026",
    "aoc": "AOC_V2026Q4",
}


def write(path: Path, rows: list[list[str]]) -> Path:
    """Write rows as .xlsx, .csv or tab-delimited .txt by the file's suffix."""
    if path.suffix == ".xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        for row in rows:
            sheet.append(row if row else [None])
        book.save(path)
    else:
        delimiter = "\t" if path.suffix == ".txt" else ","
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def cms_file(tmp: Path, kind: str, fmt: str = "csv", rows: list[list[str]] | None = None,
             name: str | None = None, header: list[str] | None = None) -> Path:  # fmt: skip
    body = ROWS[kind] if rows is None else rows
    return write(tmp / f"{name or NAMES[kind]}.{fmt}", [*NOTICE, header or HEADERS[kind], *body])


def store_snapshot(store: CmsStore | None) -> object:
    assert store is not None
    return (store.quarter, store.ptp, store.mue, store.aoc)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "cms"


# -- each kind in each format ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "txt"])
@pytest.mark.parametrize("kind", ["ptp", "mue", "aoc"])
def test_imports_each_kind_in_each_format(
    tmp_path: Path, store_dir: Path, kind: str, fmt: str
) -> None:
    path = cms_file(tmp_path, kind, fmt)
    [result] = import_files([path], store_dir, today=TODAY)
    assert result.kind == kind
    assert result.file == path
    assert result.rows_read == result.rows_kept == len(ROWS[kind])
    assert result.quarter == "2026Q4"
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert store.quarter == "2026Q4"
    if kind == "ptp":
        assert result.rows_active == 2  # the 2020 and 2010 deletions are past
        pairs = {(e.column1, e.column2): e for e in store.ptp}
        assert set(pairs) == {("20610", "76942"), ("76700", "76705")}
        edit = pairs[("20610", "76942")]
        assert edit.origin == "cms"
        assert edit.rule_id == "cms_ptp"
        assert edit.sources == ("CMS_NCCI_PTP",)
        assert edit.modifier_indicator is ModifierIndicator.ALLOWED
        assert edit.relation is PairRelation.BUNDLED
        assert edit.rationale == "Standards of medical / surgical practice"
        assert edit.effective == date(2015, 1, 1)
        assert edit.deleted is None
    elif kind == "mue":
        assert store.mue["76942"].value == 3
        assert store.mue["76942"].adjudication is Adjudication.DATE_CLINICAL
        assert store.mue["76942"].per == "day"
        assert store.mue["93880"].adjudication is Adjudication.LINE
        assert store.mue["93880"].per == "line"
        assert store.mue["76700"].adjudication is Adjudication.DATE_POLICY
        assert store.mue["76700"].note == "Anatomic Consideration"
        assert store.mue["76700"].sources == ("CMS_MUE",)
    else:
        assert store.aoc["76937"].primaries == {"36555", "36556"}
        assert store.aoc["76937"].exhaustive
        assert store.aoc["77002"].primaries == frozenset()
        assert not store.aoc["77002"].exhaustive
        assert store.aoc["93320"].primaries == {"93303"}
        assert not store.aoc["93320"].exhaustive


def test_nothing_imported_loads_none(store_dir: Path) -> None:
    assert load_store(store_dir) is None
    assert import_files([], store_dir) == []
    assert load_store(store_dir) is None


def test_header_split_over_two_rows_and_numeric_cells(tmp_path: Path, store_dir: Path) -> None:
    upper = ["Column 1", "Column 2", "*=in existence", "Effective", "Deletion", "Modifier", "PTP"]
    lower = ["", "", "prior to 1996", "Date", "Date *=no data", "0=not allowed", "Rationale"]
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [*NOTICE[:2], upper, lower]:
        sheet.append(row)
    # Numbers where a spreadsheet program converted text: codes, dates and indicators.
    sheet.append([20610, 76942, None, 20150101, "*", 1.0, "x"])
    sheet.append([1996, 76942, None, date(2015, 1, 1), None, 0, "leading zero lost"])
    book.save(tmp_path / "split.xlsx")
    [result] = import_files([tmp_path / "split.xlsx"], store_dir, today=TODAY)
    assert result.rows_kept == 2
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert {(e.column1, e.column2) for e in store.ptp} == {("20610", "76942"), ("01996", "76942")}


# -- catalog overlay ---------------------------------------------------------------------------


def test_catalog_overlay(tmp_path: Path, store_dir: Path) -> None:
    builtin = build_catalog()
    assert builtin.pair("20610", "76942") is not None
    assert builtin.pair("20610", "76942").modifier_indicator is ModifierIndicator.NOT_ALLOWED
    assert builtin.addon_primaries("76937").exhaustive is False
    assert builtin.unit_limit("76942").value == 1

    paths = [cms_file(tmp_path, k, f) for k, f in (("ptp", "xlsx"), ("mue", "csv"), ("aoc", "txt"))]
    results = import_files(paths, store_dir, today=TODAY)
    assert [r.kind for r in results] == ["ptp", "mue", "aoc"]
    catalog = build_catalog(cms=load_store(store_dir, as_of=TODAY))

    edit = catalog.pair("20610", "76942")
    assert edit is not None
    assert edit.origin == "cms"
    assert edit.modifier_indicator is ModifierIndicator.ALLOWED
    limit = catalog.unit_limit("76942")
    assert limit is not None
    assert (limit.value, limit.adjudication) == (3, Adjudication.DATE_CLINICAL)
    addon = catalog.addon_primaries("76937")
    assert addon is not None
    assert addon.origin == "cms"
    assert addon.exhaustive
    assert addon.primaries == {"36555", "36556"}
    assert "2026Q4" in catalog.ruleset
    assert catalog.ruleset == f"builtin {catalog.release} + CMS 2026Q4"
    # The source keys cited by imported rows exist in sources.yaml.
    assert {"CMS_NCCI_PTP", "CMS_MUE", "CMS_AOC"} <= set(catalog.sources)


def test_load_catalog_reads_the_store(tmp_path: Path, store_dir: Path) -> None:
    import_files([cms_file(tmp_path, "ptp")], store_dir)
    clear_cache()
    try:
        catalog = load_catalog(DATA_DIR, store_dir)
        assert catalog.pair("20610", "76942").origin == "cms"
        assert catalog.cms_quarter == "2026Q4"
    finally:
        clear_cache()


def test_indicator_9_is_allowed(tmp_path: Path, store_dir: Path) -> None:
    rows = [["20610", "76942", "", "20150101", "*", "9", "Not applicable"]]
    import_files([cms_file(tmp_path, "ptp", rows=rows)], store_dir, today=TODAY)
    catalog = build_catalog(cms=load_store(store_dir, as_of=TODAY))
    edit = catalog.pair("20610", "76942")
    assert edit.relation is PairRelation.ALLOWED
    assert edit.modifier_indicator is ModifierIndicator.NOT_APPLICABLE


# -- dates -------------------------------------------------------------------------------------


def test_deletion_and_effective_dates_honoured(tmp_path: Path, store_dir: Path) -> None:
    rows = [
        ["76536", "76604", "", "20100101", "20200101", "0", "ended"],
        ["76700", "76705", "", "20270101", "*", "0", "not yet"],
    ]
    [result] = import_files([cms_file(tmp_path, "ptp", rows=rows)], store_dir, today=TODAY)
    assert (result.rows_kept, result.rows_active) == (2, 0)

    def pairs(on: date) -> set[tuple[str, str]]:
        store = load_store(store_dir, as_of=on)
        assert store is not None
        return {(e.column1, e.column2) for e in store.ptp}

    assert pairs(TODAY) == set()
    assert pairs(date(2019, 6, 1)) == {("76536", "76604")}
    assert pairs(date(2020, 1, 1)) == {("76536", "76604")}  # the deletion date is the last day
    assert pairs(date(2027, 2, 1)) == {("76700", "76705")}


def test_aoc_primary_deletion_honoured(tmp_path: Path, store_dir: Path) -> None:
    import_files([cms_file(tmp_path, "aoc")], store_dir, today=TODAY)
    store = load_store(store_dir, as_of=date(2009, 1, 1))
    assert store is not None
    assert "76937" not in store.aoc  # the edits take effect in 2013
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert "36000" not in store.aoc["76937"].primaries


# -- replacing, combining and labelling ---------------------------------------------------------


def test_newer_file_replaces_rows_of_its_kind_only(tmp_path: Path, store_dir: Path) -> None:
    import_files([cms_file(tmp_path, "ptp"), cms_file(tmp_path, "mue")], store_dir, today=TODAY)
    newer = [["76881", "76882", "", "20260101", "*", "1", "Misuse"]]
    path = cms_file(tmp_path, "ptp", rows=newer, name="ccipra-v330r0-f1")
    [result] = import_files([path], store_dir, today=TODAY)
    assert result.quarter == "2027Q1"
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert [(e.column1, e.column2) for e in store.ptp] == [("76881", "76882")]
    assert "76942" in store.mue
    assert store.quarters == {"ptp": "2027Q1", "mue": "2026Q4"}
    assert store.quarter == "PTP 2027Q1, MUE 2026Q4"
    assert "PTP 2027Q1" in build_catalog(cms=store).ruleset


def test_parts_of_one_release_combine(tmp_path: Path, store_dir: Path) -> None:
    part1 = cms_file(tmp_path, "ptp", rows=PTP_ROWS[:2], name="ccipra-v323r0-f1")
    part2 = cms_file(tmp_path, "ptp", "txt", rows=PTP_ROWS[2:], name="ccipra-v323r0-f2")
    seen: list[tuple[str, int]] = []
    results = import_files(
        [part1, part2], store_dir, today=TODAY, progress=lambda p, n: seen.append((p.name, n))
    )
    assert [r.rows_kept for r in results] == [2, 2]
    assert seen == [(part1.name, 2), (part2.name, 2)]
    store = load_store(store_dir, as_of=date(2015, 6, 1))
    assert store is not None
    assert len(store.ptp) == 3


def test_mixed_releases_in_one_import_are_refused(tmp_path: Path, store_dir: Path) -> None:
    part1 = cms_file(tmp_path, "ptp", name="ccipra-v323r0-f1")
    part2 = cms_file(tmp_path, "ptp", name="ccipra-v322r0-f2")
    with pytest.raises(CmsImportError, match="one release at a time"):
        import_files([part1, part2], store_dir, today=TODAY)
    assert load_store(store_dir) is None


def test_quarter_falls_back_to_import_date(tmp_path: Path, store_dir: Path) -> None:
    [result] = import_files([cms_file(tmp_path, "mue", name="mue")], store_dir, today=TODAY)
    assert result.quarter == "2026-11-05"
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert store.quarter == "2026-11-05"


@pytest.mark.parametrize(
    ("name", "quarter"),
    [
        ("ccipra-v323r0-f1.xlsx", "2026Q4"),
        ("ccipra-v320r0-f4.txt", "2026Q1"),
        ("MCR_MUE_PractitionerServices_Eff_10-01-2026.csv", "2026Q4"),
        ("MCR_MUE_PractitionerServices_Eff_04-01-2026.xlsx", "2026Q2"),
        ("AOC_V2026Q4.xlsx", "2026Q4"),
        ("aoc_2026-q3.csv", "2026Q3"),
        ("ptp_20260701.csv", "2026Q3"),
        ("ptp.csv", None),
    ],
)
def test_quarter_from_name(name: str, quarter: str | None) -> None:
    assert quarter_from_name(name) == quarter


def test_codes_outside_the_schema_are_stored_not_loaded(tmp_path: Path, store_dir: Path) -> None:
    rows = [["0001U", "76942", "", "20200101", "*", "0", "PLA code"], PTP_ROWS[0]]
    [result] = import_files([cms_file(tmp_path, "ptp", rows=rows)], store_dir, today=TODAY)
    assert result.rows_kept == 2
    store = load_store(store_dir, as_of=TODAY)
    assert store is not None
    assert [e.column1 for e in store.ptp] == ["20610"]


# -- malformed files ---------------------------------------------------------------------------


@pytest.fixture
def imported(tmp_path: Path, store_dir: Path) -> object:
    """A store holding all three kinds; returns its snapshot for later comparison."""
    (tmp_path / "good").mkdir()
    paths = [cms_file(tmp_path / "good", k) for k in ("ptp", "mue", "aoc")]
    import_files(paths, store_dir, today=TODAY)
    return store_snapshot(load_store(store_dir, as_of=TODAY))


def bad_row(kind: str, column: int, value: str) -> list[list[str]]:
    rows = [list(r) for r in ROWS[kind]]
    rows[1][column] = value
    return rows


# Data row 2 sits on file row 6: three notice rows, the header, then the data.
@pytest.mark.parametrize("fmt", ["xlsx", "csv", "txt"])
@pytest.mark.parametrize(
    ("kind", "column", "value", "label", "message"),
    [
        ("ptp", 1, "ABCDE", "Column 2", "row 6: Column 2 'ABCDE' is not a code"),
        ("ptp", 0, "", "Column 1", "row 6: Column 1 is empty"),
        ("ptp", 5, "5", "Modifier indicator", "row 6: Modifier indicator '5' is not 0, 1 or 9"),
        ("ptp", 3, "2015-13-45", "Effective Date", "'2015-13-45' is not a date"),
        ("mue", 1, "many", "MUE value", "row 6: MUE value 'many' is not a whole number"),
        ("mue", 2, "7 Other", "MUE Adjudication Indicator", "'7 Other' is not 1 (line)"),
        ("aoc", 6, "4", "AOC Edit Type", "row 6: AOC Edit Type '4' is not 1, 2 or 3"),
        ("aoc", 3, "XYZ", "Primary Code", "row 6: Primary Code 'XYZ' is not a code"),
    ],
)
def test_bad_cell_names_row_and_column_and_keeps_store(
    tmp_path: Path,
    store_dir: Path,
    imported: object,
    fmt: str,
    kind: str,
    column: int,
    value: str,
    label: str,
    message: str,
) -> None:
    path = cms_file(tmp_path, kind, fmt, rows=bad_row(kind, column, value))
    with pytest.raises(CmsImportError) as err:
        import_files([path], store_dir, today=TODAY)
    assert message in str(err.value)
    assert str(err.value).startswith(path.name)
    assert (err.value.file, err.value.row, err.value.column) == (path, 6, label)
    assert store_snapshot(load_store(store_dir, as_of=TODAY)) == imported


def test_error_in_a_later_file_keeps_earlier_files_of_the_call_out(
    tmp_path: Path, store_dir: Path, imported: object
) -> None:
    good = cms_file(tmp_path, "mue", rows=[["76942", "9", "1 Line Edit", ""]])
    bad = cms_file(tmp_path, "ptp", rows=bad_row("ptp", 1, "ABCDE"))
    with pytest.raises(CmsImportError, match="ABCDE"):
        import_files([good, bad], store_dir, today=TODAY)
    assert store_snapshot(load_store(store_dir, as_of=TODAY)) == imported


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "txt"])
def test_missing_column(tmp_path: Path, store_dir: Path, imported: object, fmt: str) -> None:
    header = [h for h in PTP_HEADER if not h.startswith("Modifier")]
    rows = [r[:5] + r[6:] for r in PTP_ROWS]
    path = cms_file(tmp_path, "ptp", fmt, rows=rows, header=header)
    with pytest.raises(CmsImportError) as err:
        import_files([path], store_dir, today=TODAY)
    assert err.value.row == 4
    assert err.value.column == "Modifier indicator"
    assert "lacks the column(s) 'Modifier indicator'" in str(err.value)
    assert store_snapshot(load_store(store_dir, as_of=TODAY)) == imported


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b",,,\n,,\n"])
def test_empty_file(tmp_path: Path, store_dir: Path, imported: object, content: bytes) -> None:
    path = tmp_path / "ptp.csv"
    path.write_bytes(content)
    with pytest.raises(CmsImportError, match=r"^ptp\.csv: the file is empty$"):
        import_files([path], store_dir, today=TODAY)
    assert store_snapshot(load_store(store_dir, as_of=TODAY)) == imported


def test_empty_workbook(tmp_path: Path, store_dir: Path) -> None:
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(CmsImportError, match="the file is empty"):
        import_files([path], store_dir, today=TODAY)


def test_wrong_kind(tmp_path: Path, store_dir: Path, imported: object) -> None:
    fee = write(
        tmp_path / "fees.csv", [["HCPCS", "MOD", "DESCRIPTION", "FEE"], ["76942", "", "x", "1"]]
    )
    with pytest.raises(CmsImportError, match="not an NCCI PTP, MUE or add-on code file"):
        import_files([fee], store_dir, today=TODAY)
    hospital = cms_file(
        tmp_path,
        "mue",
        name="MCR_MUE_OutpatientHospitalServices",
        header=["HCPCS/CPT Code", "Outpatient Hospital Services MUE Values", "MUE Adjudication "
                "Indicator", "MUE Rationale"],
    )  # fmt: skip
    with pytest.raises(CmsImportError, match="not the practitioner services MUE file"):
        import_files([hospital], store_dir, today=TODAY)
    assert store_snapshot(load_store(store_dir, as_of=TODAY)) == imported


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ptp.xlsx", b"not a zip at all", "not a readable .xlsx workbook"),
        ("ptp.xls", b"\xd0\xcf\x11\xe0", "save it as .xlsx"),
        ("ptp.zip", b"PK\x03\x04", "unzip"),
    ],
)
def test_unreadable_formats(
    tmp_path: Path, store_dir: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CmsImportError, match=message):
        import_files([path], store_dir, today=TODAY)


def test_missing_file(tmp_path: Path, store_dir: Path) -> None:
    with pytest.raises(CmsImportError, match=r"nope\.csv: file not found"):
        import_files([tmp_path / "nope.csv"], store_dir)


def test_windows_1252_notice_and_repeated_header(tmp_path: Path, store_dir: Path) -> None:
    text = (
        "CPT\xae \xa9 2025 American Medical Association\r\n"
        + "\t".join(h.replace("\n", " ") for h in PTP_HEADER)
        + "\r\n"
    )
    text += "\t".join(PTP_ROWS[0]) + "\r\n" + "\t".join(h.replace("\n", " ") for h in PTP_HEADER)
    text += "\r\n" + "\t".join(PTP_ROWS[1]) + "\r\n"
    path = tmp_path / "ccipra-v323r0-f2.txt"
    path.write_bytes(text.encode("cp1252"))
    [result] = import_files([path], store_dir, today=TODAY)
    assert result.rows_kept == 2
