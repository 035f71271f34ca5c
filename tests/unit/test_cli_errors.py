"""Broken data dirs through the `advisor` command: a message naming the fix, never a traceback.

Missing index, damaged index, read-only data dir, malformed CMS file, damaged CMS store.
The read-only case runs the command as a subprocess on a really read-only folder: a
read-only bind mount in a private mount namespace when run as root (root ignores file
modes), the folder's write bits removed otherwise.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import PTP
from test_index import GUIDE_A, HashEmbeddings
from typer.testing import CliRunner

from advisor.cli import app
from advisor.index import (
    DataDirReadOnly,
    IndexDamaged,
    build_index,
    get_client,
    read_alias,
)
from advisor.settings import Settings
from knowledge.catalog import clear_cache, load_catalog

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    clear_cache()
    yield tmp_path / "data"
    clear_cache()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def assert_clean_failure(result, code: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for w in words:
        assert w in result.output, (w, result.output)


def damage(data_dir: Path) -> Path:
    """A Chroma folder whose SQLite file is garbage."""
    chroma = data_dir / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database\x00" * 4096)
    return chroma


def small_index(data_dir: Path, tmp_path: Path) -> Settings:
    """A real embedded index (one guideline and the catalog) built with fake embeddings."""
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "a.md").write_text(GUIDE_A, encoding="utf-8")
    settings = Settings(data_dir=data_dir)
    build_index(settings, catalog=load_catalog(), embedder=HashEmbeddings(), guidelines_dir=guides)
    return settings


# ------------------------------------------------------------------------------- index


def test_missing_index_names_advisor_index(data_dir: Path) -> None:
    r = run("search", "knee injection")
    assert_clean_failure(r, 1, "there is no index yet", "`advisor index`")


def test_damaged_index_names_the_rebuild_command(data_dir: Path) -> None:
    chroma = damage(data_dir)
    for args in (("search", "knee injection"), ("index",), ("index", "--if-needed")):
        r = run(*args)
        assert_clean_failure(r, 1, f"the index in {chroma} is damaged",
                             "run `advisor index --rebuild`")


def test_rebuild_sets_a_damaged_index_aside_and_builds_anew(data_dir: Path,
                                                           tmp_path: Path) -> None:
    chroma = damage(data_dir)
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "a.md").write_text(GUIDE_A, encoding="utf-8")
    settings = Settings(data_dir=data_dir)
    kw = {"catalog": load_catalog(), "embedder": HashEmbeddings(), "guidelines_dir": guides}
    with pytest.raises(IndexDamaged, match="advisor index --rebuild"):
        build_index(settings, **kw)
    report = build_index(settings, rebuild=True, **kw)
    assert report.set_aside is not None
    kept = Path(report.set_aside)
    assert kept.parent == data_dir and kept.name.startswith("chroma.damaged-")
    assert (kept / "chroma.sqlite3").read_bytes().startswith(b"this is not a database")
    assert report.files_failed == 0 and report.chunks_total > 0
    assert "damaged index moved to" in report.summary()
    client = get_client(settings)
    assert read_alias(client, settings)["active"] == report.collection
    assert (chroma / "chroma.sqlite3").read_bytes()[:16] == b"SQLite format 3\x00"


def run_read_only(folder: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`advisor ARGS` with ADVISOR_DATA_DIR=folder made read-only for that process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(ADVISOR_DATA_DIR=str(folder), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False")
    command = [sys.executable, "-m", "advisor.cli", *args]
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        assert unshare, "running as root needs unshare(1) to make a folder read-only"
        mount = (f'mount --bind "{folder}" "{folder}" && '
                 f'mount -o remount,ro,bind "{folder}" "{folder}" && exec "$@"')
        command = [unshare, "-m", "sh", "-c", mount, "sh", *command]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    try:
        for p, mode in modes.items():
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@pytest.mark.parametrize(
    "args", [["index"], ["search", "knee injection"]], ids=["index", "search"]
)
def test_read_only_data_dir(data_dir: Path, tmp_path: Path, args: list[str]) -> None:
    small_index(data_dir, tmp_path)
    done = run_read_only(data_dir, args)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert f"the data directory {data_dir} is read-only" in done.stderr
    assert "set ADVISOR_DATA_DIR to a writable folder" in done.stderr


def test_read_only_data_dir_cms_import(data_dir: Path, tmp_path: Path) -> None:
    data_dir.mkdir(parents=True)
    ptp = tmp_path / "ccipra-v323r0-f1.csv"
    ptp.write_text(PTP)
    done = run_read_only(data_dir, ["import-cms", str(ptp)])
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert f"cannot open the CMS store in {data_dir / 'cms'}" in done.stderr
    assert "the folder is not writable" in done.stderr


def test_read_only_store_is_classified(tmp_path: Path) -> None:
    """The classifier itself: an unwritable chroma folder is reported as read-only."""
    from advisor.index import store_error

    settings = Settings(data_dir=tmp_path)
    err = store_error(settings, RuntimeError("(code: 8) attempt to write a readonly database"))
    assert isinstance(err, DataDirReadOnly) and not err.retryable


# --------------------------------------------------------------------------------- CMS


def test_malformed_cms_file_names_file_row_and_column(data_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "ccipra-v323r0-f1.csv"
    good.write_text(PTP)
    assert run("import-cms", str(good)).exit_code == 0
    bad = tmp_path / "ccipra-v324r0-f1.csv"
    bad.write_text(PTP + "20610,76942,,someday,*,1,Misuse of column two code\n")
    r = run("import-cms", str(bad))
    assert_clean_failure(r, 2, "ccipra-v324r0-f1.csv row 4:", "Effective Date",
                         "not a date (YYYYMMDD)", "earlier imports are still active")
    binary = tmp_path / "ptp.xlsx"
    binary.write_bytes(b"\x00\x01 not a workbook" * 100)
    r = run("import-cms", str(binary))
    assert_clean_failure(r, 2, "ptp.xlsx:", "not a readable .xlsx workbook",
                         "earlier imports are still active")
    clear_cache()
    info = run("kb", "info", "--json")
    assert info.exit_code == 0 and '"cms_quarter": "' in info.output, "the first import stays"


def test_damaged_cms_store_says_what_to_do(data_dir: Path, tmp_path: Path) -> None:
    store = data_dir / "cms" / "cms.sqlite3"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"garbage, not SQLite" * 200)
    r = run("lookup", "76937")
    assert_clean_failure(r, 1, f"the CMS store {store} cannot be read", "move it aside",
                         "`advisor import-cms`")
    good = tmp_path / "ccipra-v323r0-f1.csv"
    good.write_text(PTP)
    r = run("import-cms", str(good))
    assert_clean_failure(r, 1, "the store is damaged", f"move {store} aside")
