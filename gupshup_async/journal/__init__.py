"""The campaign journal: every recipient's durable state, written ahead of its send.

One interface (`_interface.SendJournal`), one backend per module: `sqlite.py` (one machine, the
default) and `postgres.py` (campaigns shared by worker processes; needs the `postgres` extra,
imported only when used).
"""

from ._interface import DUPLICATE_ERROR, FINAL_STATES, INTERRUPTED_ERROR, SendJournal
from .sqlite import CampaignMismatchError, Journal, JournalBusyError

__all__ = [
    "DUPLICATE_ERROR",
    "FINAL_STATES",
    "INTERRUPTED_ERROR",
    "CampaignMismatchError",
    "Journal",
    "JournalBusyError",
    "SendJournal",
]
