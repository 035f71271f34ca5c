"""Index and retriever against a real Chroma (PersistentClient in tmp) with fake embeddings."""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from advisor import index as index_mod
from advisor.chunking import (
    MAX_CHARS,
    chunk_html,
    chunk_markdown,
    codes_in,
    decode_text,
    pack_paragraphs,
)
from advisor.embeddings import (
    AdvisorEmbeddingFunction,
    OllamaEmbeddings,
    OpenAIEmbeddings,
    PackagedEmbeddings,
    make_embedder,
)
from advisor.index import build_index, get_client, index_ready, read_alias
from advisor.retriever import Retriever, rrf, tokenize
from advisor.settings import EmbeddingBackend, Settings
from knowledge.catalog import load_catalog

DIM = 128


class HashEmbeddings(AdvisorEmbeddingFunction):
    """Deterministic bag-of-words hashing: same words, same vector; no model, no network."""

    backend = "fake"

    def __init__(self) -> None:
        super().__init__("hash-bow")
        self.calls = 0
        self.texts: list[str] = []

    def __call__(self, input):  # type: ignore[no-untyped-def]
        self.calls += 1
        self.texts.extend(input)
        out = []
        for text in input:
            v = np.zeros(DIM, dtype=np.float32)
            for tok in re.findall(r"[a-z0-9]+", text.lower()):
                v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % DIM] += 1.0
            norm = float(np.linalg.norm(v)) or 1.0
            out.append(v / norm)
        return out


GUIDE_A = """---
title: Needle guidance basics
sources: [SRC_A, SRC_B]
as_of: 2026-11-01
codes: ["76942"]
---

# Needle guidance basics

Intro paragraph before any section.

## What 76942 covers

76942 is ultrasound guidance for needle placement. It is not an add-on code.

A second paragraph about the permanent image that must be stored.

## Units

One unit per encounter, whatever the number of needle passes.
"""

GUIDE_B = """---
title: Vascular access
sources: [SRC_C]
as_of: 2026-10-01
---

# Vascular access

## Four elements

+76937 needs four documented elements: sites evaluated, patency, real-time entry, image.

## Primaries

Central venous catheter insertion 36556 and PICC 36573 can carry +76937.
"""


