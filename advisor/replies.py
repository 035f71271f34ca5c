"""Model replies kept by prompt, to re-run an evaluation after a change that leaves the prompts
as they were (a checker rule, a policy) without drafting them again.

The embedded model drafts at temperature 0 with a fixed seed, so one prompt gives one reply:
a reply kept for the same model, task, messages, schema and token cap is the reply the model
would give again. A prompt that changed (other candidates, a re-ask naming other findings)
misses the cache and is drafted. The file is JSON lines, appended as replies arrive, so an
interrupted run loses nothing. Latency figures of a replayed run are not model latencies.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any


class ReplyCache:
    """Replies by prompt key, read from and appended to one JSON-lines file."""

    def __init__(self, path: Path, model: str) -> None:
        """Load the replies kept in ``path`` (created on the first reply) for ``model``."""
        self.path = path
        self.model = model
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._replies: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self._replies[str(row["key"])] = dict(row["reply"])
                except (ValueError, KeyError, TypeError):
                    # A line cut short by a crash: the rest of the file still counts.
                    continue

    def __len__(self) -> int:
        return len(self._replies)

    def key(self, task: str, messages: list[Any], schema: Any, max_tokens: int) -> str:
        """The prompt's key: the model, the task, every message, the schema, the token cap."""
        payload = {
            "model": self.model,
            "task": task,
            "messages": [[type(m).__name__, getattr(m, "content", str(m))] for m in messages],
            "schema": schema,
            "max_tokens": max_tokens,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The kept reply for ``key`` (a copy), counting the hit or the miss."""
        with self._lock:
            reply = self._replies.get(key)
            if reply is None:
                self.misses += 1
                return None
            self.hits += 1
            return json.loads(json.dumps(reply))

    def put(self, key: str, reply: dict[str, Any]) -> None:
        """Keep ``reply`` and append it to the file at once."""
        with self._lock:
            self._replies[key] = reply
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n")

    def summary(self) -> str:
        """One line for the end of a run: how many calls were replayed and how many drafted."""
        return (f"model replies: {self.hits} replayed from {self.path}, {self.misses} drafted "
                f"by the model")
