"""Hybrid retrieval: dense (Chroma) + lexical (BM25), fused by reciprocal rank, with codes.

Dense vectors find passages that say the same thing in other words (clinician phrasing);
BM25 finds exact terms and code numbers, which embeddings blur ("76942" and "76937" look
alike to a sentence model). A code typed in the question pulls every passage that
mentions it and its catalog entry. Candidates are catalog codes only, so nothing the
retriever suggests can be a code the checker has never heard of.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, ConfigDict, Field

from advisor.embeddings import AdvisorEmbeddingFunction, make_embedder
from advisor.index import IndexUnavailable, get_client, local_revision, open_active
from guardrails.question import read_frame
from knowledge.codes import mentions

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from advisor.settings import Settings
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)

PassageKind = Literal["guideline", "code", "user"]

RRF_K = 60  # the usual RRF constant: damps the head so one list cannot dominate
DENSE_DEPTH = 40
LEXICAL_DEPTH = 40
CODE_BOOST = 1.0  # weight of the "mentions a code named in the question" list
ENTRY_BOOST = 2.0  # weight of the catalog entries of codes named in the question
MAX_CANDIDATES = 8
SERVER_RETRY_S = 15.0  # while a Chroma server is unreachable, try it again this often
NO_INDEX = "there is no index yet"

_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i if in is it its may "
    "of on or our should so that the their then there these this to was we what when "
    "which who will with you your".split()
)
_TOKEN_RE = re.compile(r"[a-z0-9]+")


def query_codes(query: str) -> list[str]:
    """Codes a query names ('+76937' and '76937-26' still name 76937), by the code grammar."""
    return mentions(query)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens with stopwords dropped and plurals folded."""
    out = []
    for tok in _TOKEN_RE.findall(text.lower()):
        if tok in _STOPWORDS:
            continue
        if len(tok) > 4 and not tok.isdigit():
            if tok.endswith("ies"):
                tok = tok[:-3] + "y"
            elif tok.endswith("s") and not tok.endswith("ss"):
                tok = tok[:-1]
        out.append(tok)
    return out


