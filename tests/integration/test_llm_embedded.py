"""The embedded backend on the real packaged models (both presets), on CPU.

The joined GGUF files are kept in ADVISOR_TEST_DATA_DIR (default ``<repo>/.venv/test-data``)
so a machine joins them once; later runs only check the stamp.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from advisor.gguf import stamp_matches
from advisor.llm import (
    PRESETS,
    LlamaCppChatModel,
    ModelTimeout,
    build_chat_model,
    ensure_gguf,
    model_status,
    structured_call,
)
from advisor.llm import schema_problems as problems_in
from advisor.settings import ModelPreset, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))

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
SYSTEM = (
    "You are a CPT coding assistant for ultrasound procedures. Choose codes only from the "
    "candidates given. Answer in JSON."
)
QUESTION = (
    "Candidates: 20611 (major joint injection with ultrasound guidance), 20610 (major joint "
    "injection without ultrasound guidance), 76942 (ultrasound needle guidance). "
    "Question: what do I bill for an ultrasound-guided knee injection?"
)
MESSAGES = [SystemMessage(SYSTEM), HumanMessage(QUESTION)]


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Show a measured figure in the test output (timings are logged, never asserted)."""
    log.info(text)
    with capsys.disabled():
        print(f"\n[measured] {text}")


@pytest.fixture(scope="session", params=[ModelPreset.DEFAULT, ModelPreset.SMALL], ids=str)
def embedded(request: pytest.FixtureRequest) -> tuple[Settings, LlamaCppChatModel]:
    # A generous time limit: a busy machine must slow these tests, not fail them.
    settings = Settings(
        data_dir=DATA_DIR,
        model_preset=request.param,
        n_ctx=2048,
        max_tokens=200,
        llm_timeout_s=400,
    )
    started = time.perf_counter()
    ensure_gguf(settings)
    joined_s = time.perf_counter() - started
    model = build_chat_model(settings)
    assert isinstance(model, LlamaCppChatModel)
    started = time.perf_counter()
    model.load()
    print(
        f"\n[measured] {request.param}: ensure_gguf {joined_s:.1f} s, "
        f"load {time.perf_counter() - started:.1f} s"
    )
    return settings, model


def test_joined_file_is_verified(embedded):
    settings, model = embedded
    preset = PRESETS[settings.model_preset]
    path = Path(model.model_path)
    assert path.name == preset.file_name
    assert stamp_matches(path, preset.sha256)
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    status = model_status(settings)
    assert (status["exists"], status["verified"], status["loaded"]) == (True, True, True)


def test_structured_call_returns_schema_valid_json(embedded, capsys):
    settings, model = embedded
    started = time.perf_counter()
    result = structured_call(model, MESSAGES, SCHEMA)
    elapsed = time.perf_counter() - started
    report(capsys, f"{settings.model_preset}: structured call {elapsed:.1f} s -> {result}")
    assert problems_in(result, SCHEMA) == []
    if settings.model_preset is ModelPreset.DEFAULT:
        # The 1.5B picks the guided code reliably on this prompt (checked across thread
        # counts and cache states); the 0.5B's choice varies, so only its shape is checked.
        assert "20611" in [c["code"] for c in result["codes"]]


def test_stream_yields_tokens(embedded, capsys):
    settings, model = embedded
    started = time.perf_counter()
    chunks = [c.content for c in model.stream(MESSAGES, max_tokens=40)]
    elapsed = time.perf_counter() - started
    text = "".join(str(c) for c in chunks)
    report(capsys, f"{settings.model_preset}: {len(chunks)} chunks in {elapsed:.1f} s: {text!r}")
    assert len([c for c in chunks if c]) > 1
    assert text.strip()


def first_token_seconds(model: LlamaCppChatModel, question: str) -> tuple[float, int, float]:
    started = time.perf_counter()
    first = None
    count = 0
    for chunk in model.stream([SystemMessage(SYSTEM), HumanMessage(question)], max_tokens=48):
        if chunk.content and first is None:
            first = time.perf_counter() - started
        count += 1 if chunk.content else 0
    total = time.perf_counter() - started
    assert first is not None
    return first, count, total


def test_repeated_prefix_is_served_from_the_cache(embedded, capsys):
    settings, model = embedded
    prefix = (
        QUESTION
        + " Background: "
        + " ".join(
            f"Code {n} is a candidate listed for reference only." for n in range(76800, 76830)
        )
    )
    ttft_1, n_1, total_1 = first_token_seconds(model, prefix + " Answer briefly.")
    ttft_2, n_2, total_2 = first_token_seconds(model, prefix + " Answer very briefly.")
    report(
        capsys,
        f"{settings.model_preset}: first token {ttft_1:.2f} s then {ttft_2:.2f} s with the "
        f"same prefix; decode {n_1 / max(total_1 - ttft_1, 1e-6):.1f} tok/s "
        f"({n_1} chunks after the first token)",
    )
    del n_2, total_2


def test_a_call_past_its_time_limit_raises(embedded):
    _, model = embedded
    with pytest.raises(ModelTimeout):
        model.invoke(
            [HumanMessage("Write a long essay about ultrasound physics.")],
            max_tokens=400,
            timeout_s=0.5,
        )
    # The model is still usable afterwards.
    assert model.invoke([HumanMessage("Say OK.")], max_tokens=4).content
