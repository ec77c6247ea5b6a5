"""The campaign journal: every recipient's state in SQLite, written ahead of its send.

States: pending -> sending -> sent | failed | ambiguous, plus invalid and duplicate, decided when
the recipients are loaded. A run killed at any moment (SIGKILL included) resumes from here:
`sending` rows may have gone out, so they become `ambiguous`, never re-sent unless asked.

Writes are grouped: every mark made during one event-loop turn is committed in one transaction
(WAL, synchronous=NORMAL: durable against a killed process), and `mark_sending` returns only
once its mark is committed. The token is never written here.

One process at a time: opening a journal takes an exclusive `flock` on `<journal>.lock` (the
kernel drops it when the process dies, SIGKILL included, so a resume never finds a stale lock);
a second process gets `JournalBusyError` naming the holder's pid and host. The journal and
its lock file hold phone numbers and API answers: they are created readable by their owner
only (0600; SQLite gives its -wal and -shm files the database's mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import socket
import sqlite3
import time
from collections.abc import Awaitable, Iterable, Iterator
from pathlib import Path

from .._bulk import BulkResult, Outcome
from .._recipients import NumberSet, mask_recipient, normalize_recipient
from ._delivery_rules import delivery_fields
from ._interface import (
    DUPLICATE_ERROR,
    FINAL_STATES,
    INTERRUPTED_ERROR,
    final_record,
    sent_message_id,
)
from ._sqlite_delivery import DeliveryRecords

_LOAD_BATCH = 5_000
#: Pending rows a loading INSERT writes (the rest of a batch go one by one): one statement for
#: many rows costs ~6k instructions a row less than an execution each (callgrind).
_ROWS_PER_INSERT = 100
_INSERT_PENDING = "INSERT OR IGNORE INTO recipients (idx, recipient, digits, state) VALUES "
_INSERT_PENDING_ROW = _INSERT_PENDING + "(?, ?, ?, 'pending')"
_INSERT_PENDING_ROWS = _INSERT_PENDING + ", ".join(["(?, ?, ?, 'pending')"] * _ROWS_PER_INSERT)
#: Write-ahead marks per UPDATE statement (`idx IN (...)`): one statement for a group's marks
#: costs ~7k instructions a mark less than one execution each (callgrind).
_MARKS_PER_STATEMENT = 64
_MARK_SQL = [
    "UPDATE recipients SET state = 'sending', runs = runs + 1 "
    f"WHERE state = 'pending' AND idx IN ({', '.join('?' * count)})"
    for count in range(_MARKS_PER_STATEMENT + 1)
]
# A final state's statements spell their NULLs: a None parameter costs sqlite3's adapter
# lookup (~3k instructions, callgrind), a constant nothing.
_SENT_SQL = (
    # The message id is written here, so the trigger that would parse it out of the answer
    # again does not fire.
    "UPDATE recipients SET state = 'sent', error = NULL, code = NULL, result = ?, "
    "message_id = COALESCE(?, message_id), updated = ? "
    "WHERE idx = ? AND state IN ('pending', 'sending')"
)
_NOT_SENT_SQL = (
    "UPDATE recipients SET state = ?, error = ?, code = ?, result = NULL, updated = ? "
    "WHERE idx = ? AND state IN ('pending', 'sending')"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recipients (
    idx        INTEGER PRIMARY KEY,
    recipient  TEXT NOT NULL,
    digits     TEXT,
    state      TEXT NOT NULL,
    error      TEXT,
    code       INTEGER,
    result     TEXT,
    runs       INTEGER NOT NULL DEFAULT 0,
    updated    REAL
);
CREATE INDEX IF NOT EXISTS recipients_digits ON recipients (digits);
"""


def _seen_key(digits: str) -> int:
    """`digits` as one integer that keeps its leading zeros apart ("091..." is not "91...")."""
    return int("1" + digits)


class CampaignMismatchError(ValueError):
    """The journal belongs to another campaign (other message or recipients file)."""


class JournalBusyError(RuntimeError):
    """Another process holds the journal: two runs on one journal would send twice."""


#: Mode of the files created for a journal: they hold phone numbers and API answers.
PRIVATE_FILE_MODE = 0o600


def lock_path(path: Path) -> Path:
    """The lock file beside journal `path`."""
    return path.with_name(path.name + ".lock")


