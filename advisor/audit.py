"""SQLite audit log of what was asked and answered, with PHI masked.

One row per answer: the masked question and answer, the codes shown with their verdicts, the
findings, ruleset version, backend and model, retrieved passage ids and timings; feedback
(thumbs up/down with a comment) goes in a second table. The file is in WAL mode so the UI can
write while ``advisor audit export`` reads.

Writing never costs the person their answer: a failed write (locked file, full disk,
read-only folder) is reported in the app log and the entry waits in a bounded in-memory
queue, written before the next entry and at exit. Free text is masked again here with
:func:`advisor.privacy.scrub`, a second line of defence behind the pipeline's own masking.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.privacy import scrub

__all__ = ["AuditCode", "AuditEntry", "AuditError", "AuditLog", "parse_since"]

log = logging.getLogger(__name__)

ExportFormat = Literal["json", "csv"]
Rating = Literal["up", "down"]

# Each step runs once, in order; the version table records how far a file has come.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        codes TEXT NOT NULL,
        findings TEXT NOT NULL,
        ruleset TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        passage_ids TEXT NOT NULL,
        timings TEXT NOT NULL,
        path TEXT NOT NULL
    );
    CREATE INDEX entries_created_at ON entries(created_at);
    """,
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_uid TEXT NOT NULL,
        rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
        comment TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX feedback_entry ON feedback(entry_uid);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class AuditError(Exception):
    """The audit log cannot be read or written; the message says what to do."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        """Keep whether trying again later can help (a lock can clear, a bad path cannot)."""
        super().__init__(message)
        self.retryable = retryable


class AuditCode(BaseModel):
    """A code the answer showed (or removed), with its verdict."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="The code.")
    status: str = Field(description="verified, corrected, removed or not_verified.")
    units: int = Field(1, description="Units.")
    modifiers: list[str] = Field(default_factory=list, description="Modifiers.")


class AuditEntry(BaseModel):
    """One answered question as stored (free text is masked before it is written)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question, PHI masked.")
    answer: str = Field(description="The answer text shown, PHI masked.")
    codes: list[AuditCode] = Field(default_factory=list, description="Codes with verdicts.")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Findings.")
    ruleset: str = Field("", description="Ruleset version used by the checker.")
    backend: str = Field("", description="Drafting backend: embedded, openai, ollama, none.")
    model: str = Field("", description="Model name or preset at that backend.")
    passage_ids: list[str] = Field(default_factory=list, description="Retrieved passage ids.")
    timings_ms: dict[str, int] = Field(default_factory=dict, description="Timings in ms.")
    path: str = Field("", description="Which pipeline path answered.")
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When it was answered (UTC)."
    )

    @classmethod
    def from_answer(cls, answer: Any, *, passage_ids: list[str] | None = None) -> AuditEntry:
        """Build from a pipeline ``Answer`` (read by attribute, so no import of the pipeline)."""
        backend, _, model = str(getattr(answer, "backend", "")).partition(":")
        lines = list(getattr(answer, "codes", [])) + list(getattr(answer, "removed", []))
        codes = [
            AuditCode(
                code=c.code,
                status=getattr(c.status, "value", str(c.status)),
                units=c.units,
                modifiers=list(c.modifiers),
            )
            for c in lines
        ]
        if passage_ids is None:
            passage_ids = [c.id for c in getattr(answer, "citations", [])]
        return cls(
            question=getattr(answer, "question", ""),
            answer=getattr(answer, "answer", ""),
            codes=codes,
            findings=list(getattr(answer, "findings", [])),
            ruleset=getattr(answer, "ruleset", ""),
            backend=backend,
            model=model,
            passage_ids=passage_ids,
            timings_ms=dict(getattr(answer, "timings_ms", {})),
            path=getattr(answer, "path", ""),
        )


def parse_since(value: str) -> datetime:
    """A ``--since`` value (``YYYY-MM-DD`` or an ISO time) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"Cannot read the date {value!r}: use YYYY-MM-DD (e.g. 2026-11-01) or an ISO time."
        ) from None
    return _utc(parsed)


