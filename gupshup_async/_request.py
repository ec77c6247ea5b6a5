"""`request_from_wire`: a whole v3 request body read back into what `send()` takes.

The body's message goes through `message_from_wire`; what stands around it (`to`, a reply's
`context`, Meta's `biz_opaque_callback_data`) is checked as `send()` checks it and given back,
never dropped: reading keeps every field or refuses it with a `ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._client import check_callback_data
from ._message_base import strict_keys
from ._messages import Message, message_from_wire

_CALLBACK = "biz_opaque_callback_data"


class _RequestFields(NamedTuple):
    to: str
    message: Message
    reply_to: str | None


class WireRequest(_RequestFields):
    """A request body read back; unpacks as `(to, message, reply_to)`, as it always has.

    `biz_opaque_callback_data` (1-512 characters, or None) stands beside the three rather
    than in them, so code that unpacks three keeps working. It takes part in equality and
    hashing: a request that carries it equals no plain 3-tuple, nor a request without it.
    Pass it on: `send(r.to, r.message, reply_to=r.reply_to,
    biz_opaque_callback_data=r.biz_opaque_callback_data)`.
    """

    _callback_data: str | None = None  # _make() and unpickling start from the default

    def __new__(
        cls,
        to: str,
        message: Message,
        reply_to: str | None = None,
        *,
        biz_opaque_callback_data: str | None = None,
    ) -> WireRequest:
        if biz_opaque_callback_data is not None:
            check_callback_data(biz_opaque_callback_data)
        request = super().__new__(cls, to, message, reply_to)
        request._callback_data = biz_opaque_callback_data
        return request

    @property
    def biz_opaque_callback_data(self) -> str | None:
        """The body's `biz_opaque_callback_data`, echoed in the message's status webhooks."""
        return self._callback_data

    def _replace(self, **changes: Any) -> WireRequest:
        callback = changes.pop(_CALLBACK, self._callback_data)
        to, message, reply_to = super()._replace(**changes)
        return WireRequest(to, message, reply_to, biz_opaque_callback_data=callback)

    def _asdict(self) -> dict[str, Any]:
        return {**super()._asdict(), _CALLBACK: self._callback_data}

    def _key(self) -> tuple[str, Message, str | None, str | None]:
        return (self.to, self.message, self.reply_to, self._callback_data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WireRequest):
            return self._key() == other._key()
        if isinstance(other, tuple):
            return self._callback_data is None and tuple(self) == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:  # tuple's own __ne__ would ignore the callback
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(tuple(self)) if self._callback_data is None else hash(self._key())

    def __repr__(self) -> str:
        return (
            f"WireRequest(to={self.to!r}, message={self.message!r}, reply_to={self.reply_to!r}, "
            f"biz_opaque_callback_data={self._callback_data!r})"
        )


def request_from_wire(body: Mapping[str, Any]) -> WireRequest:
    """Read a whole v3 request body, as in Meta's docs: `(to, message, reply_to)`.

    `to` is the number as written (pass it to `send`, which normalises it); `reply_to` is
    `context.message_id`, or None; the result's `biz_opaque_callback_data` is the body's
    (checked as `send()` checks it: 1-512 characters), or None. Raises `ValueError` as
    `message_from_wire` does.
    """
    if not isinstance(body, Mapping):
        raise ValueError(f"a request body must be a JSON object, got {type(body).__name__}")
    fields = dict(body)
    if "to" not in fields:
        raise ValueError("missing 'to'")
    reply_to: str | None = None
    if "context" in fields:
        context = strict_keys(fields.pop("context"), {"message_id"}, "context")
        reply_to = context.get("message_id")
        if not isinstance(reply_to, str) or not reply_to:
            raise ValueError("context.message_id must be a non-empty string")
    callback: str | None = None
    if _CALLBACK in fields:
        callback = fields.pop(_CALLBACK)
        check_callback_data(callback)  # JSON: refuses a number, null, an empty string
    message = message_from_wire(fields)
    return WireRequest(str(fields["to"]), message, reply_to, biz_opaque_callback_data=callback)
