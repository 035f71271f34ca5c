"""The `advisor` command and the web app set up logging with PHI masked, before anything else.

Each case runs in a fresh interpreter, because masking, once installed, stays installed for
the life of a process: in this one, other tests may already have installed it. A record of
the advisor's loggers that carries a synthetic patient's name, date of birth, MRN, SSN,
phone and email must reach the log (stderr) masked, its traceback included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from test_privacy import PHI_QUESTION, assert_no_phi

REPO = Path(__file__).resolve().parents[2]

# Log through the advisor's loggers the way a careless call would: the raw question in the
# message and in an exception's text.
CARELESS_LOGGING = """
import logging
log = logging.getLogger("advisor.pipeline")
log.warning("draft failed for %s", QUESTION)
try:
    raise ValueError(QUESTION)
except ValueError:
    logging.getLogger("advisor.app").exception("chat failed")
"""


def run_python(script: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(ADVISOR_DATA_DIR=str(data_dir), ADVISOR_BACKEND="none", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               GRADIO_ANALYTICS_ENABLED="False")
    code = f"QUESTION = {PHI_QUESTION!r}\n" + script
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def assert_masked_log(stderr: str) -> None:
    assert "draft failed for" in stderr, stderr[-2000:]
    assert "chat failed" in stderr and "Traceback" in stderr, "the traceback is logged"
    assert "<PERSON>" in stderr and "<MRN>" in stderr and "<SSN>" in stderr, stderr[-2000:]
    assert_no_phi(stderr, "the log")


def test_cli_entry_masks_phi_in_its_log(tmp_path: Path) -> None:
    script = textwrap.dedent("""
    from advisor.cli import app
    app(["lookup", "76937"], standalone_mode=False)  # the entry point's callback runs first
    """) + CARELESS_LOGGING
    done = run_python(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "76937" in done.stdout
    assert_masked_log(done.stderr)


def test_cli_ask_verbose_logs_the_question_masked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(ADVISOR_DATA_DIR=str(tmp_path), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False")
    done = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "--verbose", "ask", "--no-llm", PHI_QUESTION],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "INFO advisor.pipeline: question:" in done.stderr
    assert "<PERSON>" in done.stderr
    assert "knee injection" in done.stderr
    assert_no_phi(done.stderr, "the log")
    assert_no_phi(done.stdout, "the answer")


def test_app_start_up_masks_phi_in_its_log(tmp_path: Path) -> None:
    script = textwrap.dedent("""
    import gradio as gr
    import app
    # Start-up only: no server and no warm-up are needed to see how logging is set up.
    gr.Blocks.launch = lambda self, *args, **kwargs: None
    app.AdvisorApp.start_warmup = lambda self: None
    app.serve(block=False)
    """) + CARELESS_LOGGING
    done = run_python(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_masked_log(done.stderr)