@pytest.fixture
def env(tmp_path: Path) -> dict:
    guides = tmp_path / "guides"
    guides.mkdir()
    (guides / "a.md").write_text(GUIDE_A, encoding="utf-8")
    (guides / "b.md").write_text(GUIDE_B, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", collection="testidx", max_upload_mb=1)
    emb = HashEmbeddings()
    return {
        "settings": settings,
        "guides": guides,
        "emb": emb,
        "catalog": load_catalog(),
        "tmp": tmp_path,
    }


def build(env: dict, *paths, **kw):  # type: ignore[no-untyped-def]
    return build_index(
        env["settings"],
        paths,
        catalog=env["catalog"],
        embedder=env["emb"],
        guidelines_dir=env["guides"],
        **kw,
    )


def active_ids(env: dict, doc_prefix: str = "") -> dict[str, str]:
    client = get_client(env["settings"])
    alias = read_alias(client, env["settings"])
    col = client.get_collection(alias["active"], embedding_function=env["emb"])
    got = col.get(include=["metadatas"])
    return {
        cid: str(m["doc"])
        for cid, m in zip(got["ids"], got["metadatas"], strict=True)
        if str(m["doc"]).startswith(doc_prefix)
    }


def by_path(report, name: str):  # type: ignore[no-untyped-def]
    return next(f for f in report.files if f.path.endswith(name))


# -- chunking ----------------------------------------------------------------------------


def test_markdown_chunks_keep_headings_and_front_matter() -> None:
    chunks = chunk_markdown(GUIDE_A, "guidelines/a.md", "guideline", "a")
    sections = [c.section for c in chunks]
    assert sections == ["Needle guidance basics", "What 76942 covers", "Units"]
    c = chunks[1]
    assert c.title == "Needle guidance basics"
    assert c.as_of == "2026-11-01"
    assert c.source_keys == ("SRC_A", "SRC_B")
    assert c.codes == ("76942",)
    assert "second paragraph" in c.text  # two short paragraphs packed into one chunk
    meta = c.metadata()
    assert meta["codes"] == " 76942 "
    assert meta["page"] == -1


def test_long_sections_split_with_overlap() -> None:
    paras = [f"Paragraph {i} sentence one is here. Sentence two ends it {i}." * 6 for i in range(8)]
    chunks = pack_paragraphs(paras, max_chars=600, overlap=150)
    assert len(chunks) > 3
    assert all(len(c) <= 600 for c in chunks)
    for prev, nxt in itertools.pairwise(chunks):
        tail = prev[-60:]
        assert tail in nxt, "each chunk starts with the end of the previous one"


def test_over_long_paragraph_is_cut_at_sentences() -> None:
    para = " ".join(f"Sentence number {i} says something." for i in range(200))
    chunks = pack_paragraphs([para])
    assert all(len(c) <= MAX_CHARS for c in chunks)
    assert all(c.endswith(".") for c in chunks)


def test_chunk_ids_are_stable_and_content_derived() -> None:
    a = chunk_markdown(GUIDE_A, "guidelines/a.md", "guideline", "a")
    b = chunk_markdown(GUIDE_A, "guidelines/a.md", "guideline", "a")
    assert [c.id for c in a] == [c.id for c in b]
    edited = chunk_markdown(
        GUIDE_A.replace("One unit", "Exactly one unit"), "guidelines/a.md", "guideline", "a"
    )
    assert [c.id for c in edited][:2] == [c.id for c in a][:2]
    assert edited[2].id != a[2].id
    other_source = chunk_markdown(GUIDE_A, "guidelines/z.md", "guideline", "a")
    assert not {c.id for c in other_source} & {c.id for c in a}


def test_codes_regex() -> None:
    assert codes_in("Bill +76937 with 36556, not 0042T or 123456 or 7694") == (
        "76937",
        "36556",
        "0042T",
    )


def test_html_ingestion_sections() -> None:
    html = """<html><head><title>Payer memo</title><style>p{}</style></head><body>
    <nav>menu</nav><h1>Payer memo</h1><p>Intro text.</p>
    <h2>Guidance</h2><p>Use 76942 once per encounter.</p><ul><li>Keep an image.</li></ul>
    <script>var x = 1;</script></body></html>"""
    chunks = chunk_html(html, "/x/memo.html", "memo")
    assert chunks[0].title == "Payer memo"
    g = next(c for c in chunks if c.section == "Guidance")
    assert "76942" in g.codes
    assert "Keep an image." in g.text
    assert all("var x" not in c.text and "menu" not in c.text for c in chunks)


def test_decode_text_policy() -> None:
    assert decode_text("héllo".encode())[1] == []
    text, warnings = decode_text("café 76942".encode("cp1252"))
    assert text == "café 76942"
    assert warnings
    assert "Windows-1252" in warnings[0]


# -- a tiny PDF with a real text layer, written by hand ---------------------------------------


def make_pdf(pages: list[str]) -> bytes:
    """Minimal valid PDF (Helvetica text per page) with a correct xref table."""
    objs: list[bytes] = []
    n_pages = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    font_id = 3 + 2 * n_pages
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        lines = [ln.replace("(", "[").replace(")", "]") for ln in text.split("\n")]
        ops = "BT /F1 11 Tf 14 TL 50 740 Td " + " ".join(f"({ln}) Tj T*" for ln in lines) + " ET"
        data = zlib.compress(ops.encode("latin-1"))
        objs.append(
            f"<< /Length {len(data)} /Filter /FlateDecode >>\nstream\n".encode()
            + data
            + b"\nendstream"
        )
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def test_pdf_ingestion_keeps_pages(env: dict) -> None:
    docs = env["tmp"] / "docs"
    docs.mkdir()
    pdf = docs / "policy.pdf"
    pdf.write_bytes(make_pdf(["Payer policy page one.", "Page two says 76942 is one unit."]))
    report = build(env, docs)
    assert by_path(report, "policy.pdf").status == "indexed", report.files
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    res = r.search("page two says 76942 is one unit", 10)
    hit = next(p for p in res.passages if p.source.endswith("policy.pdf"))
    assert "76942" in hit.codes
    assert hit.page == 2
    assert hit.kind == "user"
    assert hit.citation()["page"] == 2


# -- indexing ----------------------------------------------------------------------------------


def test_build_indexes_corpus_and_catalog(env: dict) -> None:
    assert not index_ready(env["settings"], env["catalog"], env["guides"], embedder=env["emb"])
    report = build(env)
    assert report.files_failed == 0
    assert report.files_indexed == 3  # a.md, b.md, catalog
    assert report.chunks_total == 5 + len(env["catalog"].codes)
    assert index_ready(env["settings"], env["catalog"], env["guides"], embedder=env["emb"])
    # A changed guideline makes the index stale for `make run`.
    (env["guides"] / "b.md").write_text(GUIDE_B + "\nMore.\n", encoding="utf-8")
    assert not index_ready(env["settings"], env["catalog"], env["guides"], embedder=env["emb"])
    # Another embedding model: not ready either (vectors would not be comparable).
    assert not index_ready(env["settings"], env["catalog"], env["guides"])


def test_incremental_edit_delete_unchanged(env: dict) -> None:
    docs = env["tmp"] / "docs"
    docs.mkdir()
    (docs / "one.md").write_text("# One\n\n## S1\n\nAlpha text 76942.\n\n## S2\n\nBeta text.\n")
    (docs / "two.txt").write_text("Gamma paragraph.\n\nDelta paragraph.\n")
    first = build(env, docs)
    assert first.files_failed == 0
    before = active_ids(env)
    calls = env["emb"].calls

    again = build(env)  # no paths: known user files are re-checked, nothing changed
    assert again.files_indexed == 0
    assert again.files_skipped == 5
    assert again.chunks_added == again.chunks_removed == 0
    assert env["emb"].calls == calls, "nothing is embedded when nothing changed"
    assert active_ids(env) == before

    (docs / "one.md").write_text("# One\n\n## S1\n\nAlpha text 76942.\n\n## S2\n\nBeta edited.\n")
    env["emb"].texts.clear()
    edited = build(env, docs)
    assert edited.files_indexed == 1
    assert by_path(edited, "one.md").added == 1
    assert by_path(edited, "one.md").removed == 1
    assert len(env["emb"].texts) == 1
    assert "Beta edited" in env["emb"].texts[0]
    after = active_ids(env)
    changed = set(before) ^ set(after)
    assert len(changed) == 2  # the old S2 chunk out, the new one in
    assert all(before.get(c, after.get(c, "")).endswith("one.md") for c in changed)

    (docs / "two.txt").unlink()
    deleted = build(env)
    assert by_path(deleted, "two.txt").status == "removed"
    assert not any(d.endswith("two.txt") for d in active_ids(env).values())
    assert deleted.files_removed == 1


def test_crash_mid_rebuild_keeps_old_index(env: dict) -> None:
    build(env)
    client = get_client(env["settings"])
    old = read_alias(client, env["settings"])["active"]
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    assert r.search("needle guidance units", 3).passages

    def explode(ev: index_mod.IndexProgress) -> None:
        if ev.done == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        build(env, rebuild=True, progress=explode)
    assert read_alias(client, env["settings"])["active"] == old
    names = [c.name for c in client.list_collections()]
    assert [n for n in names if n.startswith("testidx-2")] == [old]
    fresh = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    assert fresh.search("needle guidance units", 3).passages

    done = build(env, rebuild=True)
    assert done.rebuilt
    assert read_alias(client, env["settings"])["active"] != old
    names = [c.name for c in client.list_collections()]
    assert old not in names, "stale collection deleted after the swap"
    # Same content, same ids in the rebuilt collection.
    assert len(active_ids(env)) == done.chunks_total


def test_bad_inputs_are_reported_and_others_indexed(env: dict) -> None:
    from pypdf import PdfWriter

    docs = env["tmp"] / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nUseful text about 76942.\n")
    (docs / "empty.txt").write_text("")
    (docs / "blank.md").write_text("   \n\n")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    (docs / "latin.txt").write_bytes("Résumé of 76942 café".encode("cp1252"))
    (docs / "garbage.txt").write_bytes(b"ok \x81\x8d\x8f\x90\x9d bytes")
    (docs / "big.txt").write_bytes(b"word " * (1024 * 1024 // 5 + 1000))  # just over 1 MB
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    with (docs / "locked.pdf").open("wb") as fh:
        writer.write(fh)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (docs / "scan.pdf").write_bytes(make_pdf([""]))
    stray = env["tmp"] / "image.bin"
    stray.write_bytes(b"\x89PNG\r\n")

    report = build(env, docs, stray, env["tmp"] / "missing.md")
    status = {Path(f.path).name: f for f in report.files}
    assert status["good.md"].status == "indexed"
    assert status["latin.txt"].status == "indexed"
    assert "Windows-1252" in status["latin.txt"].warnings[0]
    expect = {
        "empty.txt": "empty",
        "blank.md": "empty",
        "binary.txt": "binary",
        "garbage.txt": "not UTF-8",
        "big.txt": "over the 1 MB limit",
        "locked.pdf": "encrypted",
        "broken.pdf": "could not be read",
        "scan.pdf": "no text layer",
        "image.bin": "unsupported file type",
        "missing.md": "no such file",
    }
    for name, words in expect.items():
        assert status[name].status == "failed", name
        assert words in status[name].message, (name, status[name].message)
    assert report.files_failed == len(expect)
    assert report.files_indexed == 5  # a.md, b.md, catalog, good.md, latin.txt
    assert "failed" in report.summary()


def test_failed_file_drops_its_old_chunks(env: dict) -> None:
    docs = env["tmp"] / "docs"
    docs.mkdir()
    f = docs / "note.txt"
    f.write_text("Old content 76942.")
    build(env, docs)
    assert any(d.endswith("note.txt") for d in active_ids(env).values())
    f.write_bytes(b"\x00\x00binary now")
    report = build(env)
    assert by_path(report, "note.txt").status == "failed"
    assert not any(d.endswith("note.txt") for d in active_ids(env).values())


# -- retrieval ---------------------------------------------------------------------------------


def test_rrf_fusion_rewards_agreement() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]])
    order = sorted(fused, key=lambda i: -fused[i])
    assert order[:2] == [1, 3]
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[4] == pytest.approx(1 / 63)
    weighted = rrf([[1], [2]], [1.0, 2.0])
    assert weighted[2] > weighted[1]


