"""The whole pipeline on the real packaged model, real embeddings and a real Chroma index.

The index is built once per session (``index_dir`` in conftest.py) into a temporary folder
from the packaged guidelines and catalog; the questions are shared with the OpenAI-compatible
server test (pipeline_cases.py). One Advisor per preset is reused so llama.cpp's prefix
cache stays warm. Per-question results are printed; the assertion is a hit rate (at least
MIN_HITS = 10 of the 12 questions on each preset), because a 1.5B model on CPU is
not expected to be perfect, and every miss must still be honest: no forbidden code may
ever be shown as verified.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pipeline_cases import CASES, MIN_HITS, OK, run_cases

from advisor.gguf import ensure_gguf
from advisor.pipeline import Advisor, Answer
from advisor.settings import ModelPreset, Settings
from knowledge.catalog import load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))


def advisor_for(index_dir: Path, preset: ModelPreset) -> Advisor:
    model_path = ensure_gguf(Settings(data_dir=MODELS, model_preset=preset))
    settings = Settings(data_dir=index_dir, model_path=model_path, model_preset=preset,
                        n_ctx=2048, max_tokens=256, llm_timeout_s=600)
    return Advisor(settings, catalog=load_catalog())


@pytest.fixture(scope="session")
def default_advisor(index_dir: Path) -> Advisor:
    return advisor_for(index_dir, ModelPreset.DEFAULT)


@pytest.fixture(scope="session")
def small_advisor(index_dir: Path) -> Advisor:
    return advisor_for(index_dir, ModelPreset.SMALL)


def test_default_preset_hits_expected_codes(
    default_advisor: Advisor, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()

    def embedded(answer: Answer) -> None:
        assert answer.backend.startswith("embedded")

    hits, dishonest, lines = run_cases(default_advisor, embedded)
    with capsys.disabled():
        print(f"\n[default preset] {hits}/{len(CASES)} hits in "
              f"{time.perf_counter() - started:.0f} s")
        print("\n".join(lines))
    assert not dishonest, f"forbidden codes shown as verified for: {dishonest}"
    assert hits >= MIN_HITS, f"only {hits}/{len(CASES)} questions ended with the expected codes"


def test_small_preset_hits_expected_codes(
    small_advisor: Advisor, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    hits, dishonest, lines = run_cases(small_advisor)
    with capsys.disabled():
        print(f"\n[small preset] {hits}/{len(CASES)} hits in "
              f"{time.perf_counter() - started:.0f} s")
        print("\n".join(lines))
    assert not dishonest, f"forbidden codes shown as verified for: {dishonest}"
    assert hits >= MIN_HITS, f"only {hits}/{len(CASES)} questions ended with the expected codes"


def test_follow_up_on_the_real_model(default_advisor: Advisor) -> None:
    first = default_advisor.ask("Unilateral lower extremity venous duplex for DVT, one leg")
    second = default_advisor.ask("and if both legs are scanned completely?", history=[first])
    got = {c.code: c.status.value for c in second.codes}
    assert got.get("93970") in OK, second.answer
    assert got.get("93971") not in OK


def test_out_of_scope_and_lookup_need_no_model(default_advisor: Advisor) -> None:
    mri = default_advisor.ask("How do I bill a knee MRI?")
    assert mri.path == "out_of_scope"
    assert mri.codes == []
    codes = default_advisor.ask("20610 76942")
    assert codes.path == "lookup"
    assert codes.model_calls == 0
    assert {c.code: c.status.value for c in codes.codes} == {"20611": "corrected"}
