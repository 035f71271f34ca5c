"""Limits on what a person hands the advisor: question length, document type and size, pace.

Each check raises :class:`InputRejected` with a message that names the limit, the setting
that raises it and what to do instead. Nothing here loads a model or opens the index, so a
rejected input costs nothing.

The questions-per-minute limit is counted in the process (:class:`RateLimiter`) or, when
several app replicas share a database (``ADVISOR_DATABASE_URL``), in that database
(:class:`SharedRateLimiter`), so a session sent to another replica keeps its count.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.chunking import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from advisor.settings import Settings

log = logging.getLogger(__name__)

WINDOW_S = 60.0
_MAX_KEYS = 4096  # sessions remembered before idle ones are forgotten
SHARED_RETRY_S = 5.0  # after the database failed, count locally this long before trying again
_SWEEP_EVERY = 200  # shared checks between removals of idle sessions' rows


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
                raise _over_limit(len(events), self.per_minute, now - events[0])
            events.append(now)
            if len(self._events) > _MAX_KEYS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or now - ev[-1] >= WINDOW_S]:
            del self._events[key]


def _over_limit(asked: int, per_minute: int, oldest_age_s: float) -> InputRejected:
    wait = max(1, round(WINDOW_S - oldest_age_s))
    return InputRejected(
        f"You have asked {asked} questions in the last minute; the limit is {per_minute} a "
        f"minute (ADVISOR_MAX_QUESTIONS_PER_MINUTE). Try again in {wait} s. Lookups and "
        "claim checks are not limited."
    )


class SharedRateLimiter:
    """The same limit, counted in the database that the app replicas share.

    Per session, the times of the questions accepted in the last minute are one row of
    ``question_windows``, read and rewritten under a row lock, so two replicas counting the
    same session at once cannot both let the last question in. Times are wall-clock seconds
    (replicas' clocks are assumed in step, as NTP keeps them).

    While the database cannot be reached, each replica counts on its own (a
    :class:`RateLimiter`): the limit still holds per replica and no question waits for the
    database; the shared count is tried again after ``SHARED_RETRY_S``.
    """

    def __init__(
        self,
        per_minute: int,
        engine: Callable[[], Engine],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Count in the database ``engine()`` returns (made and migrated on first use)."""
        self.per_minute = per_minute
        self.clock = clock
        self._engine = engine
        self.local = RateLimiter(per_minute, clock=clock)
        self._local_until = 0.0
        self._checks = 0

    def check(self, key: str) -> None:
        """Count one question for ``key``; InputRejected (nothing counted) when over the limit."""
        if self.per_minute <= 0:
            return
        if time.monotonic() >= self._local_until:
            try:
                self._check_shared(key)
                return
            except InputRejected:
                raise
            except Exception as exc:  # the database: down, locked, unreachable
                self._local_until = time.monotonic() + SHARED_RETRY_S
                log.warning("shared question limit unavailable, counting on this replica: %s",
                            str(exc).splitlines()[0][:300])
        self.local.check(key)

    def _check_shared(self, key: str) -> None:
        from sqlalchemy import delete, select, update

        from advisor.db import insert_ignore
        from advisor.db import question_windows as qw

        engine = self._engine()
        now = self.clock()
        with engine.begin() as conn:
            conn.execute(
                insert_ignore(qw, engine.dialect.name, "session_key"),
                {"session_key": key, "events": "[]", "updated_at": now},
            )
            stored = conn.execute(
                select(qw.c.events).where(qw.c.session_key == key).with_for_update()
            ).scalar_one()
            events = [t for t in json.loads(stored) if now - t < WINDOW_S]
            if len(events) >= self.per_minute:
                raise _over_limit(len(events), self.per_minute, now - min(events))
            events.append(now)
            conn.execute(
                update(qw)
                .where(qw.c.session_key == key)
                .values(events=json.dumps(events), updated_at=now)
            )
            self._checks += 1
            if self._checks % _SWEEP_EVERY == 0:
                conn.execute(delete(qw).where(qw.c.updated_at < now - WINDOW_S))


def make_rate_limiter(
    settings: Settings, engine: Callable[[], Engine]
) -> RateLimiter | SharedRateLimiter:
    """The chat limit: shared through the database when ADVISOR_DATABASE_URL is set."""
    if settings.database_url is None:
        return RateLimiter(settings.max_questions_per_minute)
    return SharedRateLimiter(settings.max_questions_per_minute, engine)
