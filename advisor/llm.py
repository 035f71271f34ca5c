"""Chat-model factory: embedded llama.cpp, OpenAI-compatible servers and Ollama.

Everything above this module codes against LangChain's ``BaseChatModel`` plus four
helpers: :func:`ensure_gguf`, :func:`build_chat_model`, :func:`structured_call` and
:func:`model_status`. Failures surface as :class:`ModelUnavailable`,
:class:`ModelTimeout` or :class:`ModelOutputError`, each with ``retryable`` and a message
that says what to do next.

``python -m advisor.llm --prepare`` joins and verifies the packaged model file.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
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
    PRESETS,
    GgufPreset,
    ModelError,
    ModelOutputError,
    ModelTimeout,
    ModelUnavailable,
    ensure_gguf,
    gguf_status,
)
from advisor.settings import Backend, Settings, load_settings

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = [
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
    "schema_problems",
    "structured_call",
    "text_call",
    "unload_models",
]

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
        start = time.perf_counter()
        try:
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


# ------------------------------------------------------------------ structured calls


@contextlib.contextmanager
def _translated_errors(model: BaseChatModel) -> Iterator[None]:
    """Turn client-library exceptions into the model layer's errors."""
    where = _endpoint(model)
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        mapped = _map_exception(exc, where)
        if mapped is None:
            raise
        raise mapped from exc


def _endpoint(model: BaseChatModel) -> str:
    for attr in ("openai_api_base", "base_url"):
        value = getattr(model, attr, None)
        if value:
            return str(value)
    return type(model).__name__


def _map_exception(exc: Exception, where: str) -> ModelError | None:
    """The model-layer error for a client exception, or None to let it through.

    langchain-openai raises langchain-core's ``Model*Error`` classes; the openai, httpx
    and ollama clients underneath raise their own, which are matched too.
    """
    from langchain_core import exceptions as lc

    name = type(exc).__name__
    module = type(exc).__module__
    client = module.startswith(("openai", "httpx", "httpcore", "ollama", "langchain_openai"))
    text = str(exc)
    if isinstance(exc, lc.ModelTimeoutError) or (client and "Timeout" in name):
        return ModelTimeout(
            f"The model server at {where} did not answer within the time limit. Try again, "
            "raise ADVISOR_LLM_TIMEOUT_S, or use a smaller model."
        )
    if name == "LengthFinishReasonError":  # openai: the reply hit max_tokens mid-JSON
        completion = getattr(exc, "completion", None)
        raw = ""
        if completion is not None and getattr(completion, "choices", None):
            raw = completion.choices[0].message.content or ""
        return ModelOutputError(
            f"The answer from the model at {where} was cut off at the token limit before its "
            "JSON was complete. Ask again, or raise ADVISOR_MAX_TOKENS.",
            raw=raw,
        )
    if isinstance(exc, lc.ContextOverflowError):
        return ModelUnavailable(
            f"The prompt does not fit the context window of the model at {where}. Ask a "
            "shorter question, retrieve fewer passages (ADVISOR_RETRIEVAL_K), or use a model "
            "with a longer context."
        )
    if isinstance(exc, lc.ModelConnectionError | ConnectionError) or (
        client and name in {"APIConnectionError", "ConnectError"}
    ):
        return ModelUnavailable(
            f"Cannot reach the model server at {where} ({text}). Start the server or fix its "
            "URL in settings, or use ADVISOR_BACKEND=embedded.",
            retryable=True,
        )
    if isinstance(exc, lc.ModelAuthenticationError | lc.ModelPermissionDeniedError) or (
        client and name in {"AuthenticationError", "PermissionDeniedError"}
    ):
        return ModelUnavailable(
            f"The model server at {where} refused the request ({text}). Set "
            "ADVISOR_OPENAI_API_KEY to a key it accepts."
        )
    if isinstance(exc, lc.ModelNotFoundError) or (client and name == "NotFoundError"):
        return ModelUnavailable(
            f"The model server at {where} does not serve the configured model ({text}). "
            "Check ADVISOR_OPENAI_MODEL."
        )
    if module.startswith("ollama") and name == "ResponseError":
        if getattr(exc, "status_code", None) == 404:
            return ModelUnavailable(
                f"Ollama at {where} does not have the model ({text}). Run `ollama pull` for "
                "it or change ADVISOR_OLLAMA_MODEL."
            )
        return ModelUnavailable(f"Ollama at {where} failed ({text}).", retryable=True)
    if isinstance(exc, lc.ModelRateLimitError | lc.ModelAPIError) or (
        client and name in {"RateLimitError", "InternalServerError"}
    ):
        return ModelUnavailable(
            f"The model server at {where} failed ({text}). Try again later.", retryable=True
        )
    return None


