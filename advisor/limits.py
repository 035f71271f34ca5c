"""Limits on what a person hands the advisor: question length, document type and size, pace.

Each check raises :class:`InputRejected` with a message that names the limit, the setting
that raises it and what to do instead. Nothing here loads a model or opens the index, so a
rejected input costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.chunking import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from advisor.settings import Settings

WINDOW_S = 60.0
_MAX_KEYS = 4096  # sessions remembered before idle ones are forgotten


class InputRejected(ValueError):
    """Input over a limit; the message says which limit and how to get under it."""

    retryable = False


def check_question(question: str, settings: Settings) -> str:
    """The question, stripped; InputRejected when it is longer than the limit."""
    q = question.strip()
    limit = settings.max_question_chars
    if len(q) > limit:
        raise InputRejected(
            f"The question is {len(q):,} characters; the limit is {limit:,} "
            "(ADVISOR_MAX_QUESTION_CHARS). Shorten it to the procedure and the codes in "
            "question; paste notes into the note audit instead."
        )
    return q


def document_problem(path: Path, max_upload_mb: int) -> str | None:
    """Why a user document cannot be indexed (type or size), or None when it can."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return (
            f"unsupported file type {suffix or '(none)'}: index .md, .txt, .html or .pdf "
            "files (convert others, e.g. save a Word file as PDF)"
        )
    size = path.stat().st_size
    if size > max_upload_mb * 1024 * 1024:
        return (
            f"the file is {size / 1_048_576:.1f} MB, over the {max_upload_mb} MB limit "
            "(ADVISOR_MAX_UPLOAD_MB): split it or raise the limit"
        )
    return None


class RateLimiter:
    """At most ``per_minute`` accepted events per key in any 60-second window.

    Keys are chat sessions. A refused event is not counted, so a person who waits is let in
    again. ``per_minute=0`` turns the limit off.
    """

    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Remember recent events per key, timed by ``clock`` (seconds)."""
        self.per_minute = per_minute
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one event for ``key``; InputRejected (nothing counted) when over the limit."""
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self.clock()
            events = self._events.setdefault(key, deque())
            while events and now - events[0] >= WINDOW_S:
                events.popleft()
            if len(events) >= self.per_minute:
                wait = max(1, round(WINDOW_S - (now - events[0])))
                raise InputRejected(
                    f"You have asked {len(events)} questions in the last minute; the limit is "
                    f"{self.per_minute} a minute (ADVISOR_MAX_QUESTIONS_PER_MINUTE). Try again "
                    f"in {wait} s. Lookups and claim checks are not limited."
                )
            events.append(now)
            if len(self._events) > _MAX_KEYS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or now - ev[-1] >= WINDOW_S]:
            del self._events[key]
