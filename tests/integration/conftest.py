"""Fixtures shared by the integration tests: a session-wide index and a real model server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_server import PROMPT_CACHE_ARGS, LlamaServer, ServerFailed, serve_llama

from advisor.gguf import ensure_gguf
from advisor.settings import ModelPreset, Settings
from knowledge.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
# The packaged GGUF files are joined here once and reused between runs.
MODELS = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chroma index of the packaged guidelines and catalog, built once per session."""
    from advisor.index import build_index

    data_dir = tmp_path_factory.mktemp("pipeline-index")
    report = build_index(Settings(data_dir=data_dir), catalog=load_catalog())
    assert report.chunks_total > 0
    return data_dir


@pytest.fixture(scope="module")
def llama_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """A running ``python -m llama_cpp.server`` on loopback, one per test module.

    It serves the packaged preset named by the module's ``LLAMA_SERVER_PRESET`` (the 1.5B
    default when the module names none), with a 2048-token context and a prompt cache
    like the embedded backend's.
    """
    preset = getattr(request.module, "LLAMA_SERVER_PRESET", ModelPreset.DEFAULT)
    model = ensure_gguf(Settings(data_dir=MODELS, model_preset=preset))
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    try:
        with serve_llama(model, log_path, extra_args=PROMPT_CACHE_ARGS) as server:
            yield server
    except ServerFailed as exc:
        pytest.fail(str(exc))
