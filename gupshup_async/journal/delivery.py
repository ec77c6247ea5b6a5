"""DeliveryJournal: the delivery side of a campaign journal, for processes that never send.

The webhook receiver and `report` open the campaign's journal file beside a running campaign.
They only store webhook events and move delivery statuses forward, which cannot send anything
twice, so they open it on their own SQLite connection (WAL, waiting on the campaign's write
lock for up to `BUSY_TIMEOUT_MS`) and not through `Journal`, which is the one sending process's
handle on the file.

`DeliveryJournal.existing` opens only a file that already is a campaign journal (`report`): any
other file is refused after reading it, never written, and no -wal or -shm file is left beside it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import TracebackType

from ._sqlite_delivery import DeliveryRecords
from .sqlite import _SCHEMA, CampaignMismatchError, _Transaction

#: How long a write waits for the campaign's transaction to end (milliseconds).
BUSY_TIMEOUT_MS = 10_000
#: The journal holds phone numbers and API answers: a file made here is its owner's only.
_PRIVATE_FILE_MODE = 0o600
#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def check_journal_file(path: Path, *, named: str = "journal") -> None:
    """Raise `CampaignMismatchError` (its line starts with `named` and the path) unless `path`
    is a campaign journal (an SQLite file with a `recipients` table); `OSError` when it cannot
    be read. Reads, never writes: without a -wal
    file beside it (no process has it open) it is read as immutable, which makes no -wal or
    -shm; with one, read-only through the live -wal, so a running campaign's table is seen."""
    with path.open("rb") as raw:
        head = raw.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        what = "an empty file" if not head else "not an SQLite file"
        raise CampaignMismatchError(f"{named} {path} is not a campaign journal ({what})")
    live = path.with_name(path.name + "-wal").exists()
    uri = f"{path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"
    db = sqlite3.connect(uri, uri=True)
    try:
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recipients'"
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        if "malformed" not in str(exc) and "not a database" not in str(exc):
            raise
        found, what = None, "a damaged SQLite file"
    else:
        what = "an SQLite database without a recipients table"
    finally:
        db.close()
    if found is None:
        raise CampaignMismatchError(f"{named} {path} is not a campaign journal ({what})")


class DeliveryJournal(DeliveryRecords):
    """A campaign journal opened to store webhook events and read the delivery funnel."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE_MODE))
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
        self._add_delivery_schema()

    @classmethod
    def existing(cls, path: str | Path) -> DeliveryJournal:
        """Open `path` only if it is a campaign journal already (`check_journal_file`)."""
        check_journal_file(Path(path))
        return cls(path)

    def __repr__(self) -> str:
        return f"DeliveryJournal({str(self.path)!r})"

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        """Close the connection (every write here is committed as it is made)."""
        self._db.close()

    def __enter__(self) -> DeliveryJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
