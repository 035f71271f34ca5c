"""The Chroma store under the index: clients (embedded or a server), the alias record that
names the active chunk collection, and the errors that say what to do when the store cannot
be opened."""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from advisor.embeddings import (
    AdvisorEmbeddingFunction,
    register_with_chroma,
    set_offline_env,
)
from advisor.settings import EmbeddingBackend

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from advisor.settings import Settings


ALIAS_SUFFIX = "alias"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,40}$")
_GENERATION_RE = r"-\d{14}-[0-9a-f]{4}$"


class IndexUnavailable(RuntimeError):
    """The vector store cannot be reached or opened; the message says what to do."""

    retryable = True


class IndexDamaged(IndexUnavailable):
    """The embedded store is there but cannot be read: only a rebuild helps."""

    retryable = False


class DataDirReadOnly(IndexUnavailable):
    """The embedded store cannot be written (Chroma writes even to search)."""

    retryable = False


_CLIENTS: dict[str, ClientAPI] = {}
_CLIENT_LOCK = threading.Lock()
# Bumped by every in-process build so retrievers in this process refresh at once.
_LOCAL_REVISION = [0]


def local_revision() -> int:
    """Counter of builds finished in this process."""
    return _LOCAL_REVISION[0]


def get_client(settings: Settings) -> ClientAPI:
    """The Chroma client for these settings (one per store per process), telemetry off."""
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    with _CLIENT_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        set_offline_env()
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        register_with_chroma()
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if not url.hostname:
                raise IndexUnavailable(
                    f"ADVISOR_CHROMA_URL={settings.chroma_url!r} is not a URL: "
                    "use e.g. http://127.0.0.1:8000"
                )
            ssl = url.scheme == "https"
            try:
                client = chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or (443 if ssl else 8000),
                    ssl=ssl,
                    settings=chroma_settings,
                )
            except Exception as exc:  # chromadb raises plain ValueError/ConnectError here
                raise IndexUnavailable(
                    f"cannot reach the Chroma server at {settings.chroma_url} ({exc}): start it "
                    "(chroma run --path DIR --port N) or unset ADVISOR_CHROMA_URL to use the "
                    "embedded store"
                ) from exc
        else:
            client = _open_embedded(settings, chroma_settings)
        _CLIENTS[key] = client
        return client


# SQLite's "database disk image is malformed" (11) and "file is not a database" (26).
_DAMAGED_RE = re.compile(r"code: (11|26)\)|malformed|not a database|corrupt", re.IGNORECASE)


