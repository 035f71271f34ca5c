"""The test suite's one fake chat model (answers from a script and records every call), and a
retriever that returns fixed passages and candidates.

Replies are keyed by call order or by task (the task a message list was built for), never
by exact prompt text. A reply is a str (sent as is), a dict or list (sent as JSON), an
exception (raised, as a failing backend would), or a callable taking the task and the
messages and returning one of those. A call with no reply left is answered by ``default``
when one is given; otherwise it fails the test.

Import as ``from fakes import ScriptedChatModel, FakeRetriever`` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from advisor.prompts import Task, task_of
from advisor.retriever import Candidate, Passage, RetrievalResult


class ScriptedChatModel(BaseChatModel):
    """Answers from a queue (per task when ``by_task`` has one) and records what it was sent."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    by_task: dict[str, list[Any]] = Field(default_factory=dict)
    default: Any = None
    calls: list[tuple[Task | None, list[BaseMessage]]] = Field(default_factory=list)
    options: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def prompts(self, task: Task | None = None) -> list[str]:
        """The text of each call (all its messages), optionally of one task only."""
        return [
            "\n".join(str(m.content) for m in messages)
            for t, messages in self.calls
            if task is None or t is task
        ]

    def tasks(self) -> list[Task | None]:
        """The task of each call, in order."""
        return [t for t, _ in self.calls]

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        task = task_of(messages)
        self.calls.append((task, list(messages)))
        self.options.append(kwargs)
        queue = self.by_task.get(str(task)) if task is not None else None
        if queue is None:
            queue = self.replies
        if queue:
            reply = queue.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError(f"unexpected model call for task {task}")
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(task, messages)
        if isinstance(reply, BaseException):
            raise reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def passage(pid: str, text: str, codes: Sequence[str] = ()) -> Passage:
    """A guideline passage with a given id."""
    return Passage(id=pid, text=text, source=f"guidelines/{pid}.md", title=f"Title {pid}",
                   section="Coding", score=0.5, codes=list(codes), kind="guideline")


class FakeRetriever:
    """Returns fixed passages and candidates; records the queries it was sent."""

    def __init__(self, catalog: Any, codes: Sequence[str], passages: Sequence[Passage]) -> None:
        self.queries: list[str] = []
        self.result = RetrievalResult(
            query="",
            passages=list(passages),
            candidates=[Candidate(code=c, label=catalog.get(c).label, why="test", score=1.0)
                        for c in codes],
        )

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        """The fixed result (the query is recorded)."""
        self.queries.append(query)
        return self.result


def send_chat_completion(handler: Any, content: str, model: str) -> None:
    """Answer an HTTP request (a BaseHTTPRequestHandler) as an OpenAI-compatible server's
    /v1/chat/completions does, with one assistant message holding ``content``."""
    reply = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    data = json.dumps(reply).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
