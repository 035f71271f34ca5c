"""A real ``python -m llama_cpp.server`` (llama-cpp-python's OpenAI-compatible server).

Used by the integration tests (through the ``llama_server`` fixture in conftest.py) and by
``bench/bench_pipeline.py --backend openai --serve``. The server binds 127.0.0.1 on a free
port, logs to a file, and is stopped when the context manager exits.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_WITHIN_S = 180
# A RAM prompt cache like the embedded backend's (advisor.llm.CACHE_BYTES), so prompts that
# share their stable prefix are read once on either backend.
PROMPT_CACHE_ARGS = ("--cache", "true", "--cache_size", str(512 * 1024 * 1024))


class ServerFailed(RuntimeError):
    """The server exited early or did not answer in time (the message has its log tail)."""


@dataclass(frozen=True)
class LlamaServer:
    """A running server: its /v1 URL, the model id it serves, its log file and process id."""

    base_url: str
    model_id: str
    log_path: Path
    pid: int = 0  # for fault tests that stop or kill the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextlib.contextmanager
def serve_llama(
    model: Path,
    log_path: Path,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    extra_args: Sequence[str] = (),
    ready_within_s: float = READY_WITHIN_S,
) -> Iterator[LlamaServer]:
    """Run the server on ``model`` until the ``with`` block ends."""
    port = free_port()
    command = [
        # llama_cpp.server, loading with this machine's parameters (advisor.llama_params)
        sys.executable, "-m", "advisor.llama_params",
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads or os.cpu_count() or 1),
        *extra_args,
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_within_s
            while True:
                if proc.poll() is not None:
                    raise ServerFailed(f"llama_cpp.server exited early:\n{_tail(log_path)}")
                try:
                    reply = httpx.get(f"{base_url}/models", timeout=2)
                    if reply.status_code == 200:
                        model_id = str(reply.json()["data"][0]["id"])
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerFailed(
                        f"llama_cpp.server not ready in {ready_within_s:g} s:\n{_tail(log_path)}"
                    )
                time.sleep(0.5)
            yield LlamaServer(
                base_url=base_url, model_id=model_id, log_path=log_path, pid=proc.pid
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