def _open_embedded(settings: Settings, chroma_settings: Any) -> ClientAPI:
    """PersistentClient on settings.chroma_dir; failures become errors that say what to do."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient

    folder = settings.chroma_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirReadOnly(_read_only_message(settings, exc)) from exc
    try:
        return chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
    except Exception as exc:  # chromadb wraps SQLite errors in its InternalError
        # chromadb keeps the half-started system per path; drop it so a retry starts afresh.
        SharedSystemClient._identifier_to_system.pop(str(folder), None)
        raise store_error(settings, exc) from exc


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _read_only_message(settings: Settings, exc: BaseException) -> str:
    return (
        f"the data directory {settings.data_dir} is read-only ({exc}): the index cannot be "
        "opened, since Chroma writes to its folder even to search. Make it writable, or set "
        "ADVISOR_DATA_DIR to a writable folder (copy its chroma folder there to keep the index)"
    )


def store_error(settings: Settings, exc: BaseException) -> IndexUnavailable:
    """An error from the embedded store, classified, with the command that fixes it."""
    if isinstance(exc, IndexUnavailable):
        return exc
    folder = settings.chroma_dir
    sqlite = folder / "chroma.sqlite3"
    text = str(exc)
    if "readonly" in text or not _writable(folder) or (sqlite.exists() and not _writable(sqlite)):
        return DataDirReadOnly(_read_only_message(settings, exc))
    if _DAMAGED_RE.search(text):
        return IndexDamaged(
            f"the index in {folder} is damaged ({text}): run `advisor index --rebuild` to set "
            "it aside and build a new one"
        )
    return IndexUnavailable(
        f"cannot open the index in {folder} ({type(exc).__name__}: {text}): if another "
        "`advisor index` is running, wait for it; otherwise run `advisor index --rebuild`"
    )


def set_aside_damaged(settings: Settings) -> Path:
    """Move a damaged embedded store out of the way (kept, not deleted); its new place."""
    from chromadb.api.shared_system_client import SharedSystemClient

    folder = settings.chroma_dir
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    target = folder.with_name(f"{folder.name}.damaged-{stamp}")
    folder.rename(target)
    with _CLIENT_LOCK:
        _CLIENTS.pop(str(folder.resolve()), None)
    SharedSystemClient._identifier_to_system.pop(str(folder), None)
    return target


def _prefix(settings: Settings) -> str:
    prefix = settings.collection
    if not _NAME_RE.match(prefix):
        raise ValueError(
            f"collection prefix {prefix!r} must be 1-41 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return prefix


def alias_name(settings: Settings) -> str:
    """Name of the collection whose metadata points at the active chunk collection."""
    return f"{_prefix(settings)}-{ALIAS_SUFFIX}"


def _new_collection_name(settings: Settings) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{_prefix(settings)}-{stamp}-{secrets.token_hex(2)}"


def _collection_names(client: ClientAPI) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in client.list_collections()]


def read_alias(client: ClientAPI, settings: Settings, embedder: Any = None) -> dict[str, Any]:
    """The alias record ({} when nothing was ever built)."""
    name = alias_name(settings)
    if name not in _collection_names(client):
        return {}
    col = client.get_collection(name, embedding_function=embedder or _NoEmbeddings())
    return dict(col.metadata or {})


def _write_alias(client: ClientAPI, settings: Settings, record: dict[str, Any]) -> None:
    col = client.get_or_create_collection(
        alias_name(settings), embedding_function=_NoEmbeddings(), metadata={"kind": "alias"}
    )
    col.modify(metadata={"kind": "alias", **record})


class _NoEmbeddings(AdvisorEmbeddingFunction):
    """For the alias collection, which holds no vectors; never Chroma's default."""

    backend = "none"

    def __init__(self) -> None:
        super().__init__("none")

    def __call__(self, input: Sequence[str]) -> Any:
        raise RuntimeError("the alias collection holds no vectors")


def open_active(
    client: ClientAPI, settings: Settings, embedder: AdvisorEmbeddingFunction
) -> tuple[Collection | None, dict[str, Any]]:
    """The active chunk collection (or None) and the alias record."""
    alias = read_alias(client, settings)
    name = alias.get("active")
    if not name or name not in _collection_names(client):
        return None, alias
    return client.get_collection(name, embedding_function=embedder), alias


def embedding_signature(settings: Settings) -> str:
    """Backend and model of the configured embeddings, without loading the model."""
    if settings.embedding_backend is EmbeddingBackend.PACKAGED:
        return "packaged:all-MiniLM-L6-v2"
    return f"{settings.embedding_backend.value}:{settings.embedding_model}"


# -- documents -------------------------------------------------------------------------


def _delete_quietly(client: ClientAPI, name: str) -> None:
    try:
        client.delete_collection(name)
    except Exception:  # noqa: S110 - best effort: a leftover is deleted by the next build
        pass


def _delete_stale(client: ClientAPI, settings: Settings, keep: str) -> None:
    """Drop chunk collections of this prefix other than the active one."""
    pattern = re.compile(re.escape(_prefix(settings)) + _GENERATION_RE)
    for name in _collection_names(client):
        if name != keep and pattern.match(name):
            _delete_quietly(client, name)


# -- status ----------------------------------------------------------------------------
