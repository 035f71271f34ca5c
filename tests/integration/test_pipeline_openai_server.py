"""The whole pipeline drafting through a real OpenAI-compatible server.

llama-cpp-python's server (``python -m llama_cpp.server``, the ``llama_server`` fixture in
conftest.py) serves the packaged 1.5B default GGUF on loopback. The Advisor reaches it with
``backend=openai``: drafts go through langchain-openai and the structured-output request
(``json_schema``, then the ``json_object`` + schema form this server knows, which it turns
into a grammar), then through the same checker as the embedded backend. Retrieval uses
the session's real Chroma index. The questions and expectations are shared with the
embedded test (pipeline_cases.py) and so is the bar: no forbidden code is ever shown as
verified, and at least 10 of the 12 questions end with their expected codes verified or
corrected (the misses are printed; see the issue notes for the known ones).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_server import LlamaServer
from pipeline_cases import CASES, MIN_HITS, run_cases

from advisor import structured
from advisor.pipeline import Advisor, Answer
from advisor.settings import Backend, ModelPreset, Settings
from knowledge.catalog import load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LLAMA_SERVER_PRESET = ModelPreset.DEFAULT


@pytest.fixture(scope="module")
def openai_advisor(llama_server: LlamaServer, index_dir: Path) -> Advisor:
    settings = Settings(
        data_dir=index_dir,
        backend=Backend.OPENAI,
        openai_base_url=llama_server.base_url,
        openai_model=llama_server.model_id,
        max_tokens=256,
        llm_timeout_s=600,
    )
    return Advisor(settings, catalog=load_catalog())


def test_questions_through_the_server(
    openai_advisor: Advisor,
    llama_server: LlamaServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def through_the_server(answer: Answer) -> None:
        assert answer.backend == f"openai:{llama_server.model_id}"
        # The model drafted this answer (a failed or unparsable call ends on the fallback path).
        assert answer.path == "draft", answer.answer
        assert answer.model_calls >= 1

    hits, dishonest, lines = run_cases(openai_advisor, through_the_server)
    with capsys.disabled():
        print(f"\n[openai server] {hits}/{len(CASES)} hits")
        print("\n".join(lines))
    # The server knows only json_object with a schema; the client switched to it.
    assert llama_server.base_url in structured._json_object_only
    assert not dishonest, f"forbidden codes shown as verified for: {dishonest}"
    assert hits >= MIN_HITS, f"only {hits}/{len(CASES)} questions ended with the expected codes"
