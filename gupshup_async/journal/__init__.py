"""The campaign journal: every recipient's durable state, written ahead of its send.

One interface, one backend per module: `sqlite.py` (one machine, the default).
"""

from .sqlite import (
    DUPLICATE_ERROR,
    FINAL_STATES,
    CampaignMismatchError,
    Journal,
    JournalBusyError,
)

__all__ = [
    "DUPLICATE_ERROR",
    "FINAL_STATES",
    "CampaignMismatchError",
    "Journal",
    "JournalBusyError",
]
