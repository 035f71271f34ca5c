"""An indexing run that dies part-way leaves an index the next run completes, never a half one.

The "crash" is an exception nothing in the indexer catches, raised by the embedding function
after a given number of batches: the state left behind is what a kill -9 leaves at that point
(every batch is its own Chroma write). Each case compares the repaired index with a clean
build of the same inputs in another data dir. tests/integration/test_index_kill.py does the
same with a real SIGKILL of `advisor index`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_index import GUIDE_A, GUIDE_B, HashEmbeddings

from advisor.index import build_index, get_client, index_ready, read_alias, read_manifest
from advisor.retriever import Retriever
from advisor.settings import Settings
from knowledge.catalog import load_catalog

CATALOG = load_catalog()


class Killed(BaseException):
    """Stands for the process being killed: not an Exception, so nothing handles it."""


class DiesAfter(HashEmbeddings):
    """Embeds ``batches`` batches, then dies on the next one."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.left = batches

    def __call__(self, input):  # type: ignore[no-untyped-def]
        if self.left == 0:
            raise Killed
        self.left -= 1
        return super().__call__(input)


def long_document(tag: str, paragraphs: int = 400) -> str:
    """Text of unique paragraphs: several 64-chunk batches once chunked."""
    return "\n\n".join(
        f"Paragraph {i} of the {tag} payer memo says that code 76942 is reported once per "
        f"encounter, item {i * 7919 % 10007}, and that the permanent image for case {i} "
        "is kept with the report in the record."
        for i in range(paragraphs)
    )


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Any]:
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "a.md").write_text(GUIDE_A, encoding="utf-8")
    (guides / "b.md").write_text(GUIDE_B, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "memo.txt").write_text(long_document("first"), encoding="utf-8")
    return {"tmp": tmp_path, "guides": guides, "docs": docs}


def build(inputs: dict[str, Any], data: str, embedder: HashEmbeddings, *paths: Path,
          **kw: Any) -> Any:
    settings = Settings(data_dir=inputs["tmp"] / data, collection="crash")
    return build_index(settings, paths, catalog=CATALOG, embedder=embedder,
                       guidelines_dir=inputs["guides"], **kw)


def snapshot(inputs: dict[str, Any], data: str) -> dict[str, set[str]]:
    """Document -> chunk ids in the active collection."""
    settings = Settings(data_dir=inputs["tmp"] / data, collection="crash")
    client = get_client(settings)
    col = client.get_collection(read_alias(client, settings)["active"],
                                embedding_function=HashEmbeddings())
    return {doc: entry.ids for doc, entry in read_manifest(col).items()}


def chunk_collections(inputs: dict[str, Any], data: str) -> list[str]:
    settings = Settings(data_dir=inputs["tmp"] / data, collection="crash")
    names = [c.name for c in get_client(settings).list_collections()]
    return [n for n in names if n.startswith("crash-2")]


def test_first_build_killed_leaves_no_index_then_completes(inputs: dict[str, Any]) -> None:
    clean = build(inputs, "clean", HashEmbeddings(), inputs["docs"])
    settings = Settings(data_dir=inputs["tmp"] / "data", collection="crash")
    with pytest.raises(Killed):
        build(inputs, "data", DiesAfter(3), inputs["docs"])
    # Nothing half-built is ever active: no alias yet, so "no index" rather than a partial one.
    assert read_alias(get_client(settings), settings) == {}
    assert not index_ready(settings, CATALOG, inputs["guides"], embedder=HashEmbeddings())
    with pytest.raises(Exception, match="advisor index"):
        Retriever(settings, CATALOG, embedder=HashEmbeddings()).search("permanent image")

    again = build(inputs, "data", HashEmbeddings(), inputs["docs"])
    assert again.files_failed == 0
    assert again.chunks_total == clean.chunks_total
    assert snapshot(inputs, "data") == snapshot(inputs, "clean")
    assert chunk_collections(inputs, "data") == [again.collection], "the orphan is gone"


def test_incremental_add_killed_mid_document_is_finished_next_run(
    inputs: dict[str, Any],
) -> None:
    extra = inputs["tmp"] / "extra"
    extra.mkdir()
    (extra / "policy.txt").write_text(long_document("second"), encoding="utf-8")
    clean = build(inputs, "clean", HashEmbeddings(), inputs["docs"], extra)
    build(inputs, "data", HashEmbeddings(), inputs["docs"])

    with pytest.raises(Killed):
        build(inputs, "data", DiesAfter(1), extra)  # one 64-chunk batch of policy.txt written
    policy = str((extra / "policy.txt").resolve())
    half = snapshot(inputs, "data")[policy]
    assert 0 < len(half) < len(snapshot(inputs, "clean")[policy]), "killed mid-document"

    # The next run is not told about the file again: it finds it in the index, sees it is
    # incomplete (not "unchanged") and finishes it.
    again = build(inputs, "data", HashEmbeddings())
    result = next(f for f in again.files if f.path == policy)
    assert result.status == "indexed", result
    assert again.chunks_total == clean.chunks_total
    assert snapshot(inputs, "data") == snapshot(inputs, "clean")
    # And once complete, it is left alone.
    third = build(inputs, "data", HashEmbeddings())
    assert third.files_indexed == 0 and third.chunks_added == 0


def test_edit_killed_mid_document_is_finished_next_run(inputs: dict[str, Any]) -> None:
    build(inputs, "data", HashEmbeddings(), inputs["docs"])
    memo = inputs["docs"] / "memo.txt"
    memo.write_text(long_document("edited"), encoding="utf-8")
    clean = build(inputs, "clean", HashEmbeddings(), inputs["docs"])
    with pytest.raises(Killed):
        build(inputs, "data", DiesAfter(1), inputs["docs"])
    again = build(inputs, "data", HashEmbeddings())
    assert again.chunks_total == clean.chunks_total
    assert snapshot(inputs, "data") == snapshot(inputs, "clean")
    hits = Retriever(Settings(data_dir=inputs["tmp"] / "data", collection="crash"), CATALOG,
                     embedder=HashEmbeddings()).search("edited payer memo paragraph 399", 3)
    assert hits.passages[0].source.endswith("memo.txt")
    assert "edited" in hits.passages[0].text
