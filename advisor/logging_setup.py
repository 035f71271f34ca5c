"""Logging for the advisor with PHI masked in every record of its loggers.

A filter on a logger does not see records of its child loggers, and handlers come and go
(the UI's, pytest's), so masking is done where records are made: :func:`install_phi_masking`
wraps the log-record factory, and records of the advisor's loggers leave it with their
message already masked. :class:`PhiFilter` does the same for a single handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from advisor.privacy import scrub

__all__ = [
    "ADVISOR_LOGGERS",
    "LOG_FORMAT",
    "PhiFilter",
    "install_phi_masking",
    "mask_record",
    "setup_logging",
]

ADVISOR_LOGGERS: tuple[str, ...] = ("advisor", "guardrails", "knowledge", "app")

# The masker's own records hold no text by design; masking them would recurse into it.
_NEVER_MASKED = "advisor.privacy"

_installed: tuple[str, ...] | None = None
_install_lock = threading.Lock()
_busy = threading.local()


def mask_record(record: logging.LogRecord, scrubber: Callable[[str], str] = scrub) -> None:
    """Replace the record's message (and formatted traceback) with a masked copy, in place."""
    if record.name == _NEVER_MASKED or getattr(_busy, "active", False):
        return
    _busy.active = True
    try:
        _mask(record, scrubber)
    finally:
        _busy.active = False


def _mask(record: logging.LogRecord, scrubber: Callable[[str], str]) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep its parts, masked, rather than the record
        message = f"{record.msg} {record.args}"
    record.msg = scrubber(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrubber(record.exc_text)
    if record.stack_info:
        record.stack_info = scrubber(record.stack_info)


class PhiFilter(logging.Filter):
    """A handler filter that masks PHI in every record it passes (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always keep it."""
        if not getattr(record, "_phi_masked", False):
            mask_record(record)
            record._phi_masked = True
        return True


def install_phi_masking(names: Iterable[str] = ADVISOR_LOGGERS) -> None:
    """Mask PHI in all records of the named loggers and their children (idempotent)."""
    global _installed
    prefixes = tuple(names)
    with _install_lock:
        if _installed is not None:
            _installed = tuple(dict.fromkeys(_installed + prefixes))
            return
        _installed = prefixes
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            covered = _installed or ()
            if any(record.name == p or record.name.startswith(p + ".") for p in covered):
                mask_record(record)
                record._phi_masked = True
            return record

        logging.setLogRecordFactory(factory)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO, fmt: str = LOG_FORMAT) -> None:
    """Configure the log (stderr) with PHI masking on the advisor's loggers.

    Called first thing by the `advisor` command and by the web app, before any question
    is read, so no record of theirs can carry a name, date of birth or number unmasked.
    """
    install_phi_masking()
    logging.basicConfig(level=level, format=fmt)