def _invoke(model: BaseChatModel, messages: LanguageModelInput, **kwargs: Any) -> BaseMessage:
    with _translated_errors(model):
        return model.invoke(messages, **kwargs)


def text_call(
    model: BaseChatModel,
    messages: LanguageModelInput,
    *,
    timeout_s: float | None = None,
    max_tokens: int | None = None,
) -> str:
    """Free-text answer of ``model``, with errors mapped to the model layer's classes.

    ``max_tokens`` caps this call where the backend takes a per-call limit (embedded and
    OpenAI-compatible); Ollama keeps the limit it was built with.
    """
    kwargs = _timeout_kwargs(model, timeout_s)
    if max_tokens is not None and (isinstance(model, LlamaCppChatModel) or _is_openai(model)):
        kwargs["max_tokens"] = max_tokens
    return _message_text(_invoke(model, messages, **kwargs))


def _timeout_kwargs(model: BaseChatModel, timeout_s: float | None) -> dict[str, Any]:
    if timeout_s is None:
        return {}
    if isinstance(model, LlamaCppChatModel):
        return {"timeout_s": timeout_s}
    if _is_openai(model):
        return {"timeout": timeout_s}  # a per-request option of the openai client
    # ChatOllama takes its time limit from client_kwargs at construction only.
    return {}


