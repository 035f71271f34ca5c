"""The Chroma index: what is indexed, incremental updates, crash-safe rebuilds.

Layout in Chroma (embedded PersistentClient under ``settings.chroma_dir``, or a server
when ``settings.chroma_url`` is set):

- ``<prefix>-<stamp>``: the chunk collections. Each chunk's metadata names the document
  it came from (``doc``) and that document's content hash (``doc_hash``); together they are
  the manifest (document -> content hash -> chunk ids), so the manifest can never disagree
  with what is really indexed, on an embedded store or on a shared server alike.
- ``<prefix>-alias``: a tiny collection whose metadata names the active chunk collection.
  A rebuild fills a new collection and only then rewrites this record (one transaction),
  so a crash mid-way leaves the old index active and usable.

The store itself (clients, alias record, errors) is :mod:`advisor.store`; its public names
are re-exported here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from advisor.chunking import (
    SUPPORTED_SUFFIXES,
    Chunk,
    DocumentError,
    Kind,
    chunk_catalog,
    chunk_markdown,
    read_document,
)
from advisor.embeddings import (
    AdvisorEmbeddingFunction,
    make_embedder,
)
from advisor.limits import document_problem

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from advisor.settings import Settings
    from knowledge.catalog import Catalog

from advisor.store import (
    _LOCAL_REVISION,
    ALIAS_SUFFIX,
    DataDirReadOnly,
    IndexDamaged,
    IndexUnavailable,
    _collection_names,
    _delete_quietly,
    _delete_stale,
    _new_collection_name,
    _NoEmbeddings,
    _write_alias,
    alias_name,
    embedding_signature,
    get_client,
    local_revision,
    open_active,
    read_alias,
    set_aside_damaged,
    store_error,
)

__all__ = [
    "ALIAS_SUFFIX",
    "DataDirReadOnly",
    "IndexDamaged",
    "IndexUnavailable",
    "alias_name",
    "build_index",
    "embedding_signature",
    "get_client",
    "index_ready",
    "local_revision",
    "open_active",
    "read_alias",
    "read_manifest",
    "set_aside_damaged",
    "store_error",
]

CATALOG_DOC = "catalog"
_ADD_BATCH = 64


class FileResult(BaseModel):
    """What happened to one document."""

    path: str = Field(description="File path, 'guidelines/<name>.md' or 'catalog'.")
    status: Literal["indexed", "unchanged", "failed", "removed"] = Field(description="Outcome.")
    chunks: int = Field(0, description="Chunks the document has in the index now.")
    added: int = Field(0, description="Chunks embedded and added in this run.")
    removed: int = Field(0, description="Chunks removed in this run.")
    message: str = Field("", description="Why it failed or was removed, for a person.")
    warnings: list[str] = Field(default_factory=list, description="Indexed, but look at this.")


class IndexReport(BaseModel):
    """Counts and per-file messages of one indexing run."""

    collection: str = Field(description="Active collection after the run.")
    rebuilt: bool = Field(description="A new collection was built and swapped in.")
    files_seen: int = Field(0, description="Documents considered (catalog counts as one).")
    files_indexed: int = Field(0, description="New or changed documents (re-)embedded.")
    files_skipped: int = Field(0, description="Unchanged documents left as they were.")
    files_failed: int = Field(0, description="Documents that could not be indexed.")
    files_removed: int = Field(0, description="Documents gone from disk, chunks removed.")
    chunks_added: int = Field(0, description="Chunks embedded and added.")
    chunks_removed: int = Field(0, description="Chunks deleted.")
    chunks_total: int = Field(0, description="Chunks in the active collection.")
    seconds: float = Field(0.0, description="Wall time of the run.")
    files: list[FileResult] = Field(default_factory=list, description="Per-document results.")
    set_aside: str | None = Field(None, description="Where a damaged store was moved, if it was.")

    def summary(self) -> str:
        """One line for a terminal."""
        moved = f"damaged index moved to {self.set_aside}; " if self.set_aside else ""
        return moved + (
            f"{self.files_seen} files: {self.files_indexed} indexed, {self.files_skipped} "
            f"unchanged, {self.files_failed} failed, {self.files_removed} removed; "
            f"+{self.chunks_added}/-{self.chunks_removed} chunks, {self.chunks_total} in "
            f"{self.collection} ({self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class IndexProgress:
    """Progress event handed to the callback before each document."""

    done: int
    total: int
    path: str
    stage: Literal["document", "swap"] = "document"


ProgressCallback = Callable[[IndexProgress], None]


# -- client and collections ------------------------------------------------------------


@dataclass(frozen=True)
class _Doc:
    key: str  # manifest key and citation source
    kind: Kind
    path: Path | None


def builtin_docs(guidelines_dir: Path | None = None) -> list[_Doc]:
    """The guideline corpus and the catalog, in a stable order."""
    from knowledge.catalog import GUIDELINES_DIR

    folder = guidelines_dir or GUIDELINES_DIR
    docs = [_Doc(f"guidelines/{p.name}", "guideline", p) for p in sorted(folder.glob("*.md"))]
    docs.append(_Doc(CATALOG_DOC, "code", None))
    return docs


def _expand_user_paths(paths: Iterable[str | Path]) -> tuple[list[_Doc], list[FileResult]]:
    """Files named directly, and supported files found (recursively) in folders named."""
    docs: list[_Doc] = []
    missing: list[FileResult] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue  # hidden files and folders (.git, editor swap files)
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES:
                    docs.append(_Doc(str(p.resolve()), "user", p.resolve()))
        elif path.is_file():
            docs.append(_Doc(str(path.resolve()), "user", path.resolve()))
        else:
            missing.append(
                FileResult(path=str(path), status="failed", message="no such file or folder")
            )
    return docs, missing


def catalog_fingerprint(catalog: Catalog) -> str:
    """Content hash of the catalog as indexed."""
    return _catalog_hash(chunk_catalog(catalog))


def _catalog_hash(chunks: list[Chunk]) -> str:
    return _hash_text("\n".join(c.id + repr(c.metadata()) for c in chunks))


def builtin_fingerprint(catalog: Catalog, guidelines_dir: Path | None = None) -> str:
    """Content hash of the built-in corpus: guideline files and the catalog's indexed text."""
    h = hashlib.sha256()
    for doc in builtin_docs(guidelines_dir):
        h.update(doc.key.encode())
        digest = _hash_file(doc.path) if doc.path else catalog_fingerprint(catalog)
        h.update(digest.encode())
    return h.hexdigest()[:32]


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


