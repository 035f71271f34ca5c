"""kill -9 during `advisor index`, then `advisor index` again: complete and consistent.

Real processes, the packaged embedding model, the built-in guideline corpus and an embedded
Chroma in a temporary data dir. Progress is read from Chroma's SQLite file (read-only) so
each kill lands after writing has started and before the run could finish:

1. the first build is killed part-way through the corpus; the next run completes it;
2. adding a long document is killed after its first batch of chunks; the next run, not told
   about the document again, finds it half-indexed and finishes it.

After each repair the active collection holds exactly the chunk ids the chunkers produce for
the inputs (no more, no fewer: an old-or-new state, never half), no orphan collection is
left, and a search finds the documents.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.chunking import chunk_catalog, chunk_markdown, read_document
from advisor.index import builtin_docs
from knowledge.catalog import load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KILL_WAIT_S = 400.0


def long_document(tag: str, paragraphs: int = 400) -> str:
    """About 100 chunks of unique text: two embedding batches of 64."""
    return "\n\n".join(
        f"Paragraph {i} of the {tag} payer memo says that code 76942 is reported once per "
        f"encounter, item {i * 7919 % 10007}, and that the permanent image for case {i} "
        "is kept with the report in the record."
        for i in range(paragraphs)
    )


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(ADVISOR_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False")
    return env


def advisor(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], cwd=REPO,
                          env=env_for(data_dir), capture_output=True, text=True, timeout=900,
                          check=False)


def count(db: Path, sql: str, *params: str) -> int | None:
    """A count read from Chroma's SQLite file; None while it is missing or locked."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(con.execute(sql, params).fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None


def kill_when(data_dir: Path, args: list[str], sql: str, *params: str, at_least: int) -> int:
    """Start `advisor ARGS`, SIGKILL it once the count reaches ``at_least``; the count then."""
    db = data_dir / "chroma" / "chroma.sqlite3"
    proc = subprocess.Popen([sys.executable, "-m", "advisor.cli", *args], cwd=REPO,
                            env=env_for(data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + KILL_WAIT_S
    try:
        while True:
            seen = count(db, sql, *params)
            if seen is not None and seen >= at_least:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"`advisor {' '.join(args)}` ended before it could be killed "
                            f"(exit {proc.returncode}, count {seen}): {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no progress to {at_least} in {KILL_WAIT_S:g} s (count {seen})")
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return count(db, sql, *params) or 0


def expected_ids(user_files: list[Path]) -> set[str]:
    """The chunk ids the index must hold: built-in corpus, catalog and the user files."""
    ids: set[str] = set()
    for doc in builtin_docs():
        if doc.path is None:
            chunks = chunk_catalog(load_catalog())
        else:
            text = doc.path.read_text(encoding="utf-8")
            chunks = chunk_markdown(text, doc.key, "guideline", doc.path.stem)
        ids.update(c.id for c in chunks)
    for f in user_files:
        key = str(f.resolve())
        ids.update(c.id for c in read_document(f.resolve(), key)[0])
    return ids


def index_state(data_dir: Path) -> tuple[set[str], list[str]]:
    """(chunk ids of the active collection, names of all chunk collections), read by Chroma."""
    script = (
        "import json, sys\n"
        "from advisor.index import get_client, read_alias\n"
        "from advisor.settings import load_settings\n"
        "s = load_settings(); c = get_client(s)\n"
        "col = c.get_collection(read_alias(c, s)['active'])\n"
        "names = [x if isinstance(x, str) else x.name for x in c.list_collections()]\n"
        "json.dump({'ids': col.get(include=[])['ids'], 'names': names}, sys.stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env_for(data_dir),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    chunk_names = [n for n in state["names"] if n.startswith("guidelines-2")]
    return set(state["ids"]), chunk_names


def test_kill_9_during_index_then_index_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    memo = docs / "memo.txt"
    memo.write_text(long_document("first"), encoding="utf-8")

    # 1. The first build, killed part-way through the corpus.
    written = kill_when(data_dir, ["index", str(docs)], "SELECT count(*) FROM embeddings",
                        at_least=30)
    want = expected_ids([memo])
    assert 0 < written < len(want), "killed mid-build"
    status = advisor(data_dir, "search", "knee injection")
    assert status.returncode == 1 and "no index yet" in status.stderr, status.stderr[-2000:]

    done = advisor(data_dir, "index", str(docs), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["files_failed"] == 0
    assert report["chunks_total"] == len(want)
    ids, collections = index_state(data_dir)
    assert ids == want
    assert collections == [report["collection"]], "the killed run's collection is gone"

    # 2. Adding a long document, killed after its first batch of chunks.
    extra = tmp_path / "extra"
    extra.mkdir()
    policy = extra / "policy.txt"
    policy.write_text(long_document("second"), encoding="utf-8")
    key = str(policy.resolve())
    half = kill_when(
        data_dir, ["index", str(extra)],
        "SELECT count(*) FROM embedding_metadata WHERE key = 'doc' AND string_value = ?", key,
        at_least=1,
    )
    want = expected_ids([memo, policy])
    policy_chunks = len(want) - len(expected_ids([memo]))
    assert 0 < half < policy_chunks, "killed mid-document"

    done = advisor(data_dir, "index", "--json")  # no paths: known user files are re-checked
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    result = next(f for f in report["files"] if f["path"] == key)
    assert result["status"] == "indexed" and result["chunks"] == policy_chunks, result
    assert report["chunks_total"] == len(want)
    ids, collections = index_state(data_dir)
    assert ids == want
    assert collections == [report["collection"]]

    found = advisor(data_dir, "search", "second payer memo paragraph 399 permanent image",
                    "--json", "--k", "3")
    assert found.returncode == 0, found.stderr[-3000:]
    passages = json.loads(found.stdout)["passages"]
    assert any(p["source"] == key for p in passages), passages
