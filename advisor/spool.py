"""A bounded on-disk queue of audit records waiting for the database.

One JSON file per record, written to a temporary name, synced and renamed into place, so a
crash leaves either the whole record or none of it. Names sort in the order records were
queued. What is queued is already masked: the spool never holds more than the database would.

Several processes may share a spool folder (the app and an ``advisor ask`` on the same data
dir): every record carries its own id and the database ignores an id it already has, so a
record replayed twice is stored once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("advisor.audit")

_COUNTER = itertools.count()


class Spool:
    """Records waiting in ``folder``, at most ``max_records`` (the oldest dropped first)."""

    def __init__(self, folder: Path, max_records: int) -> None:
        """Nothing is created until the first record is put."""
        self.folder = Path(folder)
        self.max_records = max(1, max_records)

    def _files(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.json"))
        except OSError:
            return []

    def __len__(self) -> int:
        """Records waiting."""
        return len(self._files())

    def put(self, record: dict[str, Any]) -> None:
        """Queue a record durably; OSError when the folder cannot be written."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = self._files()
        over = len(files) - self.max_records + 1
        for old in files[: max(0, over)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
            log.error(
                "audit spool full (%d records in %s): the oldest record was dropped",
                self.max_records, self.folder,
            )
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_COUNTER):08d}"
        tmp = self.folder / f".{name}.tmp"
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.folder / f"{name}.json")
        with contextlib.suppress(OSError):  # the rename itself made durable
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def items(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Waiting records, oldest first; an unreadable file is set aside as ``*.bad``."""
        for path in self._files():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:  # another process replayed it
                continue
            except (OSError, ValueError) as exc:
                log.error("audit spool: unreadable record %s set aside (%s)", path.name, exc)
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
                continue
            yield path, record

    def contains(self, kind: str, uid: str) -> bool:
        """Whether a record of ``kind`` with this id is waiting."""
        return any(r.get("kind") == kind and r.get("uid") == uid for _, r in self.items())

    @staticmethod
    def remove(path: Path) -> None:
        """Forget a record once the database has it."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