class _Loaded:
    """A document's hash and a way to chunk it (chunking only when the hash changed)."""

    def __init__(self, doc: _Doc, settings: Settings, catalog: Catalog) -> None:
        self.doc = doc
        self.settings = settings
        self.catalog = catalog
        self._catalog_chunks: list[Chunk] | None = None

    def content_hash(self) -> str:
        if self.doc.path is None:
            self._catalog_chunks = chunk_catalog(self.catalog)
            return _catalog_hash(self._catalog_chunks)
        if self.doc.kind == "user":
            problem = document_problem(self.doc.path, self.settings.max_upload_mb)
            if problem:
                raise DocumentError(problem)
        return _hash_file(self.doc.path)

    def chunks(self) -> tuple[list[Chunk], list[str]]:
        if self.doc.path is None:
            return self._catalog_chunks or chunk_catalog(self.catalog), []
        if self.doc.kind == "guideline":
            text = self.doc.path.read_text(encoding="utf-8")
            chunks = chunk_markdown(text, self.doc.key, "guideline", self.doc.path.stem)
            return chunks, []
        return read_document(self.doc.path, self.doc.key)


# -- manifest --------------------------------------------------------------------------


@dataclass
class ManifestEntry:
    """What the index holds for one document."""

    hashes: set[str]
    ids: set[str]
    kind: str
    sizes: set[int] = field(default_factory=set)  # chunk counts the chunks say it has

    def complete(self, digest: str) -> bool:
        """True when the index holds this version of the document, all of it and nothing else."""
        if self.hashes != {digest}:
            return False
        # Chunks written before counts were recorded carry none; they are trusted as before.
        return not self.sizes or self.sizes == {len(self.ids)}


def read_manifest(collection: Collection) -> dict[str, ManifestEntry]:
    """Document -> content hash(es) -> chunk ids, read from the chunks' own metadata.

    More than one hash for a document, or fewer chunks than its chunks say it has, means an
    earlier run stopped half-way through it (a crash, a kill -9); such a document never
    counts as unchanged, so the next run finishes the job.
    """
    manifest: dict[str, ManifestEntry] = {}
    got = collection.get(include=["metadatas"])  # type: ignore[list-item]
    for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
        meta = meta or {}
        key = str(meta.get("doc", ""))
        entry = manifest.setdefault(key, ManifestEntry(set(), set(), str(meta.get("kind", ""))))
        entry.hashes.add(str(meta.get("doc_hash", "")))
        entry.ids.add(cid)
        if isinstance(meta.get("doc_chunks"), int):
            entry.sizes.add(int(meta["doc_chunks"]))
    return manifest


# -- building --------------------------------------------------------------------------


