"""Retrieval benchmark: recall@5 and candidate@5 on the test set, query latency, indexing speed.

Run: .venv/bin/python bench/bench_retrieval.py [--queries 200] [--pad-to 2000] [--json]

Uses the real packaged embedding model and an embedded Chroma in a temporary folder.
Latency is measured on an index padded with synthetic chunks to --pad-to chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import yaml  # noqa: E402

from advisor.embeddings import PackagedEmbeddings  # noqa: E402
from advisor.index import build_index, get_client, read_alias  # noqa: E402
from advisor.retriever import Retriever  # noqa: E402
from advisor.settings import Settings  # noqa: E402
from knowledge.catalog import load_catalog  # noqa: E402

QUESTIONS = ROOT / "tests" / "retrieval" / "questions.yaml"

_WORDS = (
    "patient scan image report probe transducer vessel organ lesion follow-up payer policy "
    "documentation modifier units encounter session region bilateral limited complete guided "
    "needle injection aspiration biopsy catheter Doppler duplex echo fetal pelvic renal hepatic "
    "thyroid carotid venous arterial muscle tendon joint nerve block fluid effusion"
).split()


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    """The retrieval test set."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]


def gold_ids(collection, questions: list[dict]) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """Resolve (file, section) gold references to chunk ids of the active collection."""
    got = collection.get(include=["metadatas"])
    by_ref: dict[tuple[str, str], set[str]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        by_ref.setdefault((str(meta["source"]), str(meta["section"])), set()).add(cid)
    out: dict[str, set[str]] = {}
    for q in questions:
        ids: set[str] = set()
        for ref in q["gold"]:
            ids |= by_ref.get((f"guidelines/{ref['file']}", ref["section"]), set())
        out[q["id"]] = ids
    return out


def evaluate(retriever: Retriever, questions: list[dict], gold: dict[str, set[str]], k: int = 5):  # type: ignore[no-untyped-def]
    """recall@k of gold passages and candidate@k of gold codes, with the misses."""
    hits = cands = 0
    misses = []
    for q in questions:
        res = retriever.search(q["question"], k)
        got_ids = {p.id for p in res.passages[:k]}
        got_codes = [c.code for c in res.candidates[:k]]
        p_ok = bool(got_ids & gold[q["id"]])
        c_ok = all(code in got_codes for code in q["codes"])
        hits += p_ok
        cands += c_ok
        if not (p_ok and c_ok):
            misses.append(
                {
                    "id": q["id"],
                    "passage": p_ok,
                    "codes": c_ok,
                    "got": [f"{p.source.split('/')[-1]}#{p.section}" for p in res.passages[:k]],
                    "candidates": got_codes,
                }
            )
    n = len(questions)
    return hits / n, cands / n, misses


def pad_chunks(collection, embedder, target: int, seed: int = 7) -> float:  # type: ignore[no-untyped-def]
    """Add synthetic chunks until the collection holds `target`; returns chunks/s embedded."""
    rng = random.Random(seed)
    need = target - collection.count()
    if need <= 0:
        return 0.0
    started = time.perf_counter()
    for start in range(0, need, 64):
        n = min(64, need - start)
        texts = [
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(60, 140)))
            + f" {rng.randint(10000, 99999)}."
            for _ in range(n)
        ]
        ids = [f"pad-{start + i}" for i in range(n)]
        metas = [
            {
                "source": f"synthetic/{(start + i) // 10}.txt",
                "title": "Synthetic",
                "section": f"S{start + i}",
                "kind": "user",
                "page": -1,
                "as_of": "",
                "source_keys": "",
                "codes": "",
                "doc": f"synthetic/{(start + i) // 10}.txt",
                "doc_hash": "x",
            }
            for i in range(n)
        ]
        collection.add(ids=ids, embeddings=embedder(texts), documents=texts, metadatas=metas)
    return need / (time.perf_counter() - started)


def main() -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=200, help="timed queries")
    ap.add_argument("--pad-to", type=int, default=2000, help="index size for the latency run")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()

    questions = load_questions()
    catalog = load_catalog()
    embedder = PackagedEmbeddings()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), collection="bench")
        t0 = time.perf_counter()
        embedder(["load the model"])
        load_s = time.perf_counter() - t0
        report = build_index(settings, catalog=catalog, embedder=embedder)
        index_rate = report.chunks_added / report.seconds
        retriever = Retriever(settings, catalog, embedder=embedder)
        retriever.warm_up()
        client = get_client(settings)
        collection = client.get_collection(
            read_alias(client, settings)["active"], embedding_function=embedder
        )
        gold = gold_ids(collection, questions)
        unresolved = [qid for qid, ids in gold.items() if not ids]
        recall, cand, misses = evaluate(retriever, questions, gold)

        pad_rate = pad_chunks(collection, embedder, args.pad_to)
        # The padding bypassed build_index; force the retriever to see it.
        retriever = Retriever(settings, catalog, embedder=embedder, refresh_s=0)
        from advisor import retriever as retriever_mod

        retriever_mod._CORPORA.clear()
        retriever.warm_up()
        texts = [q["question"] for q in questions]
        for text in texts[:10]:
            retriever.search(text, 5)  # warm caches
        retriever.refresh_s = 3600
        times = []
        for i in range(args.queries):
            t = time.perf_counter()
            retriever.search(texts[i % len(texts)], 5)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        result = {
            "questions": len(questions),
            "unresolved_gold": unresolved,
            "recall_at_5": round(recall, 4),
            "candidate_at_5": round(cand, 4),
            "index_chunks": collection.count(),
            "latency_ms_p50": round(statistics.median(times), 1),
            "latency_ms_p95": round(times[int(0.95 * len(times)) - 1], 1),
            "latency_ms_max": round(times[-1], 1),
            "model_load_s": round(load_s, 2),
            "build_chunks": report.chunks_added,
            "build_seconds": report.seconds,
            "build_chunks_per_s": round(index_rate, 1),
            "embed_add_chunks_per_s": round(pad_rate, 1),
            "misses": misses,
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key != "misses":
                print(f"{key:24} {value}")
        for m in misses:
            print(f"miss {m['id']}: passage={m['passage']} codes={m['codes']} {m['candidates']}")
            for g in m["got"]:
                print(f"     {g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
