"""`advisor eval` end to end on the real embedded model, real embeddings and real Chroma.

Five questions with the raw baseline beside them. The joined model file is cached in
ADVISOR_TEST_DATA_DIR (default ``<repo>/.venv/test-data``); the index is built into a
temporary data dir with the packaged embeddings. Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.gguf import ensure_gguf
from advisor.index import build_index
from advisor.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))
SMOKE = """\
suite: smoke
cases:
- {id: s-knee, question: "What do I bill for an ultrasound-guided knee injection?",
   expect_codes: [20611], forbid_codes: [20610, 76942],
   tags: {family: joint_injection, user: clinician, kind: coding}}
- {id: s-cvc, question: "Internal jugular central line with real-time ultrasound guidance, codes?",
   expect_codes: [36556, 76937], forbid_codes: [76942],
   tags: {family: vascular_access, user: clinician, kind: coding}}
- {id: s-tte, question: "Complete transthoracic echo with spectral and color Doppler.",
   expect_codes: [93306], forbid_codes: [93320, 93325],
   tags: {family: echo, user: coder, kind: coding}}
- {id: s-abd, question: "Complete abdominal ultrasound, all organs imaged - code?",
   expect_codes: [76700], forbid_codes: [76705], tags: {family: abdomen, user: coder, kind: coding}}
- {id: s-mri, question: "CPT code for MRI of the knee without contrast?", expect_no_codes: true,
   tags: {family: out_of_scope, user: clinician, kind: out_of_scope}}
"""


def test_eval_smoke_with_the_embedded_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = ensure_gguf(Settings(data_dir=CACHE))
    data = tmp_path / "data"
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(data))
    monkeypatch.setenv("ADVISOR_BACKEND", "embedded")
    monkeypatch.setenv("ADVISOR_MODEL_PATH", str(model_file))
    monkeypatch.setenv("ADVISOR_LLM_TIMEOUT_S", "600")
    build_index(Settings(data_dir=data))
    suite = tmp_path / "smoke.yaml"
    suite.write_text(SMOKE, encoding="utf-8")
    out = tmp_path / "out"
    started = time.perf_counter()
    res = CliRunner().invoke(
        app, ["eval", str(suite), "--baseline", "raw", "--out", str(out), "--json"]
    )
    wall = time.perf_counter() - started
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert len(run["cases"]) == 5
    assert run["backend"].startswith("embedded:")
    assert run["summary"]["baseline"]["cases"] == 5
    oos = next(c for c in run["cases"] if c["id"] == "s-mri")
    assert oos["system"]["shown"] == []  # out of scope: nothing guessed
    # The guardrails decide validity: nothing invalid may be shown as verified unflagged.
    assert run["summary"]["system"]["unflagged_invalid_rate"] == 0.0
    assert (out / "report.md").exists()
    assert (out / "chart.png").exists()
    s, b = run["summary"]["system"], run["summary"]["baseline"]
    with capsys.disabled():
        print(
            f"\n[measured] eval smoke {wall:.0f} s: exact {s['exact_code_set']} vs raw "
            f"{b['exact_code_set']}; leak {s['forbidden_leak_rate']} vs {b['forbidden_leak_rate']}"
            f"; unflagged invalid {s['unflagged_invalid_rate']} vs {b['unflagged_invalid_rate']}"
        )