def test_tokenize_keeps_codes_and_folds_plurals() -> None:
    assert tokenize("The +76937 injections, and 0042T") == ["76937", "injection", "0042t"]


def test_code_number_in_question_pulls_passages_and_entry(env: dict) -> None:
    build(env)
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    # No word overlap with the passage that names 36573, only the code.
    res = r.search("36573", 5)
    sources = [p.source for p in res.passages]
    assert "catalog:36573" in sources[:2]
    assert any(p.source == "guidelines/b.md" and "36573" in p.codes for p in res.passages[:3])
    assert res.candidates[0].code == "36573"
    assert res.candidates[0].why == "named in the question"


def test_candidates_catalog_only_and_capped(env: dict) -> None:
    build(env)
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    res = r.search("Bill 76942 and 99999 for a central venous catheter with PICC guidance", 5)
    codes = [c.code for c in res.candidates]
    assert codes[0] == "76942"
    assert "99999" not in codes
    assert len(codes) <= 8
    assert all(env["catalog"].get(c) for c in codes)
    whys = {c.why.split(" passage")[0] for c in res.candidates}
    assert whys <= {"named in the question", "code entry matched", "mentioned in"}
    actives = [c.active for c in res.candidates[1:]]
    assert actives == sorted(actives, reverse=True), "active codes before deleted ones"