def _utc(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _describe(path: Path, exc: BaseException) -> AuditError:
    """An AuditError whose message names the command that fixes the problem."""
    text = str(exc).lower()
    folder = path.parent
    if "locked" in text or "busy" in text:
        return AuditError(
            f"The audit log {path} is locked by another process ({exc}). Entries wait in "
            f"memory and are written when it is free; `fuser {path}` shows who holds it.",
            retryable=True,
        )
    if "full" in text:
        return AuditError(
            f"The disk holding the audit log {path} is full ({exc}). Free space "
            f"(`df -h {folder}` shows how much is left); entries wait in memory meanwhile.",
            retryable=True,
        )
    return AuditError(
        f"Cannot write the audit log {path} ({exc}). Make its folder writable with "
        f"`mkdir -p {folder} && chmod u+w {folder}`, or point ADVISOR_DATA_DIR at a "
        f"writable folder (`export ADVISOR_DATA_DIR=~/advisor-data`).",
        retryable=isinstance(exc, sqlite3.OperationalError) and "readonly" not in text,
    )


class AuditLog:
    """The audit log at ``path`` (usually ``settings.audit_path``); thread-safe."""

    def __init__(
        self,
        path: Path | str,
        *,
        timeout_s: float = 2.0,
        max_pending: int = 200,
        scrubber: Callable[[str], str] = scrub,
    ) -> None:
        """Nothing is opened until the first write or read."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._scrub = scrubber
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._lock = threading.RLock()
        self._migrated = False
        self.last_error: AuditError | None = None
        atexit.register(self.flush)

    # -- connection -------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s)
        except (OSError, sqlite3.Error) as exc:
            raise _describe(self.path, exc) from exc
        try:
            if not self._migrated:
                self._migrate(conn)
            yield conn
        except sqlite3.Error as exc:
            raise _describe(self.path, exc) from exc
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # WAL lets the UI append while an export reads; the mode is stored in the file.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise AuditError(
                f"The audit log {self.path} was written by a newer version (schema "
                f"{current}, this one knows {SCHEMA_VERSION}); upgrade with "
                "`pip install -U us-coding-advisor`.",
                retryable=False,
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            # One transaction per step: a step half applied is rolled back when the
            # connection closes, and the next open tries it again.
            conn.executescript("BEGIN;" + MIGRATIONS[version - 1])
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.commit()
        self._migrated = True

    def schema_version(self) -> int:
        """The schema version of the file (creating it when needed)."""
        with self._lock, self._connect() as conn:
            return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def journal_mode(self) -> str:
        """The SQLite journal mode of the file ('wal')."""
        with self._lock, self._connect() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    # -- writing ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Writes waiting in memory for the file to accept them."""
        return len(self._pending)

    def _enqueue(self, kind: str, row: tuple[Any, ...]) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            log.error(
                "audit queue full (%d waiting): the oldest audit record was dropped",
                self.max_pending,
            )
        self._pending.append((kind, row))

    def record(self, entry: AuditEntry) -> str:
        """Store an entry (masking its free text); return its id. Never raises.

        If the file cannot be written now, the entry waits in memory and is written
        before the next entry or at exit; the failure goes to the app log.
        """
        uid = uuid.uuid4().hex
        try:
            findings = [self._scrub_finding(f) for f in entry.findings]
            row = (
                uid,
                _utc(entry.created_at).isoformat(timespec="microseconds"),
                self._scrub(entry.question),
                self._scrub(entry.answer),
                json.dumps([c.model_dump() for c in entry.codes]),
                json.dumps(findings, default=str),
                entry.ruleset,
                entry.backend,
                entry.model,
                json.dumps(entry.passage_ids),
                json.dumps(entry.timings_ms),
                entry.path,
            )
        except Exception as exc:  # masking or encoding broke: keep nothing unmasked
            log.error("audit entry not recorded: %s", type(exc).__name__)
            return uid
        with self._lock:
            self._enqueue("entry", row)
            self.flush()
        return uid

    def feedback(self, entry_id: str, rating: Rating, comment: str = "") -> None:
        """Attach thumbs up/down and a comment (masked) to an entry; queued like entries."""
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        with self._lock:
            queued = any(kind == "entry" and row[0] == entry_id for kind, row in self._pending)
            if not queued and self._known(entry_id) is False:
                raise KeyError(f"no audit entry with id {entry_id!r}")
            row = (
                entry_id,
                rating,
                self._scrub(comment),
                datetime.now(UTC).isoformat(timespec="microseconds"),
            )
            self._enqueue("feedback", row)
            self.flush()

    def _known(self, entry_id: str) -> bool | None:
        """Whether the entry is in the file; None when the file cannot be read now."""
        try:
            with self._connect() as conn:
                hit = conn.execute("SELECT 1 FROM entries WHERE uid = ?", (entry_id,)).fetchone()
        except AuditError:
            return None
        return hit is not None

    def flush(self) -> bool:
        """Write everything waiting; True when nothing is left. Failures are logged."""
        with self._lock:
            if not self._pending:
                return True
            batch = list(self._pending)
            try:
                with self._connect() as conn, conn:
                    for kind, row in batch:
                        if kind == "entry":
                            conn.execute(
                                "INSERT OR IGNORE INTO entries (uid, created_at, question, "
                                "answer, codes, findings, ruleset, backend, model, passage_ids, "
                                "timings, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                row,
                            )
                        else:
                            conn.execute(
                                "INSERT INTO feedback (entry_uid, rating, comment, created_at) "
                                "VALUES (?, ?, ?, ?)",
                                row,
                            )
            except AuditError as exc:
                self.last_error = exc
                log.warning(
                    "audit write failed, %d record(s) kept for retry: %s", len(self._pending), exc
                )
                return False
            for _ in batch:
                self._pending.popleft()
            if self.last_error is not None:
                log.info("audit log writable again: %d waiting record(s) written", len(batch))
            self.last_error = None
            return True

    def close(self) -> None:
        """Write what is waiting and stop the exit hook."""
        self.flush()
        atexit.unregister(self.flush)

    def _scrub_finding(self, finding: dict[str, Any]) -> dict[str, Any]:
        out = dict(finding)
        for key in ("message", "evidence", "text"):
            if isinstance(out.get(key), str):
                out[key] = self._scrub(out[key])
        return out

    # -- reading ----------------------------------------------------------------------
    def entries(self, since: date | datetime | None = None) -> list[dict[str, Any]]:
        """Stored entries (oldest first) with their feedback, on or after ``since``."""
        with self._lock:
            self.flush()
            if not self.path.exists():
                return []
            with self._connect() as conn:
                conn.row_factory = sqlite3.Row
                sql = "SELECT * FROM entries"
                args: tuple[Any, ...] = ()
                if since is not None:
                    sql += " WHERE created_at >= ?"
                    args = (_utc(since).isoformat(timespec="microseconds"),)
                rows = conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
                fb: dict[str, list[dict[str, Any]]] = {}
                for f in conn.execute(
                    "SELECT entry_uid, rating, comment, created_at FROM feedback ORDER BY id"
                ):
                    fb.setdefault(f["entry_uid"], []).append(
                        {
                            "rating": f["rating"],
                            "comment": f["comment"],
                            "created_at": f["created_at"],
                        }
                    )
        return [
            {
                "id": r["uid"],
                "created_at": r["created_at"],
                "question": r["question"],
                "answer": r["answer"],
                "codes": json.loads(r["codes"]),
                "findings": json.loads(r["findings"]),
                "ruleset": r["ruleset"],
                "backend": r["backend"],
                "model": r["model"],
                "passage_ids": json.loads(r["passage_ids"]),
                "timings_ms": json.loads(r["timings"]),
                "path": r["path"],
                "feedback": fb.get(r["uid"], []),
            }
            for r in rows
        ]

    def export(self, since: date | datetime | None = None, fmt: ExportFormat = "json") -> str:
        """Entries as a JSON array or CSV (one row per entry, lists flattened)."""
        rows = self.entries(since)
        if fmt == "json":
            return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
        if fmt != "csv":
            raise ValueError(f"unknown export format {fmt!r}: use 'json' or 'csv'")
        buf = io.StringIO()
        columns = [
            "id",
            "created_at",
            "question",
            "answer",
            "codes",
            "findings",
            "ruleset",
            "backend",
            "model",
            "passage_ids",
            "timings_ms",
            "path",
            "feedback",
            "feedback_comment",
        ]
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            last = r["feedback"][-1] if r["feedback"] else {}
            writer.writerow(
                {
                    **{k: r[k] for k in columns[:4]},
                    "codes": " ".join(
                        f"{c['code']}:{c['status']}" + (f"x{c['units']}" if c["units"] != 1 else "")
                        for c in r["codes"]
                    ),
                    "findings": " ".join(f.get("rule", "") for f in r["findings"]),
                    "ruleset": r["ruleset"],
                    "backend": r["backend"],
                    "model": r["model"],
                    "passage_ids": " ".join(r["passage_ids"]),
                    "timings_ms": json.dumps(r["timings_ms"]),
                    "path": r["path"],
                    "feedback": last.get("rating", ""),
                    "feedback_comment": last.get("comment", ""),
                }
            )
        return buf.getvalue()