# Long: the crash-safe order of the steps (target collection, documents, alias, stale
# collections) is the point of this function and reads best in one place.
def build_index(
    settings: Settings,
    paths: Sequence[str | Path] = (),
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
    *,
    catalog: Catalog | None = None,
    embedder: AdvisorEmbeddingFunction | None = None,
    client: ClientAPI | None = None,
    guidelines_dir: Path | None = None,
) -> IndexReport:
    """Index the built-in corpus, the catalog, known user files and `paths`.

    Incremental by default: unchanged documents are skipped, changed ones re-chunked (only
    chunks whose text changed are embedded again), vanished user files removed. With
    ``rebuild=True`` (or when the embedding model changed) everything goes into a new
    collection that replaces the active one only once complete. One bad file never stops
    the run: it is reported in ``IndexReport.files``. Exceptions raised by `progress`
    abort the run (that is how a caller cancels); the previously active index stays.
    """
    started = time.perf_counter()
    if catalog is None:
        from knowledge.catalog import load_catalog

        catalog = load_catalog()
    set_aside: Path | None = None
    if client is None:
        try:
            client = get_client(settings)
        except IndexDamaged:
            if not rebuild or settings.chroma_url:
                raise
            set_aside = set_aside_damaged(settings)
            client = get_client(settings)
    embedder = embedder or make_embedder(settings)
    active, alias = open_active(client, settings, embedder)
    signature = embedder.signature()
    if active is not None and (active.metadata or {}).get("embedding") != signature:
        rebuild = True  # vectors from another model cannot share a collection
    old_manifest = read_manifest(active) if active is not None else {}

    new_collection = rebuild or active is None
    if new_collection:
        target = client.create_collection(
            _new_collection_name(settings),
            embedding_function=embedder,
            metadata={"embedding": signature, "created": datetime.now(UTC).isoformat()},
            configuration={"hnsw": {"space": "cosine"}},
        )
        manifest: dict[str, ManifestEntry] = {}
    else:
        assert active is not None
        target = active
        manifest = old_manifest

    report = IndexReport(
        collection=target.name,
        rebuilt=new_collection and active is not None,
        set_aside=str(set_aside) if set_aside else None,
    )
    try:
        _index_all(
            settings,
            catalog,
            embedder,
            target,
            manifest,
            old_manifest,
            paths,
            progress,
            report,
            guidelines_dir,
        )
        if progress:
            progress(IndexProgress(report.files_seen, report.files_seen, target.name, "swap"))
        changed = new_collection or report.chunks_added or report.chunks_removed
        revision = int(alias.get("revision", 0)) + (1 if changed else 0)
        _write_alias(
            client,
            settings,
            {
                "active": target.name,
                "revision": revision,
                "embedding": signature,
                "builtin": builtin_fingerprint(catalog, guidelines_dir),
                "updated": datetime.now(UTC).isoformat(),
            },
        )
    except BaseException:
        if new_collection:
            # The half-built collection is useless; the alias still names the old one.
            _delete_quietly(client, target.name)
        raise
    _LOCAL_REVISION[0] += 1
    _delete_stale(client, settings, keep=target.name)
    report.chunks_total = target.count()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _index_all(
    settings: Settings,
    catalog: Catalog,
    embedder: AdvisorEmbeddingFunction,
    target: Collection,
    manifest: dict[str, ManifestEntry],
    old_manifest: dict[str, ManifestEntry],
    paths: Sequence[str | Path],
    progress: ProgressCallback | None,
    report: IndexReport,
    guidelines_dir: Path | None,
) -> None:
    user_docs, missing = _expand_user_paths(paths)
    docs = builtin_docs(guidelines_dir)
    builtin_keys = {d.key for d in docs}
    seen = set(builtin_keys)
    for d in user_docs:
        if d.key not in seen:
            docs.append(d)
            seen.add(d.key)
    # User files indexed earlier stay in the index (and are re-checked) until they vanish.
    gone: list[str] = []
    for key, entry in old_manifest.items():
        if key in seen:
            continue
        if entry.kind == "user" and Path(key).is_file():
            docs.append(_Doc(key, "user", Path(key)))
            seen.add(key)
        else:
            gone.append(key)
    report.files.extend(missing)
    report.files_failed += len(missing)
    report.files_seen = len(docs) + len(missing)

    for i, doc in enumerate(docs):
        if progress:
            progress(IndexProgress(i, len(docs), doc.key))
        report.files.append(_index_one(doc, settings, catalog, embedder, target, manifest, report))

    for key in gone:
        entry = manifest.get(key)
        if entry is None:
            continue
        target.delete(ids=sorted(entry.ids))
        report.chunks_removed += len(entry.ids)
        report.files_removed += 1
        reason = "no longer in the built-in corpus" if "/" not in key else "file no longer exists"
        report.files.append(
            FileResult(path=key, status="removed", removed=len(entry.ids), message=reason)
        )