def test_guidance_addon_offered_beside_its_primary(env: dict) -> None:
    build(env)
    # Two slots: the named code and one more, which the add-on would not win by rank.
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"], max_candidates=2)
    res = r.search("36556 non-tunneled central line with ultrasound guidance", 5)
    assert [c.code for c in res.candidates] == ["36556", "76937"]
    assert res.candidates[1].why == "ultrasound-guidance add-on of 36556"
    # Not offered by the rule without guidance, nor beside a code that includes it.
    for question in ("36556 central line, no ultrasound", "36556 central line",
                     "36573 PICC with ultrasound guidance"):
        got = r.search(question, 5).candidates
        assert not any(c.why.startswith("ultrasound-guidance add-on") for c in got), question


def test_deleted_code_ranks_after_active(env: dict) -> None:
    deleted = [c for c in env["catalog"].codes.values() if not c.active]
    if not deleted:
        pytest.skip("catalog has no deleted code")
    build(env)
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    res = r.search(deleted[0].label, 10)
    flags = [c.active for c in res.candidates]
    assert flags == sorted(flags, reverse=True)


def test_retriever_sees_new_index_after_build(env: dict) -> None:
    build(env)
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"], refresh_s=3600)
    assert not any(p.source.endswith("late.md") for p in r.search("zebra stripes", 5).passages)
    docs = env["tmp"] / "docs"
    docs.mkdir()
    (docs / "late.md").write_text("# Late\n\nZebra ultrasound zebra stripes.\n")
    build(env, docs)
    # Words only the new file holds; the approximate (HNSW) dense search may rank it below
    # an entry that shares "ultrasound", so presence is what says the new index is seen.
    found = [p.source for p in r.search("zebra stripes", 5).passages]
    assert any(src.endswith("late.md") for src in found), found


