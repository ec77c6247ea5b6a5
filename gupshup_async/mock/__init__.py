"""The embedded mock Gupshup server: the default target of the demo, benchmarks and tests.

Three ways to run it: `async with MockGupshupServer(...) as mock` on a loopback port,
`mock_transport(MockGupshupApp(...))` in-process, and `gupshup-async mock` from a shell.
Serving on a port needs the `mock` extra (uvicorn).
"""

from ._app import ConnectionDroppedError, MockGupshupApp, TokenBucket
from ._delivery import FAILURE_TITLES, DeliveryPlan, WebhookDispatcher
from ._faults import FAULT_KINDS, RECORDED_FAULTS, FaultPlan
from ._recorder import AcceptedMessage, Recorder
from ._server import DEFAULT_APP_ID, DEFAULT_TOKEN, MockGupshupServer, mock_transport
from ._validation import check_payload

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_TOKEN",
    "FAILURE_TITLES",
    "FAULT_KINDS",
    "RECORDED_FAULTS",
    "AcceptedMessage",
    "ConnectionDroppedError",
    "DeliveryPlan",
    "FaultPlan",
    "MockGupshupApp",
    "MockGupshupServer",
    "Recorder",
    "TokenBucket",
    "WebhookDispatcher",
    "check_payload",
    "mock_transport",
]
