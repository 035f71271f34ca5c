"""The audit log of what was asked and answered, with PHI masked; feedback beside it.

One row per answer: the masked question and answer, the codes shown with their verdicts, the
findings, ruleset version, backend and model, retrieved passage ids and timings; feedback
(thumbs up/down with a comment) goes in a second table. The store is the database of
:mod:`advisor.db`: a SQLite file in the data dir by default (WAL mode, so the UI can write
while ``advisor audit export`` reads), or PostgreSQL shared by several app replicas when
``ADVISOR_DATABASE_URL`` is set. Both give the same export.

Writing never costs the person their answer. A failed write (database down, locked file,
full disk) is reported in the app log and the record waits in a bounded on-disk spool
(:mod:`advisor.spool`; in memory if even that cannot be written); a background thread
replays it when the database is back, and every write carries the record's id, so a replay
never stores a record twice. Free text is masked again here with
:func:`advisor.privacy.scrub`, a second line of defence behind the pipeline's own masking.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from advisor.audit_entry import AuditCode, AuditEntry, _iso, _utc, parse_since
from advisor.db import DatabaseError
from advisor.privacy import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from advisor.settings import Settings
    from advisor.spool import Spool


__all__ = [
    "AuditCode",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "open_audit",
    "parse_since",
]

log = logging.getLogger(__name__)

ExportFormat = Literal["json", "csv"]
Rating = Literal["up", "down"]

# The audit log's errors are the database's: one class, whether a retry can help or not.
AuditError = DatabaseError

MAX_BACKOFF_S = 10.0  # longest pause between replays while the database stays down
_BATCH = 500  # records written per transaction when replaying
WARN_EVERY_S = 60.0  # while the database stays down, one warning a minute





def open_audit(settings: Settings) -> AuditLog:
    """The audit log the settings name (ADVISOR_DATABASE_URL, else the data dir's file).

    Its spool is ``audit-spool`` in the data dir, bounded by ``audit_spool_max``.
    """
    from advisor.db import database_url

    return AuditLog(
        database_url(settings),
        spool_dir=settings.audit_spool_dir,
        max_pending=settings.audit_spool_max,
    )


class AuditLog:
    """The audit log in the database at ``target``; thread-safe.

    ``target`` is a SQLite file path (usually ``settings.audit_path``) or a database URL;
    :func:`open_audit` builds one from settings. Records that cannot be written wait in
    ``spool_dir`` (default: ``audit-spool`` beside a SQLite file; in memory for a URL
    without one), at most ``max_pending`` of them.
    """

    def __init__(
        self,
        target: Path | str | URL,
        *,
        timeout_s: float = 2.0,
        max_pending: int = 10_000,
        spool_dir: Path | None = None,
        retry_s: float = 1.0,
        scrubber: Callable[[str], str] = scrub,
    ) -> None:
        """Nothing is opened until the first write or read."""
        from advisor.db import parse_url, sqlite_file
        from advisor.spool import Spool

        self.url = parse_url(target)
        self.path = sqlite_file(self.url)  # None for PostgreSQL
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.retry_s = retry_s
        self._scrub = scrubber
        if spool_dir is None and self.path is not None:
            spool_dir = self.path.parent / "audit-spool"
        self.spool: Spool | None = Spool(spool_dir, max_pending) if spool_dir else None
        self._pending: deque[dict[str, Any]] = deque()  # when even the spool cannot be written
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._migrated = False
        self._failures = 0
        self._next_try = 0.0
        self._warned_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._replayer: threading.Thread | None = None
        self.last_error: AuditError | None = None
        atexit.register(self.close)

    @property
    def where(self) -> str:
        """The store, as it may be shown (no password)."""
        from advisor.db import redact

        return str(self.path) if self.path is not None else redact(self.url)

    # -- connection -------------------------------------------------------------------
    def engine(self) -> Engine:
        """The engine, made on first use, with the schema brought up to date."""
        from advisor.db import describe_error, make_engine, upgrade

        with self._lock:
            try:
                if self._engine is None:
                    if self.path is not None:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._engine = make_engine(self.url, timeout_s=self.timeout_s)
                if not self._migrated:
                    upgrade(self._engine)
                    self._migrated = True
            except Exception as exc:
                raise describe_error(self.url, exc) from exc
            return self._engine

    def revision(self) -> str | None:
        """The schema revision of the database (bringing it up to date first)."""
        from advisor.db import current_revision

        return current_revision(self.engine())

    def journal_mode(self) -> str:
        """The SQLite journal mode of the file ('wal'); '' for PostgreSQL."""
        from sqlalchemy import text

        if self.path is None:
            return ""
        with self.engine().connect() as conn:
            return str(conn.execute(text("PRAGMA journal_mode")).scalar())

    # -- writing ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Records waiting for the database (spool and memory)."""
        return len(self._pending) + (len(self.spool) if self.spool is not None else 0)

    def record(self, entry: AuditEntry) -> str:
        """Store an entry (masking its free text); return its id. Never raises.

        The id is the entry's own, so recording the same entry again stores nothing new.
        If the database cannot be written now, the entry waits (spool, else memory) and is
        written by the background replay, before the next entry, or at exit.
        """
        uid = entry.id
        try:
            findings = [self._scrub_finding(f) for f in entry.findings]
            row = {
                "uid": uid,
                "created_at": _utc(entry.created_at).isoformat(timespec="microseconds"),
                "question": self._scrub(entry.question),
                "answer": self._scrub(entry.answer),
                "codes": [c.model_dump() for c in entry.codes],
                "findings": json.loads(json.dumps(findings, default=str)),
                "ruleset": entry.ruleset,
                "backend": entry.backend,
                "model": entry.model,
                "passage_ids": list(entry.passage_ids),
                "timings": dict(entry.timings_ms),
                "path": entry.path,
            }
        except Exception as exc:  # masking or encoding broke: keep nothing unmasked
            log.error("audit entry not recorded: %s", type(exc).__name__)
            return uid
        self._submit({"kind": "entry", "uid": uid, "row": row})
        return uid

    def feedback(self, entry_id: str, rating: Rating, comment: str = "") -> str:
        """Attach thumbs up/down and a comment (masked) to an entry; its id. Queued like entries.

        KeyError when the database is reachable and has no such entry (nor is one waiting).
        """
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        with self._lock:
            if not self._waiting("entry", entry_id) and self._known(entry_id) is False:
                raise KeyError(f"no audit entry with id {entry_id!r}")
            uid = uuid.uuid4().hex
            row = {
                "uid": uid,
                "entry_uid": entry_id,
                "rating": rating,
                "comment": self._scrub(comment),
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            }
            self._submit({"kind": "feedback", "uid": uid, "row": row})
            return uid

    def _waiting(self, kind: str, uid: str) -> bool:
        if any(r["kind"] == kind and r["uid"] == uid for r in self._pending):
            return True
        return self.spool is not None and self.spool.contains(kind, uid)

    def _known(self, entry_id: str) -> bool | None:
        """Whether the entry is stored; None when the database cannot be read now."""
        from sqlalchemy import select

        from advisor.db import entries

        if self.path is not None and not self.path.exists():
            return False
        try:
            with self.engine().connect() as conn:
                hit = conn.execute(select(entries.c.id).where(entries.c.uid == entry_id)).first()
        except Exception:
            return None
        return hit is not None

    def _submit(self, record: dict[str, Any]) -> None:
        """Write now if the database is up and nothing waits; else queue behind the rest."""
        with self._lock:
            due = time.monotonic() >= self._next_try
            if due and self.pending == 0:
                try:
                    self._write([record])
                    self._succeeded(0)
                    return
                except AuditError as exc:
                    self._failed(exc, 1)
                    due = False
            self._queue(record)
            if due:  # the database may be back: what waits goes first, then this one
                self.flush()
            self._start_replay()

    def _queue(self, record: dict[str, Any]) -> None:
        if self.spool is not None:
            try:
                self.spool.put(record)
                return
            except OSError as exc:
                log.error("audit spool %s cannot be written (%s): record kept in memory",
                          self.spool.folder, exc)
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            log.error(
                "audit queue full (%d waiting): the oldest audit record was dropped",
                self.max_pending,
            )
        self._pending.append(record)

    def _write(self, records: Iterable[dict[str, Any]]) -> None:
        """Write records in one transaction; ids already stored are skipped."""
        from advisor.db import describe_error, entries, feedback, insert_ignore

        batch = list(records)
        rows = {
            "entry": [r["row"] for r in batch if r["kind"] == "entry"],
            "feedback": [r["row"] for r in batch if r["kind"] == "feedback"],
        }
        engine = self.engine()
        try:
            with engine.begin() as conn:
                for kind, table in (("entry", entries), ("feedback", feedback)):
                    if rows[kind]:
                        conn.execute(insert_ignore(table, engine.dialect.name, "uid"), rows[kind])
        except Exception as exc:
            raise describe_error(self.url, exc) from exc

    def _failed(self, exc: AuditError, waiting: int) -> None:
        self._failures += 1
        # The next write tries again at once (a lock often clears in a moment); after that
        # replays pause 1, 2, 4 ... s (at most MAX_BACKOFF_S) while the database stays down.
        pause = 0.0 if self._failures == 1 else self.retry_s * 2 ** (self._failures - 2)
        self._next_try = time.monotonic() + min(MAX_BACKOFF_S, pause)
        first = self.last_error is None
        self.last_error = exc
        now = time.monotonic()
        if first or now - self._warned_at >= WARN_EVERY_S:  # an outage is not a log flood
            self._warned_at = now
            log.warning("audit write failed, %d record(s) kept for retry: %s",
                        max(waiting, self.pending), exc)
        if first:
            log.info("audit records wait in %s until %s is writable",
                     self.spool.folder if self.spool else "memory", self.where)

    def _succeeded(self, written: int) -> None:
        if self.last_error is not None:
            log.info("audit log writable again: %d waiting record(s) written", written)
        self._failures = 0
        self._next_try = 0.0
        self.last_error = None

    def flush(self) -> bool:
        """Write everything waiting, oldest first; True when nothing is left. Never raises."""
        with self._lock:
            written = 0
            try:
                if self.spool is not None:
                    batch: list[tuple[Path, dict[str, Any]]] = []
                    for item in self.spool.items():
                        batch.append(item)
                        if len(batch) >= _BATCH:
                            written += self._write_spooled(batch)
                            batch = []
                    if batch:
                        written += self._write_spooled(batch)
                if self._pending:
                    memory = list(self._pending)
                    self._write(memory)
                    for _ in memory:
                        self._pending.popleft()
                    written += len(memory)
            except AuditError as exc:
                self._failed(exc, self.pending)
                return False
            if written or self.last_error is not None:
                self._succeeded(written)
            return self.pending == 0

    def _write_spooled(self, batch: list[tuple[Path, dict[str, Any]]]) -> int:
        assert self.spool is not None
        self._write(record for _, record in batch)
        for path, _ in batch:
            self.spool.remove(path)
        return len(batch)

    # -- replay in the background -----------------------------------------------------
    def start(self) -> None:
        """Bring the schema up to date and replay what a previous run left, in the background.

        Called by the app at start-up; the answer path never waits for it.
        """
        self._start_replay(force=True)

    def _start_replay(self, *, force: bool = False) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self._replayer is not None and self._replayer.is_alive():
                self._wake.set()
                return
            if not force and self.pending == 0:
                return
            self._replayer = threading.Thread(
                target=self._replay_loop, name="audit-replay", daemon=True
            )
            self._replayer.start()

    def _replay_loop(self) -> None:
        try:
            self.engine()
        except AuditError as exc:
            with self._lock:
                self._failed(exc, self.pending)
        while not self._stop.is_set():
            with self._lock:
                if self.pending == 0 and self._migrated:
                    self._replayer = None
                    return
                # never sooner than retry_s after a failure: the answer path tries first
                wait = max(self._next_try - time.monotonic(),
                           self.retry_s if self.last_error is not None else 0.0)
            self._wake.wait(timeout=max(0.0, wait))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                if time.monotonic() >= self._next_try or self.last_error is None:
                    if not self._migrated:
                        try:
                            self.engine()
                        except AuditError as exc:
                            self._failed(exc, self.pending)
                            continue
                    self.flush()

    def close(self) -> None:
        """Write what is waiting (what cannot be written stays in the spool) and stop."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            if self.pending:
                self.flush()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._migrated = False
        atexit.unregister(self.close)

    def _scrub_finding(self, finding: dict[str, Any]) -> dict[str, Any]:
        out = dict(finding)
        for key in ("message", "evidence", "text"):
            if isinstance(out.get(key), str):
                out[key] = self._scrub(out[key])
        return out

    # -- reading ----------------------------------------------------------------------
    def entries(self, since: date | datetime | None = None) -> list[dict[str, Any]]:
        """Stored entries (oldest first) with their feedback, on or after ``since``.

        What waits in the spool is written first when the database takes it.
        """
        from sqlalchemy import select

        from advisor.db import describe_error, entries, feedback

        with self._lock:
            if self.pending:
                self.flush()
            if self.path is not None and not self.path.exists():
                return []
            engine = self.engine()
            try:
                with engine.connect() as conn:
                    query = select(entries)
                    chosen = select(entries.c.uid)
                    if since is not None:
                        query = query.where(entries.c.created_at >= _utc(since))
                        chosen = chosen.where(entries.c.created_at >= _utc(since))
                    rows = conn.execute(query.order_by(entries.c.created_at, entries.c.id)).all()
                    fb: dict[str, list[dict[str, Any]]] = {}
                    for f in conn.execute(
                        select(feedback.c.entry_uid, feedback.c.rating, feedback.c.comment,
                               feedback.c.created_at)
                        .where(feedback.c.entry_uid.in_(chosen))
                        .order_by(feedback.c.id)
                    ):
                        fb.setdefault(f.entry_uid, []).append(
                            {
                                "rating": f.rating,
                                "comment": f.comment,
                                "created_at": _iso(f.created_at),
                            }
                        )
            except Exception as exc:
                raise describe_error(self.url, exc) from exc
        return [
            {
                "id": r.uid,
                "created_at": _iso(r.created_at),
                "question": r.question,
                "answer": r.answer,
                "codes": r.codes,
                "findings": r.findings,
                "ruleset": r.ruleset,
                "backend": r.backend,
                "model": r.model,
                "passage_ids": r.passage_ids,
                "timings_ms": r.timings,
                "path": r.path,
                "feedback": fb.get(r.uid, []),
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

