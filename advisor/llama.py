"""The embedded backend: llama.cpp models loaded once per process, and the LangChain chat
model over them (:class:`LlamaCppChatModel`)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from advisor.gguf import (
    ModelTimeout,
    ModelUnavailable,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# Prefix-cache budget. A saved state is its KV cells (a few MB for a few hundred prompt
# tokens) plus a copy of the prompt's logits (up to n_batch x 151,936 floats: up to 311 MB
# for the Qwen2.5 models), so this keeps the last one or two prompts.
CACHE_BYTES = 512 * 1024 * 1024


# --------------------------------------------------------------------------- loading


@dataclass
class _LoadedModel:
    """A llama.cpp model and the lock that serializes every use of it."""

    llama: Llama
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_seconds: float = 0.0


_loaded: dict[tuple[str, int, int], _LoadedModel] = {}
_load_lock = threading.Lock()


@atexit.register
def _close_loaded() -> None:
    """Free the models while the interpreter still works: left to ``__del__`` at shutdown,
    llama-cpp-python's clean-up finds its library functions gone and prints tracebacks."""
    for loaded in list(_loaded.values()):
        with contextlib.suppress(Exception):
            loaded.llama.close()
    _loaded.clear()


def _resolve_threads(n_threads: int | None) -> int:
    if n_threads:
        return n_threads
    # The CPUs this process may run on (a container or taskset may allow fewer than exist).
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def load_llama(model_path: str | Path, n_ctx: int, n_threads: int | None = None) -> _LoadedModel:
    """The process-wide llama.cpp model for (path, n_ctx, threads), loaded on first use."""
    threads = _resolve_threads(n_threads)
    key = (str(Path(model_path).resolve()), n_ctx, threads)
    with _load_lock:
        loaded = _loaded.get(key)
        if loaded is not None:
            return loaded
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(
                "llama-cpp-python is not installed, so the embedded model cannot run. "
                "Run `make install`, or choose ADVISOR_BACKEND=openai or ollama."
            ) from exc
        from advisor.llama_params import model_params

        start = time.perf_counter()
        try:
            with model_params():  # no AMX buffers where they fault (advisor.llama_params)
                llama = llama_cpp.Llama(
                    model_path=key[0],
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                f"llama.cpp could not load {key[0]}: {exc}. If this is the packaged model, "
                "delete the file and run `python -m advisor.llm --prepare`; otherwise check "
                "that ADVISOR_MODEL_PATH is a GGUF model llama.cpp supports."
            ) from exc
        # Reuses the evaluated prompt prefix across calls: prompts keep their stable part
        # first, and reading the prompt is the slow part on CPU.
        llama.set_cache(prompt_cache(CACHE_BYTES))
        loaded = _LoadedModel(llama=llama, load_seconds=time.perf_counter() - start)
        _loaded[key] = loaded
        log.info("Loaded %s in %.1f s (%d threads)", key[0], loaded.load_seconds, threads)
        return loaded


def prompt_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's RAM prompt cache, counting all the memory an entry holds.

    ``LlamaRAMCache`` counts only an entry's KV state against its capacity, not the copy
    of the prompt's logits the entry also holds (160 MB for a 277-token prompt with the
    0.5B model, at most 311 MB), so a "512 MB" cache kept growing with every new question.
    """
    from llama_cpp.llama_cache import LlamaRAMCache

    class CountedRAMCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(
                int(s.llama_state_size) + s.scores.nbytes + s.input_ids.nbytes
                for s in self.cache_state.values()
            )

    return CountedRAMCache(capacity_bytes=capacity_bytes)


def unload_models() -> None:
    """Forget every loaded llama.cpp model (frees memory once no chat model holds one)."""
    with _load_lock:
        for loaded in _loaded.values():
            with loaded.lock:
                with contextlib.suppress(Exception):
                    loaded.llama.close()
        _loaded.clear()


# ---------------------------------------------------------------------- chat model


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    texts = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
    return "".join(texts)


def _to_llama_message(message: BaseMessage) -> dict[str, str]:
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ToolMessage):
        role = "tool"
    elif isinstance(message, ChatMessage):
        role = message.role
    else:
        raise ValueError(f"Unsupported message type for llama.cpp: {type(message).__name__}")
    return {"role": role, "content": _message_text(message)}


class _Deadline:
    """The time limit of one call."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


