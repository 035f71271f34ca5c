"""The OpenAI-compatible backend against a real local server (llama-cpp-python's).

The server runs the joined small model from ADVISOR_TEST_DATA_DIR (default
``<repo>/.venv/test-data``), bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from advisor import llm
from advisor.llm import build_chat_model, ensure_gguf, model_status, structured_call, text_call
from advisor.llm import schema_problems as problems_in
from advisor.settings import Backend, ModelPreset, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))
READY_WITHIN_S = 180

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "codes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["code", "reason"],
            },
        },
        "answer": {"type": "string"},
    },
    "required": ["codes", "answer"],
}
MESSAGES = [
    SystemMessage("You are a CPT coding assistant. Choose codes only from the candidates."),
    HumanMessage(
        "Candidates: 20611 (major joint injection with ultrasound guidance), 20610 (major "
        "joint injection without ultrasound guidance), 76942 (ultrasound needle guidance). "
        "Question: what do I bill for an ultrasound-guided knee injection?"
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``python -m llama_cpp.server`` on the small model; yields its /v1 URL."""
    model = ensure_gguf(Settings(data_dir=DATA_DIR, model_preset=ModelPreset.SMALL))
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        str(os.cpu_count() or 1),
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + READY_WITHIN_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited early:\n{log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready in {READY_WITHIN_S} s:\n{log_path.read_text()}")
                time.sleep(0.5)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture
def settings(server: str, tmp_path: Path) -> Settings:
    model_id = httpx.get(f"{server}/models", timeout=5).json()["data"][0]["id"]
    return Settings(
        data_dir=tmp_path,
        backend=Backend.OPENAI,
        openai_base_url=server,
        openai_model=model_id,
        max_tokens=64,
        llm_timeout_s=400,
    )


def test_invoke_through_the_server(settings):
    model = build_chat_model(settings)
    assert model_status(settings)["base_url"] == settings.openai_base_url
    reply = model.invoke([HumanMessage("Reply with the single word OK.")])
    assert isinstance(reply.content, str)
    assert reply.content.strip()
    assert text_call(model, [HumanMessage("Say hello.")], timeout_s=300).strip()


def test_structured_call_through_the_server(settings, monkeypatch):
    monkeypatch.setattr(llm, "_json_object_only", set())
    model = build_chat_model(settings.model_copy(update={"max_tokens": 200}))
    started = time.perf_counter()
    result = structured_call(model, MESSAGES, SCHEMA)
    print(f"\n[measured] server structured call {time.perf_counter() - started:.1f} s: {result}")
    assert problems_in(result, SCHEMA) == []
    # llama-cpp-python's server knows only json_object with a schema: the fallback was used.
    assert settings.openai_base_url in llm._json_object_only