def _index_one(
    doc: _Doc,
    settings: Settings,
    catalog: Catalog,
    embedder: AdvisorEmbeddingFunction,
    target: Collection,
    manifest: dict[str, ManifestEntry],
    report: IndexReport,
) -> FileResult:
    """Index one document; every failure becomes a FileResult, never an exception."""
    loaded = _Loaded(doc, settings, catalog)
    old = manifest.get(doc.key)
    try:
        digest = loaded.content_hash()
        if old is not None and old.complete(digest):
            report.files_skipped += 1
            return FileResult(path=doc.key, status="unchanged", chunks=len(old.ids))
        chunks, warnings = loaded.chunks()
        if not chunks:
            raise DocumentError("no text found to index")
        added, removed = _apply(target, embedder, doc, digest, chunks, old)
    except (DocumentError, OSError, UnicodeDecodeError) as exc:
        return _failed(doc, target, old, report, str(exc))
    except Exception as exc:  # a parser bug on one odd file must not stop the run
        return _failed(doc, target, old, report, f"unexpected error: {type(exc).__name__}: {exc}")
    report.files_indexed += 1
    report.chunks_added += added
    report.chunks_removed += removed
    return FileResult(
        path=doc.key,
        status="indexed",
        chunks=len(chunks),
        added=added,
        removed=removed,
        warnings=warnings,
    )


def _failed(
    doc: _Doc, target: Collection, old: ManifestEntry | None, report: IndexReport, message: str
) -> FileResult:
    report.files_failed += 1
    removed = 0
    if old is not None and old.ids:
        # Stale text of a file that now fails must not be cited as if it were current.
        try:
            target.delete(ids=sorted(old.ids))
            removed = len(old.ids)
            report.chunks_removed += removed
            message += "; its previously indexed chunks were removed"
        except Exception as exc:  # the store itself failing is reported, not raised
            message += f"; removing its old chunks failed: {exc}"
    return FileResult(path=doc.key, status="failed", removed=removed, message=message)


def _apply(
    target: Collection,
    embedder: AdvisorEmbeddingFunction,
    doc: _Doc,
    digest: str,
    chunks: list[Chunk],
    old: ManifestEntry | None,
) -> tuple[int, int]:
    """Write a document's chunks: embed only new ids, re-tag kept ones, delete the rest."""
    old_ids = old.ids if old else set()
    metas = {c.id: {**c.metadata(), "doc": doc.key, "doc_hash": digest} for c in chunks}
    for meta in metas.values():
        meta["doc_chunks"] = len(metas)  # lets the next run see a half-written document
    new = [c for c in chunks if c.id not in old_ids]
    kept = [c.id for c in chunks if c.id in old_ids]
    # Add before delete: a crash in between leaves duplicates that the next run cleans up
    # (the document then has two hashes), never a document with no chunks at all.
    for start in range(0, len(new), _ADD_BATCH):
        batch = new[start : start + _ADD_BATCH]
        vectors = embedder([c.search_text for c in batch])
        target.upsert(
            ids=[c.id for c in batch],
            embeddings=vectors,  # type: ignore[arg-type]
            documents=[c.text for c in batch],
            metadatas=[metas[c.id] for c in batch],  # type: ignore[misc]
        )
    if kept:
        target.update(ids=kept, metadatas=[metas[i] for i in kept])  # type: ignore[misc]
    stale = sorted(old_ids - set(metas))
    if stale:
        target.delete(ids=stale)
    return len(new), len(stale)


def index_ready(
    settings: Settings,
    catalog: Catalog | None = None,
    guidelines_dir: Path | None = None,
    *,
    embedder: AdvisorEmbeddingFunction | None = None,
) -> bool:
    """True when an index exists for these embeddings and the built-in corpus is current.

    Cheap (no model is loaded): `make run` calls it to build only when needed. An
    unreachable server or a missing store counts as not ready.
    """
    if not settings.chroma_url and not settings.chroma_dir.exists():
        return False
    try:
        client = get_client(settings)
        alias = read_alias(client, settings)
        name = alias.get("active")
        if not name or name not in _collection_names(client):
            return False
        signature = embedder.signature() if embedder else embedding_signature(settings)
        if alias.get("embedding") != signature:
            return False
        if catalog is None:
            from knowledge.catalog import load_catalog

            catalog = load_catalog()
        if alias.get("builtin") != builtin_fingerprint(catalog, guidelines_dir):
            return False
        col = client.get_collection(name, embedding_function=_NoEmbeddings())
        return col.count() > 0
    except IndexUnavailable:
        return False

