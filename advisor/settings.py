"""Settings for the advisor, built once at start-up and passed in.

Values come from environment variables with the prefix ``ADVISOR_`` (for example
``ADVISOR_DATA_DIR``, ``ADVISOR_BACKEND``, ``ADVISOR_CHROMA_URL``) or from a
settings file named by ``ADVISOR_SETTINGS_FILE`` (YAML or JSON, same field names).
Nothing here reads the environment at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Backend(StrEnum):
    """Which chat-model backend drafts answers."""

    EMBEDDED = "embedded"
    OPENAI = "openai"
    OLLAMA = "ollama"
    NONE = "none"


class ModelPreset(StrEnum):
    """Packaged GGUF models for the embedded backend."""

    DEFAULT = "default"  # Qwen2.5-Coder-1.5B-Instruct Q4_K_M
    SMALL = "small"  # the packaged 0.5B


class EmbeddingBackend(StrEnum):
    """Which embedding function feeds Chroma."""

    PACKAGED = "packaged"  # all-MiniLM-L6-v2 shipped on PyPI, loaded offline
    OPENAI = "openai"
    OLLAMA = "ollama"


def default_data_dir() -> Path:
    """Where index, joined model files, CMS imports and the audit log live."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "us-advisor"


class Settings(BaseSettings):
    """All run-time configuration of the advisor."""

    model_config = SettingsConfigDict(env_prefix="ADVISOR_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir, description="Data directory.")
    backend: Backend = Field(Backend.EMBEDDED, description="Chat-model backend.")
    model_preset: ModelPreset = Field(ModelPreset.DEFAULT, description="Embedded model preset.")
    model_path: Path | None = Field(None, description="A GGUF file to use instead of a preset.")
    n_ctx: int = Field(4096, ge=512, description="Context window for the embedded model.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp.")
    llm_timeout_s: float = Field(120.0, gt=0, description="Time limit for one model call.")
    max_tokens: int = Field(384, ge=16, description="Most tokens a draft may generate.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")

    openai_base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible URL.")
    openai_model: str = Field("local-model", description="Model name at that endpoint.")
    openai_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key.")
    ollama_host: str = Field("http://127.0.0.1:11434", description="Ollama host.")
    ollama_model: str = Field("qwen2.5-coder:1.5b", description="Ollama model name.")

    chroma_url: str | None = Field(None, description="Chroma server URL; unset = embedded.")
    collection: str = Field("guidelines", description="Chroma collection name prefix.")
    embedding_backend: EmbeddingBackend = Field(
        EmbeddingBackend.PACKAGED, description="Embeddings."
    )
    embedding_model: str = Field("all-MiniLM-L6-v2", description="Model for non-packaged backends.")
    retrieval_k: int = Field(5, ge=1, le=50, description="Passages handed to the model.")

    host: str = Field("127.0.0.1", description="UI bind address.")
    port: int = Field(7860, ge=1, le=65535, description="UI port.")
    auth_user: str | None = Field(None, description="Optional UI username.")
    auth_password: SecretStr | None = Field(None, description="Optional UI password.")
    max_question_chars: int = Field(4000, ge=10, description="Longest accepted question.")
    max_upload_mb: int = Field(50, ge=1, description="Largest accepted document upload.")
    max_questions_per_minute: int = Field(
        20, ge=0, description="Chat questions one session may ask per minute; 0 = no limit."
    )
    database_url: SecretStr | None = Field(
        None,
        description="Database of the audit log, feedback and (when set) the shared question "
        "limit: a SQLAlchemy URL such as postgresql://user:pw@host:5432/advisor; unset = the "
        "SQLite file audit.sqlite3 in the data dir.",
    )
    audit_spool_max: int = Field(
        10_000, ge=1,
        description="Audit records kept on disk while the database cannot be written.",
    )
    export_ttl_s: int = Field(
        3600, ge=60,
        description="Seconds an exported conversation or uploaded file stays on the server.",
    )

    @property
    def chroma_dir(self) -> Path:
        """Folder of the embedded Chroma store."""
        return self.data_dir / "chroma"

    @property
    def models_dir(self) -> Path:
        """Folder of joined GGUF files."""
        return self.data_dir / "models"

    @property
    def cms_dir(self) -> Path:
        """Folder of imported CMS rule files."""
        return self.data_dir / "cms"

    @property
    def audit_path(self) -> Path:
        """SQLite audit log (the database when ``database_url`` is unset)."""
        return self.data_dir / "audit.sqlite3"

    @property
    def audit_spool_dir(self) -> Path:
        """Audit records waiting for the database."""
        return self.data_dir / "audit-spool"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from a settings file (if any), the environment, then overrides."""
    file_values: dict[str, Any] = {}
    path = os.environ.get("ADVISOR_SETTINGS_FILE")
    if path:
        text = Path(path).read_text(encoding="utf-8")
        file_values = json.loads(text) if path.endswith(".json") else (yaml.safe_load(text) or {})
    env_defined = {
        k.removeprefix("ADVISOR_").lower() for k in os.environ if k.startswith("ADVISOR_")
    }
    values = {k: v for k, v in file_values.items() if k not in env_defined}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