def _is_openai(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_openai")


def _is_ollama(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_ollama")


def structured_call(
    model: BaseChatModel,
    messages: LanguageModelInput,
    schema: dict[str, Any],
    *,
    timeout_s: float | None = None,
    request_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask ``model`` for a JSON object matching ``schema`` and return it parsed.

    ``request_schema`` (default ``schema``) is what the backend's constrained decoding is
    handed, e.g. a schema narrowed to candidate codes; the reply is still validated against
    the broader ``schema``, so an answer outside the narrowed one is not lost here.

    Uses each backend's constrained decoding: llama.cpp's ``response_format`` with a
    schema, OpenAI's ``json_schema`` response format (falling back to ``json_object``
    with a schema for servers that only know that form), Ollama's ``format``. Any other
    chat model is asked plainly and its answer parsed. Raises ModelOutputError if the
    answer is not a JSON object matching the schema's types and required keys.
    """
    kwargs = _timeout_kwargs(model, timeout_s)
    asked = request_schema if request_schema is not None else schema
    if isinstance(model, LlamaCppChatModel):
        reply = _invoke(
            model, messages, response_format={"type": "json_object", "schema": asked}, **kwargs
        )
    elif _is_openai(model):
        reply = _openai_structured(model, messages, asked, kwargs)
    elif _is_ollama(model):
        reply = _invoke(model, messages, format=asked, **kwargs)
    else:
        reply = _invoke(model, messages, **kwargs)
    return parse_json_reply(_message_text(reply), schema)


# Endpoints that rejected the ``json_schema`` response format; asked in the older form
# straight away afterwards, sparing a failed request per call.
_json_object_only: set[str] = set()


def _openai_structured(
    model: BaseChatModel, messages: LanguageModelInput, schema: dict[str, Any], kwargs: Any
) -> BaseMessage:
    import openai

    endpoint = _endpoint(model)
    if endpoint not in _json_object_only:
        json_schema = {
            "type": "json_schema",
            "json_schema": {"name": str(schema.get("title") or "response"), "schema": schema},
        }
        try:
            with _translated_errors_except_schema_rejection(model):
                return model.invoke(messages, response_format=json_schema, **kwargs)
        except openai.APIStatusError as exc:
            # llama-cpp-python's server, for one, only knows json_object with a schema.
            log.info("%s rejected the json_schema response format (%s)", endpoint, exc)
            _json_object_only.add(endpoint)
    return _invoke(
        model, messages, response_format={"type": "json_object", "schema": schema}, **kwargs
    )


def _rejects_json_schema(exc: BaseException) -> bool:
    """True if a server refused the request because it does not know ``json_schema``."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return False
    if exc.status_code == 422:  # request validation failed: the format is unknown
        return True
    # Other servers say so in a 400, llama-cpp-python's in a 500; other 400s and 500s
    # (an overlong prompt, a crash) must not be mistaken for it.
    text = str(exc)
    return exc.status_code in {400, 500} and ("response_format" in text or "json_schema" in text)


@contextlib.contextmanager
def _translated_errors_except_schema_rejection(model: BaseChatModel) -> Iterator[None]:
    try:
        with _translated_errors(model):
            yield
    except ModelError as exc:
        if _rejects_json_schema(exc.__cause__ or exc):
            raise exc.__cause__ from None  # type: ignore[misc]
        raise


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parse a model's JSON answer (tolerating a Markdown code fence) and check it."""
    match = _FENCE.match(text)
    body = match.group(1) if match else text.strip()
    try:
        # strict=False: a raw newline or tab inside a string (which constrained decoding
        # lets through) is text, not a reason to lose the whole draft.
        value = json.loads(body, strict=False)
    except ValueError as exc:
        salvaged = _complete_codes(body)
        if salvaged is not None and (schema is None or not schema_problems(salvaged, schema)):
            log.warning("model reply cut short (%s); its complete code list is used", exc)
            return salvaged
        raise ModelOutputError(
            f"The model's answer is not valid JSON ({exc}). Ask again; if it keeps "
            "happening, use a larger model or a backend with structured output.",
            raw=text,
        ) from exc
    if not isinstance(value, dict):
        raise ModelOutputError(
            f"The model answered with JSON {type(value).__name__}, not an object. Ask again.",
            raw=text,
        )
    if schema is not None:
        problems = schema_problems(value, schema)
        if problems:
            raise ModelOutputError(
                "The model's JSON does not match the requested schema: "
                + "; ".join(problems[:5])
                + ". Ask again, or use a backend with structured output.",
                raw=text,
            )
    return value


_CODES_KEY = re.compile(r'^\s*\{\s*"codes"\s*:\s*')


_ITEM_GAP = re.compile(r"\s*[\[,]\s*")


def _complete_codes(body: str) -> dict[str, Any] | None:
    """From a draft cut off (the token limit), the code lines it finished, without prose.

    Drafts write "codes" first and the answer after; when the answer is cut, the codes the
    model chose are intact and still go to the checker. When the list itself is cut (a small
    model looping inside its second line), the lines before the cut are kept.
    """
    m = _CODES_KEY.match(body)
    if m is None:
        return None
    decoder = json.JSONDecoder(strict=False)
    try:
        codes, _ = decoder.raw_decode(body, m.end())
    except ValueError:
        codes, pos = [], m.end()
        while (gap := _ITEM_GAP.match(body, pos)) is not None:
            try:
                item, pos = decoder.raw_decode(body, gap.end())
            except ValueError:
                break
            if not isinstance(item, dict):
                return None
            codes.append(item)
        if not codes:
            return None
    return {"codes": codes, "answer": ""} if isinstance(codes, list) else None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_problems(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Differences between ``value`` and the common subset of JSON Schema we send.

    Checks ``type``, ``enum``, ``required``, ``properties`` and ``items``; other keywords
    are left to the backend's constrained decoding.
    """
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        allowed = tuple(t for n in names for t in _JSON_TYPES.get(n, (object,)))
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and "boolean" not in names):
            return [f"{path} should be {' or '.join(names)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path} should be one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}.{key} is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value and isinstance(sub, dict):
                problems.extend(schema_problems(value[key], sub, f"{path}.{key}"))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems.extend(schema_problems(item, schema["items"], f"{path}[{i}]"))
    return problems


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
