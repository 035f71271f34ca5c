"""The OpenAI-compatible backend against a real local server (llama-cpp-python's).

The server (the ``llama_server`` fixture in conftest.py) runs the joined small model from
ADVISOR_TEST_DATA_DIR (default ``<repo>/.venv/test-data``), bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from llama_server import LlamaServer

from advisor import structured
from advisor.llm import build_chat_model, model_status, structured_call, text_call
from advisor.llm import schema_problems as problems_in
from advisor.settings import Backend, ModelPreset, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LLAMA_SERVER_PRESET = ModelPreset.SMALL

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


@pytest.fixture
def settings(llama_server: LlamaServer, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        backend=Backend.OPENAI,
        openai_base_url=llama_server.base_url,
        openai_model=llama_server.model_id,
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
    monkeypatch.setattr(structured, "_json_object_only", set())
    model = build_chat_model(settings.model_copy(update={"max_tokens": 200}))
    started = time.perf_counter()
    result = structured_call(model, MESSAGES, SCHEMA)
    print(f"\n[measured] server structured call {time.perf_counter() - started:.1f} s: {result}")
    assert problems_in(result, SCHEMA) == []
    # llama-cpp-python's server knows only json_object with a schema: the fallback was used.
    assert settings.openai_base_url in structured._json_object_only
