"""Phone-number normalisation: what the API's `to` field accepts, and masking for logs."""

from __future__ import annotations

from ._errors import InvalidRecipientError

#: Shortest and longest number with its country code (E.164 allows 15 digits).
MIN_DIGITS = 7
MAX_DIGITS = 15

_SEPARATORS = str.maketrans("", "", "+ -()")


def normalize_recipient(to: str) -> str:
    """Return `to` as bare ASCII digits, or raise `InvalidRecipientError` naming the rule broken.

    `+`, spaces, `-`, `(` and `)` are dropped; anything else (letters, other scripts' digits)
    is refused rather than guessed at.
    """
    if not isinstance(to, str):
        raise InvalidRecipientError(f"recipient must be a string, not {type(to).__name__}")
    digits = to.translate(_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidRecipientError(
            f"recipient {mask_recipient(to)!r}: only digits, '+', spaces, '-' and '()' are allowed"
        )
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidRecipientError(
            f"recipient {mask_recipient(to)!r}: must have {MIN_DIGITS}-{MAX_DIGITS} digits "
            f"with the country code, got {len(digits)}"
        )
    return digits


def mask_recipient(to: str) -> str:
    """Keep the first two and last two characters, so logs can correlate without exposing."""
    if len(to) <= 4:
        return "*" * len(to)
    return f"{to[:2]}{'*' * (len(to) - 4)}{to[-2:]}"
