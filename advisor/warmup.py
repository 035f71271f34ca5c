"""Start-up of the web app: the retriever built on first use, model and index warm-up in the
background, and the status line that reports it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from advisor.ui import error_message

log = logging.getLogger(__name__)


class LazyRetriever:
    """The retriever, built on first use (it loads embeddings), and warmed up on request."""

    def __init__(self, factory: Any) -> None:
        """``factory`` builds the real retriever on first use."""
        self._factory = factory
        self._inner: Any = None
        self._lock = threading.Lock()

    @property
    def inner(self) -> Any:
        """The wrapped retriever."""
        with self._lock:
            if self._inner is None:
                self._inner = self._factory()
            return self._inner

    def search(self, query: str, k: int | None = None) -> Any:
        """Search with the wrapped retriever."""
        return self.inner.search(query, k)

    def warm_up(self) -> None:
        """Load the retriever's embedding model and corpus."""
        warm = getattr(self.inner, "warm_up", None)
        if callable(warm):
            warm()


class Warmup:
    """Runs start-up steps in a background thread and reports their progress.

    Steps are (name, callable) pairs run in order; a failing step is recorded and the next
    one still runs, because a missing index must not hide a working model or the reverse.
    """

    def __init__(self, steps: Sequence[tuple[str, Any]]) -> None:
        """Keep the steps; nothing runs until :meth:`start`."""
        self.steps = list(steps)
        self.state: dict[str, str] = {name: "waiting" for name, _ in self.steps}
        self.errors: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Warmup:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="advisor-warmup", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for name, step in self.steps:
                self.state[name] = "loading"
                t0 = time.perf_counter()
                try:
                    step()
                except Exception as exc:  # shown in the UI; the app keeps serving lookups
                    log.warning("warm-up step %s failed: %s", name, exc, exc_info=True)
                    self.state[name] = "failed"
                    self.errors[name] = error_message(exc)
                else:
                    self.state[name] = "ready"
                self.seconds[name] = time.perf_counter() - t0
        finally:
            self.done.set()

    @property
    def ready(self) -> bool:
        """True when every step finished (successfully or not)."""
        return self.done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up finished; False on timeout."""
        return self.done.wait(timeout)

    def summary(self) -> str:
        """One line: each step with its state, and the error of a failed step."""
        parts = []
        for name, _ in self.steps:
            st = self.state[name]
            extra = (
                f" ({self.seconds[name]:.0f} s)" if st == "ready" and name in self.seconds else ""
            )
            err = f": {self.errors[name]}" if name in self.errors else ""
            parts.append(f"{name} {st}{extra}{err}")
        return "; ".join(parts)


def status_line(warmup: Warmup | None, backend: str) -> str:
    """The short status shown at the top of the page."""
    if backend == "none":
        return (
            "Model: off (backend 'none'): answers list candidate codes, never verified. "
            "Lookups, claim checks and note audits work."
        )
    if warmup is None:
        return "Model: not started."
    if not warmup.ready:
        return (
            f"Model: loading in the background ({warmup.summary()}). Lookups, claim checks "
            "and note audits already work."
        )
    if warmup.errors:
        return (
            f"Model: problem at start-up ({warmup.summary()}). Chat answers fall back to "
            "unverified candidates; lookups and claim checks work."
        )
    return f"Model: ready ({warmup.summary()})."