class LlamaCppChatModel(BaseChatModel):
    """LangChain chat model over an in-process llama.cpp model (``llama_cpp.Llama``).

    Uses the chat template stored in the GGUF. Per call, ``invoke``/``stream`` accept
    ``response_format`` (llama-cpp-python's ``{"type": "json_object", "schema": ...}``,
    which constrains decoding to the schema), ``timeout_s``, ``max_tokens`` and
    ``temperature``. The model is loaded lazily and shared by every instance with the
    same path and context size; calls are serialized because llama.cpp is not thread-safe.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str = Field(description="GGUF file to load.")
    model_name: str = Field("", description="Display name, for logs and status.")
    n_ctx: int = Field(4096, ge=512, description="Context window in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads; None = all cores.")
    max_tokens: int = Field(384, ge=1, description="Most tokens one call may generate.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature.")
    timeout_s: float | None = Field(120.0, gt=0, description="Time limit for one call.")
    seed: int = Field(0, description="Sampling seed, for repeatable answers.")

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "model_name": self.model_name,
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def load(self) -> _LoadedModel:
        """Load the model now (it is otherwise loaded by the first call)."""
        # Looked up every call (a dict lookup) rather than kept, so unload_models() works.
        return load_llama(self.model_path, self.n_ctx, self.n_threads)

    def _call_params(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], _Deadline]:
        timeout_s = kwargs.pop("timeout_s", None) or self.timeout_s
        params: dict[str, Any] = {
            "messages": [_to_llama_message(m) for m in messages],
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "temperature": kwargs.pop("temperature", self.temperature),
            "seed": kwargs.pop("seed", self.seed),
            "stop": stop or [],
        }
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            params["response_format"] = response_format
        params.update(kwargs)
        return params, _Deadline(timeout_s)

    @contextlib.contextmanager
    def _locked(self, deadline: _Deadline) -> Iterator[Llama]:
        loaded = self.load()
        remaining = deadline.remaining()
        # Waiting for another call counts against this call's time limit.
        acquired = loaded.lock.acquire(timeout=-1 if remaining is None else max(remaining, 0))
        if not acquired:
            raise ModelTimeout(
                "The embedded model stayed busy with other requests past the time limit. "
                "Try again, or raise ADVISOR_LLM_TIMEOUT_S."
            )
        try:
            yield loaded.llama
        finally:
            loaded.lock.release()

    def _timeout_error(self, deadline: _Deadline) -> ModelTimeout:
        return ModelTimeout(
            "The embedded model did not finish within the time limit "
            f"({deadline.seconds:g} s). Ask a shorter question, raise ADVISOR_LLM_TIMEOUT_S, "
            "or use the small preset (ADVISOR_MODEL_PRESET=small)."
        )

    def _run(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
        stats: dict[str, int] | None = None,
    ) -> Iterator[tuple[str, str | None]]:
        """Yield (text, finish_reason) per token, holding the model lock throughout.

        Always streams, even for ``invoke``: ``create_chat_completion`` takes no stopping
        criteria, so checking the deadline between tokens and closing llama.cpp's
        generator is the way to end a call in time. (A prompt being read cannot be
        interrupted; the check comes at the first token.)
        """
        params, deadline = self._call_params(messages, stop, kwargs)
        with self._locked(deadline) as llama:
            chunks = cast(Generator[Any], llama.create_chat_completion(**params, stream=True))
            with contextlib.closing(chunks):
                for chunk in chunks:
                    if deadline.passed():
                        raise self._timeout_error(deadline)
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content") or ""
                    finish = choice.get("finish_reason")
                    if text or finish:
                        if run_manager and text:
                            run_manager.on_llm_new_token(text)
                        yield text, finish
            if stats is not None:
                stats["context_tokens"] = llama.n_tokens

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        texts: list[str] = []
        finish_reason = None
        stats: dict[str, int] = {}
        for text, finish in self._run(messages, stop, run_manager, kwargs, stats):
            texts.append(text)
            finish_reason = finish or finish_reason
        output_tokens = sum(1 for t in texts if t)
        # llama.cpp streams one chunk per generated token, and its context then holds
        # the prompt and the generated tokens.
        input_tokens = max(stats.get("context_tokens", 0) - output_tokens, 0)
        message = AIMessage(
            content="".join(texts),
            response_metadata={
                "finish_reason": finish_reason,
                "model_name": self.model_name or Path(self.model_path).name,
            },
            usage_metadata=UsageMetadata(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for text, finish in self._run(messages, stop, run_manager, kwargs):
            metadata = {"finish_reason": finish} if finish else {}
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=text, response_metadata=metadata)
            )

