"""A whole question on the embedded backend attempts no connection off this machine.

Runs in a fresh interpreter so that everything is loaded under the guard: the packaged
embedding model, the embedded Chroma store (a copy of the session index), the PHI scrubber
and the small llama.cpp model. The guard (tests/unit/test_privacy.py's NetworkGuard)
records and refuses every socket connect, create_connection and name lookup that is not
loopback. At the end the script makes one off-machine connection on purpose, to show the
guard was live in that process.

Only connections made through Python's socket module are seen; native code in llama.cpp
or Chroma's Rust core would bypass it (neither opens sockets in embedded use).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.gguf import ensure_gguf
from advisor.settings import ModelPreset, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("ADVISOR_TEST_DATA_DIR", REPO / ".venv" / "test-data"))

SCRIPT = """
import json, socket, sys
sys.path[:0] = ["tests/unit", "tests"]
import pytest
from test_privacy import NetworkGuard

guard = NetworkGuard()
mp = pytest.MonkeyPatch()
guard.install(mp)

from advisor.pipeline import Advisor
from advisor.settings import load_settings
from knowledge.catalog import load_catalog

settings = load_settings()
advisor = Advisor(settings, catalog=load_catalog())
answer = advisor.ask("Patient Jane Roe, DOB 02/03/1961: what do I bill for an "
                     "ultrasound-guided knee injection?")
during = list(guard.attempts)
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
    probe = "connected"
except OSError as exc:
    probe = str(exc)
json.dump({"attempts": during, "probe": probe, "path": answer.path,
           "backend": answer.backend, "passages": len(answer.citations),
           "codes": {c.code: c.status.value for c in answer.codes},
           "banner": answer.banner}, sys.stdout)
"""


def test_embedded_ask_makes_no_outbound_connection(index_dir: Path, tmp_path: Path) -> None:
    model = ensure_gguf(Settings(data_dir=MODELS, model_preset=ModelPreset.SMALL))
    data_dir = tmp_path / "data"
    shutil.copytree(index_dir / "chroma", data_dir / "chroma")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ADVISOR_") and k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # Hub look-ups are not switched off here: whatever tries to go online must meet the guard.
    env.update(ADVISOR_DATA_DIR=str(data_dir), ADVISOR_BACKEND="embedded",
               ADVISOR_MODEL_PRESET="small", ADVISOR_MODEL_PATH=str(model),
               ADVISOR_N_CTX="2048", ADVISOR_LLM_TIMEOUT_S="600")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["attempts"] == [], f"outbound connections attempted: {result['attempts']}"
    assert "network blocked by test" in result["probe"], "the guard was live in that process"
    # A full run: the real model drafted from retrieved passages, and the rules checked it.
    assert result["path"] == "draft", result
    assert result["backend"].startswith("embedded"), result
    assert not result["banner"] or "unavailable" not in result["banner"], result