def _hold_lock(path: Path) -> int:
    """Take the journal's lock for this process or raise `JournalBusyError`; returns its fd.

    The lock sits beside the journal's real path (symlinks resolved), so every name of one
    file takes the same lock; a hard-linked journal is refused (its other name would take
    another lock, and SQLite names the -wal file after the path).
    """
    with contextlib.suppress(FileNotFoundError):
        links = path.stat().st_nlink
        if links > 1:
            raise JournalBusyError(
                f"journal {path} has {links} hard links: another name could be in use by "
                "another campaign process; nothing was sent: keep one name (remove the others)"
            )
    lock = lock_path(path.resolve())
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(descriptor)
        raise JournalBusyError(
            f"journal {path} is in use by another campaign process ({holder}); "
            "nothing was sent: wait for it to finish, or stop it and run again"
        ) from None
    except BaseException:
        os.close(descriptor)
        raise
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
    return descriptor


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does it with the umask's 0644."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE))


class Journal(DeliveryRecords):
    """One campaign's durable state; `identity` ties it to its message and recipients file.

    Held by one process at a time (see the module docstring): `JournalBusyError` otherwise.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = _hold_lock(self.path)
        try:
            _create_private(self.path)
            real = self.path.resolve()  # one file, one lock, one -wal whatever its name
            self._db = sqlite3.connect(real, isolation_level=None, check_same_thread=False)
        except BaseException:
            os.close(self._lock)
            raise
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:  # the operator's other file: leave it as it is
            self._db.close()
            os.close(self._lock)
            if "not a database" not in str(exc):
                raise
            raise CampaignMismatchError(
                f"--journal {path} is not a campaign journal (not an SQLite file); "
                "give a new file name or the journal of this campaign"
            ) from None
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")  # a webhook receiver may share the file
        self._db.executescript(_SCHEMA)
        self._add_delivery_schema()
        self._sending: list[int] = []
        self._sent: list[tuple[str, str | None, float, int]] = []  # answer, id, when, row
        self._not_sent: list[tuple[str, str | None, int | None, float, int]] = []
        self._committed: asyncio.Future[None] | None = None
        self._row_of: dict[str, int] = {}  # digits -> idx of what pending() handed out
        self._handed_out: tuple[str, int] | None = None  # the last of them
        self._failure: BaseException | None = None  # a failed group commit stops the campaign

    def close(self) -> None:
        """Commit what is pending, close the database, let another process have it."""
        try:
            self.flush()
            self._db.close()
        finally:
            if self._lock >= 0:
                os.close(self._lock)  # releases the flock
                self._lock = -1

    # ------------------------------------------------------------ campaign identity

    def bind(self, identity: dict[str, str]) -> bool:
        """Tie a new journal to `identity`, or check an existing one; True when resuming.

        Raises `CampaignMismatchError` naming what differs.
        """
        stored = dict(self._db.execute("SELECT key, value FROM campaign").fetchall())
        if not stored:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO campaign (key, value) VALUES (?, ?)", sorted(identity.items())
                )
            return False
        differs = sorted(k for k in identity if stored.get(k) != identity[k])
        if differs:
            raise CampaignMismatchError(
                f"journal {self.path} belongs to another campaign: its {', '.join(differs)} "
                "differ(s) from this run's; use another --journal or the original inputs"
            )
        return True

    # ------------------------------------------------------------ loading recipients

    @property
    def loaded(self) -> bool:
        """Whether every recipient of the file is in the journal."""
        row = self._db.execute("SELECT value FROM campaign WHERE key = 'loaded'").fetchone()
        return row is not None

    def load(self, recipients: Iterable[str]) -> None:
        """Record every recipient as pending, invalid or duplicate (a number seen earlier in
        the file), in batches.

        Safe to repeat after a kill mid-load: rows already there are kept as they are, the
        numbers they hold still count as seen, and a load that an older version began is
        finished by marking its repeats in one statement.
        """
        start = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM recipients").fetchone()[0]
        seen = NumberSet()
        for (digits,) in self._db.execute(
            "SELECT digits FROM recipients WHERE digits IS NOT NULL ORDER BY idx"
        ):
            seen.add(_seen_key(digits))
        pending: list[tuple[int, str, str]] = []  # most rows: no state or error to bind
        others: list[tuple[int, str, str | None, str, str | None]] = []
        for idx, to in enumerate(recipients):
            if idx < start:
                continue
            try:
                digits = normalize_recipient(to)
            except ValueError as invalid:
                others.append((idx, to, None, "invalid", str(invalid)))
            else:
                if seen.add(_seen_key(digits)):
                    pending.append((idx, to, digits))
                else:
                    others.append((idx, to, digits, "duplicate", DUPLICATE_ERROR))
            if len(pending) + len(others) >= _LOAD_BATCH:
                self._insert(pending, others)
                pending, others = [], []
        self._insert(pending, others)
        with self._transaction():
            if start:  # rows an older version loaded were not checked for repeats as they came
                self._db.execute(
                    "UPDATE recipients SET state = 'duplicate', error = ? "
                    "WHERE state = 'pending' AND idx > (SELECT MIN(idx) FROM recipients "
                    "AS first WHERE first.digits = recipients.digits)",
                    (DUPLICATE_ERROR,),
                )
            self._db.execute("INSERT OR REPLACE INTO campaign VALUES ('loaded', '1')")

    def _insert(
        self,
        pending: list[tuple[int, str, str]],
        others: list[tuple[int, str, str | None, str, str | None]],
    ) -> None:
        whole = len(pending) - len(pending) % _ROWS_PER_INSERT
        with self._transaction():
            for first in range(0, whole, _ROWS_PER_INSERT):
                rows = pending[first : first + _ROWS_PER_INSERT]
                self._db.execute(_INSERT_PENDING_ROWS, list(itertools.chain.from_iterable(rows)))
            self._db.executemany(_INSERT_PENDING_ROW, pending[whole:])
            self._db.executemany(
                "INSERT OR IGNORE INTO recipients (idx, recipient, digits, state, error) "
                "VALUES (?, ?, ?, ?, ?)",
                others,
            )

    # ------------------------------------------------------------ resuming

    def settle_interrupted(self, *, resend_ambiguous: bool) -> int:
        """Turn `sending` rows of a killed run into `ambiguous` (or back to pending when
        `resend_ambiguous`); also re-queue old ambiguous rows when asked. Returns the count."""
        with self._transaction():
            if resend_ambiguous:
                cursor = self._db.execute(
                    "UPDATE recipients SET state = 'pending', error = NULL "
                    "WHERE state IN ('sending', 'ambiguous') AND delivery IS NULL"
                )
            else:
                cursor = self._db.execute(
                    "UPDATE recipients SET state = 'ambiguous', error = ? WHERE state = 'sending'",
                    (INTERRUPTED_ERROR,),
                )
        return cursor.rowcount

    def requeue_failed(self) -> int:
        """Put every `failed` recipient back to pending (never `ambiguous` ones); the count.

        `failed` means surely not delivered, so sending again cannot duplicate anything.
        """
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE recipients SET state = 'pending', error = NULL, code = NULL "
                "WHERE state = 'failed'"
            )
        return cursor.rowcount

    def pending(self, chunk: int = 1_000) -> Iterator[str]:
        """The recipients still to send, in file order, read in chunks (bounded memory)."""
        last = -1
        while True:
            rows = self._db.execute(
                "SELECT idx, recipient, digits FROM recipients WHERE state = 'pending' AND idx > ? "
                "ORDER BY idx LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                return
            for idx, recipient, digits in rows:
                last = idx
                self._row_of[digits] = idx  # marks then update by rowid, not by digits
                self._handed_out = (recipient, idx)  # its callback key is asked for next
                yield recipient

    def row_of(self, recipient: str) -> int | None:
        """The journal row of a recipient `pending()` handed out (for its callback key)."""
        last = self._handed_out
        if last is not None and last[0] == recipient:  # the usual case: no normalising again
            return last[1]
        try:
            return self._row_of.get(normalize_recipient(recipient))
        except ValueError:
            return None

    def counts(self) -> dict[str, int]:
        """How many recipients are in each state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))

    def failures(self) -> list[tuple[str, int | None, str, int]]:
        """(state, code, error, count) for every failed, ambiguous or invalid group."""
        # A bad number's error starts "recipient '<masked>': <reason>"; group on the reason.
        reason = (
            "CASE WHEN error LIKE 'recipient ''%' AND instr(error, ': ') > 0 "
            "THEN substr(error, instr(error, ': ') + 2) ELSE error END"
        )
        return self._db.execute(
            f"SELECT state, code, {reason} AS reason, COUNT(*) FROM recipients "
            "WHERE state IN ('failed', 'ambiguous', 'invalid', 'duplicate') "
            "GROUP BY state, code, reason ORDER BY COUNT(*) DESC"
        ).fetchall()

    def results(self) -> Iterator[BulkResult]:
        """Every recipient's final result, in file order, in the reference's shape, plus the
        delivery fields (`delivery`, `delivery_at`, `failure_code`, `failure_title`) when known."""
        query = (
            "SELECT recipient, state, error, result, delivery, delivery_at, failure_code, "
            f"failure_title FROM recipients WHERE state IN {FINAL_STATES} ORDER BY idx"
        )
        for recipient, state, error, result, *delivery in self._db.execute(query):
            row: BulkResult
            if state == "sent":
                row = {"recipient": recipient, "success": True, "result": json.loads(result)}
            else:
                row = {"recipient": recipient, "success": False, "error": error}
            if delivery[0] is not None:
                row.update(delivery_fields(*delivery))  # type: ignore[typeddict-item]
            yield row

    # ------------------------------------------------------------ write-ahead marks

    def mark_sending(self, digits: str) -> Awaitable[None]:
        """Mark `digits` as being sent; the awaitable is done once the mark is committed.

        Raises when the journal cannot be written (then nothing more is sent), or when the
        recipient is not pending in this journal (a send without its mark is never made).
        A plain method handing out the group's commit, not a coroutine: one coroutine less
        per send on the hot path (the await is the same).
        """
        if self._failure is not None:
            raise self._failure
        row = self._row_of.get(digits)
        if row is None:
            row = self._find_row(digits)
            if row < 0:
                raise LookupError(
                    f"recipient {mask_recipient(digits)} is not pending in {self.path}"
                )
        self._sending.append(row)
        return self._commit_soon()

    def record(self, outcome: Outcome) -> None:
        """Queue `outcome` as the recipient's state (committed with the next group).

        Cancelled before a retry ("not_sent") goes back to pending: it surely did not deliver.
        """
        record = final_record(outcome)
        if record is None or outcome.digits is None:
            return
        state, error, result = record
        row = self._row_of.pop(outcome.digits, None)
        if row is None:
            row = self._find_row(outcome.digits)
        if result is not None:
            self._sent.append((result, sent_message_id(outcome), time.time(), row))
        else:
            self._not_sent.append((state, error, outcome.code, time.time(), row))
        if self._committed is None:  # else this group's commit is already due
            self._commit_soon()

    def _find_row(self, digits: str) -> int:
        """The row of `digits` when `pending()` did not hand it out in this run, or -1."""
        found = self._db.execute(
            "SELECT idx FROM recipients WHERE digits = ? AND state IN ('pending', 'sending')",
            (digits,),
        ).fetchone()
        return int(found[0]) if found else -1

    def _commit_soon(self) -> asyncio.Future[None]:
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._flush_from_loop)
        return self._committed

    def _flush_from_loop(self) -> None:
        # A failure is kept in self._failure and on the awaited future: it reaches the
        # campaign through the next mark_sending, not the event loop's error log.
        with contextlib.suppress(Exception):
            self.flush()

    def flush(self) -> None:
        """Commit every queued mark and final state in one transaction."""
        sending, sent, not_sent = self._sending, self._sent, self._not_sent
        committed = self._committed
        self._sending, self._sent, self._not_sent, self._committed = [], [], [], None
        if sending or sent or not_sent:
            try:
                with self._transaction():
                    for first in range(0, len(sending), _MARKS_PER_STATEMENT):
                        rows = sending[first : first + _MARKS_PER_STATEMENT]
                        self._db.execute(_MARK_SQL[len(rows)], rows)
                    if sent:
                        self._db.executemany(_SENT_SQL, sent)
                    if not_sent:
                        self._db.executemany(_NOT_SENT_SQL, not_sent)
            except Exception as exc:
                self._failure = exc
                if committed is not None and not committed.done():
                    committed.set_exception(exc)
                    committed.exception()  # retrieved: the waiters, if any, raise it
                raise
        if committed is not None and not committed.done():
            committed.set_result(None)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
