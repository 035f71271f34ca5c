"""Retrieval with the real packaged model, a real embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from advisor.embeddings import PackagedEmbeddings
from advisor.index import build_index, get_client, index_ready, read_alias
from advisor.retriever import Retriever
from advisor.settings import Settings
from knowledge.catalog import GUIDELINES_DIR, load_catalog

pytestmark = pytest.mark.integration

QUESTIONS = Path(__file__).resolve().parent.parent / "retrieval" / "questions.yaml"


@pytest.fixture(scope="module")
def embedder() -> PackagedEmbeddings:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    return PackagedEmbeddings()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, embedder: PackagedEmbeddings) -> dict:
    settings = Settings(data_dir=tmp_path_factory.mktemp("embedded"), collection="itest")
    catalog = load_catalog()
    report = build_index(settings, catalog=catalog, embedder=embedder)
    assert report.files_failed == 0, report.files
    return {"settings": settings, "catalog": catalog, "report": report}


def _gold_ids(settings: Settings, embedder: PackagedEmbeddings, questions: list[dict]) -> dict:
    client = get_client(settings)
    col = client.get_collection(read_alias(client, settings)["active"], embedding_function=embedder)
    got = col.get(include=["metadatas"])
    by_ref: dict[tuple[str, str], set[str]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        by_ref.setdefault((str(meta["source"]), str(meta["section"])), set()).add(cid)
    out = {}
    for q in questions:
        ids: set[str] = set()
        for ref in q["gold"]:
            ids |= by_ref.get((f"guidelines/{ref['file']}", ref["section"]), set())
        out[q["id"]] = ids
    return out


def test_question_set_covers_every_family_and_resolves(embedded: dict, embedder) -> None:
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    assert len(questions) >= 40
    families = {q["family"] for q in questions}
    assert set(embedded["catalog"].families) <= families
    assert {"clinician", "coder"} == {q["style"] for q in questions}
    gold = _gold_ids(embedded["settings"], embedder, questions)
    unresolved = [qid for qid, ids in gold.items() if not ids]
    assert not unresolved, f"gold passages not found (guideline edited?): {unresolved}"
    for q in questions:
        for code in q["codes"]:
            assert embedded["catalog"].get(code), (q["id"], code)


def test_recall_and_candidates_at_5(embedded: dict, embedder) -> None:
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    gold = _gold_ids(embedded["settings"], embedder, questions)
    retriever = Retriever(embedded["settings"], embedded["catalog"], embedder=embedder)
    passage_hits, code_hits, misses = 0, 0, []
    for q in questions:
        res = retriever.search(q["question"], 5)
        p_ok = bool({p.id for p in res.passages[:5]} & gold[q["id"]])
        top_codes = [c.code for c in res.candidates[:5]]
        c_ok = all(code in top_codes for code in q["codes"])
        passage_hits += p_ok
        code_hits += c_ok
        if not (p_ok and c_ok):
            misses.append((q["id"], p_ok, c_ok, top_codes))
    n = len(questions)
    assert passage_hits / n >= 0.95, misses
    assert code_hits / n >= 0.95, misses


def test_exact_code_question_and_citations(embedded: dict, embedder) -> None:
    retriever = Retriever(embedded["settings"], embedded["catalog"], embedder=embedder)
    res = retriever.search("76942", 5)
    assert res.candidates[0].code == "76942"
    assert any(p.source == "catalog:76942" for p in res.passages)
    assert all("76942" in p.codes for p in res.passages)
    cite = res.passages[0].citation()
    assert set(cite) == {"id", "source", "title", "section", "page", "score"}
    again = retriever.search("76942", 5)
    assert [p.id for p in again.passages] == [p.id for p in res.passages]


def test_index_ready_and_incremental_noop(embedded: dict, embedder) -> None:
    assert index_ready(embedded["settings"], embedded["catalog"])
    report = build_index(embedded["settings"], catalog=embedded["catalog"], embedder=embedder)
    assert report.files_indexed == 0
    assert report.chunks_added == 0
    assert report.files_skipped == embedded["report"].files_seen


# -- the Chroma server path --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: see {path / 'server.log'}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_server_path_build_search_rebuild(
    chroma_server: str, tmp_path: Path, embedder: PackagedEmbeddings
) -> None:
    guides = tmp_path / "guides"
    guides.mkdir()
    for name in ("vascular-access-guidance-76937.md", "ultrasound-needle-guidance-76942.md"):
        shutil.copy(GUIDELINES_DIR / name, guides / name)
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server, collection="srv")
    catalog = load_catalog()
    assert not index_ready(settings, catalog, guides)
    report = build_index(settings, catalog=catalog, embedder=embedder, guidelines_dir=guides)
    assert report.files_failed == 0
    assert not (tmp_path / "data" / "chroma").exists(), "server mode writes no local store"
    assert index_ready(settings, catalog, guides)

    retriever = Retriever(settings, catalog, embedder=embedder)
    res = retriever.search("ultrasound guidance for a central venous catheter", 5)
    assert any(p.source.endswith("vascular-access-guidance-76937.md") for p in res.passages)
    assert "76937" in [c.code for c in res.candidates]

    old = read_alias(get_client(settings), settings)["active"]
    rebuilt = build_index(
        settings, rebuild=True, catalog=catalog, embedder=embedder, guidelines_dir=guides
    )
    assert rebuilt.rebuilt
    client = get_client(settings)
    names = [c.name for c in client.list_collections()]
    assert old not in names
    assert read_alias(client, settings)["active"] in names
    again = retriever.search("ultrasound guidance for a central venous catheter", 5)
    assert [p.id for p in again.passages] == [p.id for p in res.passages], "ids are content-derived"