def test_langchain_retriever_returns_documents(env: dict) -> None:
    build(env)
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    docs = r.as_langchain(k=3).invoke("needle guidance one unit per encounter")
    assert len(docs) == 3
    assert all(isinstance(d, Document) for d in docs)
    meta = docs[0].metadata
    assert {"id", "source", "title", "section", "page", "score", "kind", "candidates"} <= set(meta)
    assert docs[0].id == meta["id"]


def test_search_without_index_says_what_to_do(env: dict) -> None:
    r = Retriever(env["settings"], env["catalog"], embedder=env["emb"])
    with pytest.raises(index_mod.IndexUnavailable, match="advisor index"):
        r.search("anything")


# -- embedding backends: construction only -----------------------------------------------------


def test_embedding_backends_construct_from_settings(tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        embedding_backend=EmbeddingBackend.OPENAI,
        embedding_model="text-embedding-3-small",
    )
    e = make_embedder(s)
    assert isinstance(e, OpenAIEmbeddings)
    assert e.signature() == "openai:text-embedding-3-small"
    assert e.signature() == index_mod.embedding_signature(s)
    assert "api_key" not in str(e.get_config())
    s2 = Settings(
        data_dir=tmp_path,
        embedding_backend=EmbeddingBackend.OLLAMA,
        embedding_model="nomic-embed-text",
    )
    e2 = make_embedder(s2)
    assert isinstance(e2, OllamaEmbeddings)
    assert e2.host == s2.ollama_host.rstrip("/")
    packaged = make_embedder(Settings(data_dir=tmp_path))
    assert isinstance(packaged, PackagedEmbeddings)
    assert packaged.signature() == index_mod.embedding_signature(Settings(data_dir=tmp_path))
    assert packaged.default_space() == "cosine"


def test_bad_collection_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="collection prefix"):
        index_mod.alias_name(Settings(data_dir=tmp_path, collection="bad name!"))