def rrf(rankings: list[list[int]], weights: list[float] | None = None) -> dict[int, float]:
    """Reciprocal rank fusion: sum of weight / (RRF_K + rank) over the lists (rank from 1)."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (RRF_K + rank)
    return fused


class Passage(BaseModel):
    """One retrieved chunk, citable by its content-derived id."""

    id: str = Field(description="Stable chunk id (hash of source, section and text).")
    text: str = Field(description="Chunk text.")
    source: str = Field(description="'guidelines/<file>.md', 'catalog:<code>' or a file path.")
    title: str = Field(description="Document title.")
    section: str = Field(description="Section heading (or 'Page N' for PDFs).")
    page: int | None = Field(None, description="PDF page, from 1.")
    score: float = Field(description="Fused retrieval score (higher is better).")
    source_keys: list[str] = Field(default_factory=list, description="Source keys it rests on.")
    codes: list[str] = Field(default_factory=list, description="Codes the chunk mentions.")
    kind: PassageKind = Field(description="guideline, code (catalog entry) or user document.")
    as_of: str | None = Field(None, description="As-of date of the document.")

    def citation(self) -> dict[str, Any]:
        """The record an answer cites."""
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "page": self.page,
            "score": round(self.score, 6),
        }


class Candidate(BaseModel):
    """A catalog code the drafting model may consider, and why it is offered."""

    code: str = Field(description="Catalog code.")
    label: str = Field(description="Catalog label.")
    why: str = Field(description="Why it is a candidate.")
    score: float = Field(description="Ranking score (higher is better).")
    active: bool = Field(True, description="False for a deleted code.")
    fit: str = Field(
        "", description="How the code fits the question as read: 'fits', 'ruled out' or '' "
        "(advisor.prompts.FITS, RULED_OUT)."
    )


class RetrievalResult(BaseModel):
    """Passages and candidate codes for one question."""

    query: str = Field(description="The question as searched.")
    passages: list[Passage] = Field(default_factory=list, description="Best first.")
    candidates: list[Candidate] = Field(default_factory=list, description="Best first.")
    seconds: float = Field(0.0, description="Search time.")
    notice: str | None = Field(
        None, description="A caveat to show with the answer (e.g. a fallback index was used)."
    )

    def citations(self) -> list[dict[str, Any]]:
        """Citation records of all passages."""
        return [p.citation() for p in self.passages]


@dataclass
class _Corpus:
    """Every chunk of the active collection, held in memory for BM25 and code lookups."""

    name: str
    revision: int
    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]]
    bm25: Any
    by_id: dict[str, int]
    by_code: dict[str, list[int]]  # code -> chunks mentioning it
    entry_of: dict[str, int]  # code -> its catalog-entry chunk


_CORPORA: dict[tuple[str, str, int], _Corpus] = {}
_CORPUS_LOCK = threading.Lock()


def _search_text(text: str, meta: dict[str, Any]) -> str:
    title, section = str(meta.get("title", "")), str(meta.get("section", ""))
    head = title if section in ("", title) else f"{title} — {section}"
    return f"{head}\n{text}"


def _load_corpus(collection: Collection, revision: int) -> _Corpus:
    from rank_bm25 import BM25Okapi

    got = collection.get(include=["documents", "metadatas"])  # type: ignore[list-item]
    ids = list(got["ids"])
    texts = [d or "" for d in (got["documents"] or [])]
    metas = [dict(m or {}) for m in (got["metadatas"] or [])]
    tokens = [tokenize(_search_text(t, m)) for t, m in zip(texts, metas, strict=True)]
    bm25 = BM25Okapi(tokens) if tokens else None
    by_code: dict[str, list[int]] = {}
    entry_of: dict[str, int] = {}
    for i, meta in enumerate(metas):
        for code in str(meta.get("codes", "")).split():
            by_code.setdefault(code, []).append(i)
        if meta.get("kind") == "code" and meta.get("code"):
            entry_of[str(meta["code"])] = i
    return _Corpus(
        name=collection.name,
        revision=revision,
        ids=ids,
        texts=texts,
        metas=metas,
        bm25=bm25,
        by_id={cid: i for i, cid in enumerate(ids)},
        by_code=by_code,
        entry_of=entry_of,
    )


class Retriever:
    """Hybrid search over the active index; build once per process and reuse.

    The embedding model and the BM25 corpus are loaded once; the corpus is rebuilt when
    the active collection or its revision changes (checked at most every `refresh_s`
    seconds, and at once after a build in this process).
    """

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        embedder: AdvisorEmbeddingFunction | None = None,
        client: ClientAPI | None = None,
        refresh_s: float = 2.0,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.embedder = embedder or make_embedder(settings)
        self._client = client
        self.refresh_s = refresh_s
        self.max_candidates = max_candidates
        self._collection: Collection | None = None
        self._corpus: _Corpus | None = None
        self._checked_at = -math.inf
        self._checked_local = -1
        self._lock = threading.RLock()
        self._local: Retriever | None = None  # the local index, while the server is down
        self._local_until = -math.inf

    @property
    def client(self) -> ClientAPI:
        """The Chroma client (opened on first use)."""
        if self._client is None:
            self._client = get_client(self.settings)
        return self._client

    def warm_up(self) -> None:
        """Load the embedding model and the corpus now rather than on the first question.

        With a Chroma server that cannot be reached, the local index is loaded instead when
        there is one (see :meth:`search`); without one the error is raised.
        """
        try:
            self._current()
        except Exception as exc:
            local = self._fallback_for(exc)
            if local is None:
                raise
            log.warning("Chroma server unreachable at start-up, local index loaded: %s", exc)
            local._current()
        self.embedder.embed_query(["warm up"])

    # -- a Chroma server that cannot be reached ----------------------------------------
    def _fallback_for(self, exc: BaseException) -> Retriever | None:
        """The retriever on the local index to use instead of an unreachable server, or None.

        None when no server is configured, when the failure is not the server's (an empty
        index is answered as such), or when this data dir holds no index of its own.
        """
        if not self.settings.chroma_url or str(exc).startswith(NO_INDEX):
            return None
        with self._lock:
            if self._local is None:
                if not (self.settings.chroma_dir / "chroma.sqlite3").exists():
                    return None
                local_settings = self.settings.model_copy(update={"chroma_url": None})
                self._local = Retriever(
                    local_settings, self.catalog, embedder=self.embedder,
                    refresh_s=self.refresh_s, max_candidates=self.max_candidates,
                )
            return self._local

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        """Passages (best first) and candidate codes for a question.

        When the Chroma server (``ADVISOR_CHROMA_URL``) cannot be reached and this data dir
        has an index of its own, that index is searched and the result carries a notice
        saying so; the server is tried again after ``SERVER_RETRY_S``.
        """
        if time.monotonic() < self._local_until and self._local is not None:
            return self._search_local(self._local, query, k)
        try:
            return self._search(query, k)
        except Exception as exc:
            local = self._fallback_for(exc)
            if local is None:
                if self.settings.chroma_url and not str(exc).startswith(NO_INDEX):
                    raise IndexUnavailable(
                        f"cannot reach the Chroma server at {self.settings.chroma_url} "
                        f"({type(exc).__name__}: {exc}) and this data dir has no index of its "
                        "own to fall back on: start the server (chroma run --path DIR --port "
                        "N), or run `advisor index` with ADVISOR_CHROMA_URL unset to build one"
                    ) from exc
                raise
            log.warning("Chroma server at %s unreachable, searching the local index: %s",
                        self.settings.chroma_url, exc)
            self._local_until = time.monotonic() + SERVER_RETRY_S
            return self._search_local(local, query, k)

    def _search_local(self, local: Retriever, query: str, k: int | None) -> RetrievalResult:
        result = local._search(query, k)
        result.notice = (
            f"The guideline index server ({self.settings.chroma_url}) cannot be reached: "
            "this answer used this server's local copy of the index, which may be older."
        )
        return result

    def _current(self) -> tuple[Collection, _Corpus]:
        with self._lock:
            now = time.monotonic()
            fresh = (
                self._corpus is not None
                and now - self._checked_at < self.refresh_s
                and self._checked_local == local_revision()
            )
            if fresh:
                assert self._collection is not None
                assert self._corpus is not None
                return self._collection, self._corpus
            collection, alias = open_active(self.client, self.settings, self.embedder)
            if collection is None:
                raise IndexUnavailable(f"{NO_INDEX}: run `advisor index` first")
            revision = int(alias.get("revision", 0))
            store = self.settings.chroma_url or str(self.settings.chroma_dir)
            key = (store, collection.name, revision)
            with _CORPUS_LOCK:
                corpus = _CORPORA.get(key)
                if corpus is None:
                    for old in [k for k in _CORPORA if k[0] == store]:
                        del _CORPORA[old]  # one live corpus per store is enough
                    corpus = _load_corpus(collection, revision)
                    _CORPORA[key] = corpus
            self._collection, self._corpus = collection, corpus
            self._checked_at, self._checked_local = now, local_revision()
            return collection, corpus

    # -- search ------------------------------------------------------------------------
    def _search(self, query: str, k: int | None = None) -> RetrievalResult:
        started = time.perf_counter()
        k = k or self.settings.retrieval_k
        collection, corpus = self._current()
        if not corpus.ids:
            return RetrievalResult(query=query)
        q_codes = query_codes(query)

        dense = self._dense(collection, corpus, query)
        lexical = self._lexical(corpus, query)
        fused = rrf([dense, lexical])
        boost = self._code_boost(corpus, q_codes, fused)
        entries = [corpus.entry_of[c] for c in q_codes if c in corpus.entry_of]
        # The catalog entry of a named code is the ground truth about it: make sure it lands
        # among the passages, not just near them.
        extra = rrf([boost, entries], [CODE_BOOST, ENTRY_BOOST])
        for item, score in extra.items():
            fused[item] = fused.get(item, 0.0) + score
        order = sorted(fused, key=lambda i: (-fused[i], corpus.ids[i]))
        passages = [self._passage(corpus, i, fused[i]) for i in order[:k]]
        candidates = self._candidates(corpus, q_codes, order, fused, passages, k)
        candidates = self._with_guidance_addons(query, candidates)
        return RetrievalResult(
            query=query,
            passages=passages,
            candidates=candidates,
            seconds=round(time.perf_counter() - started, 4),
        )

    def _dense(self, collection: Collection, corpus: _Corpus, query: str) -> list[int]:
        vector = self.embedder.embed_query([query])
        n = min(DENSE_DEPTH, len(corpus.ids))
        got = collection.query(query_embeddings=vector, n_results=n, include=[])  # type: ignore[arg-type]
        return [corpus.by_id[cid] for cid in got["ids"][0] if cid in corpus.by_id]

    def _lexical(self, corpus: _Corpus, query: str) -> list[int]:
        tokens = tokenize(query)
        if not tokens or corpus.bm25 is None:
            return []
        scores = corpus.bm25.get_scores(tokens)
        n = min(LEXICAL_DEPTH, len(scores))
        import numpy as np

        top = np.argpartition(-scores, n - 1)[:n]
        ranked = sorted((int(i) for i in top if scores[i] > 0), key=lambda i: -scores[i])
        return ranked

    def _code_boost(
        self, corpus: _Corpus, q_codes: list[str], fused: dict[int, float]
    ) -> list[int]:
        """Chunks mentioning codes of the question: catalog entries, then most codes shared."""
        if not q_codes:
            return []
        entries = [corpus.entry_of[c] for c in q_codes if c in corpus.entry_of]
        shared: dict[int, int] = {}
        for code in q_codes:
            for i in corpus.by_code.get(code, ()):
                shared[i] = shared.get(i, 0) + 1
        rest = sorted(
            (i for i in shared if i not in entries), key=lambda i: (-shared[i], -fused.get(i, 0.0))
        )
        return entries + rest

    def _passage(self, corpus: _Corpus, i: int, score: float) -> Passage:
        meta = corpus.metas[i]
        page = meta.get("page")
        kind = str(meta.get("kind", "user"))
        return Passage(
            id=corpus.ids[i],
            text=corpus.texts[i],
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            section=str(meta.get("section", "")),
            page=int(page) if isinstance(page, int | float) and page >= 1 else None,
            score=score,
            source_keys=[s for s in str(meta.get("source_keys", "")).split(",") if s],
            codes=str(meta.get("codes", "")).split(),
            kind=kind if kind in ("guideline", "code", "user") else "user",  # type: ignore[arg-type]
            as_of=str(meta.get("as_of") or "") or None,
        )

    def _candidates(
        self,
        corpus: _Corpus,
        q_codes: list[str],
        order: list[int],
        fused: dict[int, float],
        passages: list[Passage],
        k: int,
    ) -> list[Candidate]:
        """Named codes first, then matched catalog entries, then codes the passages name."""
        found: dict[str, tuple[int, float, str]] = {}  # code -> (group, score, why)

        def offer(code: str, group: int, score: float, why: str) -> None:
            if self.catalog.get(code) is None or code in found:
                return
            found[code] = (group, score, why)

        top = max(fused.values(), default=0.0)
        for n, code in enumerate(q_codes):
            offer(code, 0, top + 1.0 - n * 1e-3, "named in the question")
        # Matched entries take at most half the slots: a family of look-alike entries (all
        # the central-line codes) must not crowd out the code the passages keep naming.
        matched = [i for i in order[: max(2 * k, 10)] if corpus.metas[i].get("kind") == "code"]
        half = max(1, self.max_candidates // 2)
        for i in matched[:half]:
            offer(str(corpus.metas[i].get("code")), 1, fused[i], "code entry matched")
        # A code named by several top passages is a better bet than one named once in a list.
        mentions: dict[str, tuple[float, str]] = {}
        for p in passages:
            if p.kind == "code":
                continue
            for code in p.codes:
                total, first = mentions.get(code, (0.0, p.id))
                mentions[code] = (total + p.score, first)
        for code, (total, first) in mentions.items():
            offer(code, 2, total, f"mentioned in passage {first}")
        for i in matched[half:]:  # fill any slots left over
            offer(str(corpus.metas[i].get("code")), 3, fused[i], "code entry matched")

        def key(code: str) -> tuple[int, int, float]:
            group, score, _ = found[code]
            entry = self.catalog.get(code)
            inactive = 0 if (group == 0 or (entry is not None and entry.active)) else 1
            return (inactive, group, -score)

        ranked = sorted(found, key=key)[: self.max_candidates]
        out = []
        for code in ranked:
            entry = self.catalog.get(code)
            assert entry is not None
            _, score, why = found[code]
            out.append(
                Candidate(code=code, label=entry.label, why=why, score=score, active=entry.active)
            )
        return out

    def _with_guidance_addons(self, query: str, candidates: list[Candidate]) -> list[Candidate]:
        """Offer an ultrasound-guidance add-on beside a candidate that is one of its primaries.

        A question like "central line with ultrasound guidance" retrieves the line codes;
        the add-on (+76937) is reported beside them but rarely ranks by itself, and the model
        can only choose among candidates. It goes right after its first primary; the last
        candidate makes room. Codes whose label includes the guidance are never primaries of
        the add-on, so nothing is offered for them.
        """
        if not candidates or not read_frame(query, self.catalog).affirms("guidance_ultrasound"):
            return candidates
        cat = self.catalog
        out = list(candidates)
        for addon, entry in cat.codes.items():
            if not (entry.add_on and entry.family == "guidance" and entry.active):
                continue
            ap = cat.addon_primaries(addon)
            if ap is None or any(c.code == addon for c in out):
                continue
            at = next((n for n, c in enumerate(out) if c.code in ap.primaries), None)
            if at is None:
                continue
            primary = out[at]
            out.insert(at + 1, Candidate(
                code=addon, label=entry.label, score=primary.score, active=True,
                why=f"ultrasound-guidance add-on of {primary.code}",
            ))
        return out[: max(self.max_candidates, len(candidates))]

    def as_langchain(self, k: int | None = None) -> AdvisorRetriever:
        """This retriever as a LangChain retriever (Documents with citation metadata)."""
        return AdvisorRetriever(retriever=self, k=k or self.settings.retrieval_k)


class AdvisorRetriever(BaseRetriever):
    """LangChain face of :class:`Retriever`: one Document per passage."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever = Field(description="The hybrid retriever.")
    k: int = Field(5, ge=1, description="Passages to return.")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.retriever.search(query, self.k)
        candidates = [c.model_dump() for c in result.candidates]
        return [
            Document(
                id=p.id,
                page_content=p.text,
                metadata={
                    **p.citation(),
                    "kind": p.kind,
                    "codes": p.codes,
                    "source_keys": p.source_keys,
                    "as_of": p.as_of,
                    # The same list on every document, so a chain holding any one has it.
                    "candidates": candidates,
                },
            )
            for p in result.passages
        ]
