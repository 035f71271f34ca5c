"""Fuzzing the CMS importers: whatever the bytes, the only failure is CmsImportError."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.cms import CmsImportError, import_files, load_store

TODAY = date(2026, 11, 5)
FUZZ = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])

HEADERS = {
    "ptp": ["Column 1", "Column 2", "*=in existence\nprior to 1996", "Effective\nDate",
            "Deletion Date\n*=no data", "Modifier\n0=not allowed\n1=allowed\n9=not applicable",
            "PTP Edit Rationale"],
    "mue": ["HCPCS/CPT\nCode", "Practitioner Services\nMUE Values",
            "MUE Adjudication\nIndicator", "MUE Rationale"],
    "aoc": ["Add-on Code", "Primary Code", "AOC Edit Type", "AOC Edit\nEffective Date",
            "AOC Edit\nDeletion Date"],
}  # fmt: skip

# Cells drawn from plausible values and from junk, so rows are sometimes valid.
cell = st.one_of(
    st.sampled_from(
        ["20610", "76942", "0001U", "ABCDE", "*", "", "0", "1", "2", "3", "9", "20150101",
         "20261301", "1 Line Edit", "3 Date of Service Edit: Clinical", "CCCCC", "-1"]
    ),
    st.text(max_size=12),
)  # fmt: skip


def run_import(name: str, content: bytes) -> None:
    """Import one file into a fresh store; success or CmsImportError are the only outcomes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        store_dir = Path(tmp) / "store"
        error: CmsImportError | None = None
        try:
            results = import_files([path], store_dir, today=TODAY)
        except CmsImportError as exc:
            error = exc
        if error is not None:
            assert error.file == path
            assert str(error).startswith(name)
            assert load_store(store_dir) is None
            return
        assert len(results) == 1
        assert load_store(store_dir, as_of=TODAY) is not None


@FUZZ
@given(
    content=st.binary(max_size=4096),
    suffix=st.sampled_from([".csv", ".txt", ".xlsx", ".tsv", ".dat"]),
)
def test_random_bytes(content: bytes, suffix: str) -> None:
    run_import(f"random{suffix}", content)


@FUZZ
@given(
    content=st.binary(max_size=2048),
    kind=st.sampled_from(sorted(HEADERS)),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_random_bytes_after_a_valid_header(content: bytes, kind: str, delimiter: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows([["Notice"], HEADERS[kind]])
    suffix = ".csv" if delimiter == "," else ".txt"
    run_import(f"{kind}{suffix}", buffer.getvalue().encode() + content)


@FUZZ
@given(
    kind=st.sampled_from(sorted(HEADERS)),
    rows=st.lists(st.lists(cell, max_size=9), max_size=12),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_random_rows(kind: str, rows: list[list[str]], delimiter: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerows([["CPT copyright notice"], [], HEADERS[kind], *rows])
    suffix = ".csv" if delimiter == "," else ".txt"
    run_import(f"{kind}{suffix}", buffer.getvalue().encode("utf-8", "surrogatepass"))


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(HEADERS)),
    rows=st.lists(st.lists(cell, max_size=9), max_size=8),
)
def test_random_rows_xlsx(kind: str, rows: list[list[str]]) -> None:
    import openpyxl
    from openpyxl.utils.exceptions import IllegalCharacterError

    book = openpyxl.Workbook()
    sheet = book.active
    try:
        for row in [["CPT copyright notice"], HEADERS[kind], *rows]:
            sheet.append(row)
    except IllegalCharacterError:
        return  # openpyxl cannot write control characters; nothing to import
    buffer = io.BytesIO()
    book.save(buffer)
    run_import(f"{kind}.xlsx", buffer.getvalue())
