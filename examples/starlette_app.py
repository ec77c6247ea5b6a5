"""A web app that awaits a send inside a request, over one client made at start-up.

    pip install 'gupshup-async[mock]' starlette uvicorn
    GUPSHUP_APP_ID=... GUPSHUP_APP_TOKEN=... uvicorn examples.starlette_app:app
    curl -X POST localhost:8000/notify -d '{"to": "+91 98765 43210", "text": "Your order shipped"}'

The client (and its connection pool) lives as long as the app: created in the lifespan,
closed at shut-down. Bad input is a 422 before any request to Gupshup; throttling is a 503.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import gupshup_async as g


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with g.AsyncGupshupClient(
        os.environ.get("GUPSHUP_APP_ID", "mock-app"),
        os.environ.get("GUPSHUP_APP_TOKEN", "mock-token"),
        base_url=os.environ.get("GUPSHUP_BASE_URL", "https://partner.gupshup.io"),
        max_retries=1,  # a web request should not wait long
    ) as client:
        app.state.gupshup = client
        yield


async def notify(request: Request) -> JSONResponse:
    data = await request.json()
    client: g.AsyncGupshupClient = request.app.state.gupshup
    try:
        result = await client.send(data.get("to", ""), g.Text(body=data.get("text", "")))
    except ValueError as bad_input:  # a bad number or message: nothing was sent
        return JSONResponse({"error": str(bad_input)}, status_code=422)
    except g.RateLimitError:
        return JSONResponse({"error": "busy, try again"}, status_code=503)
    except g.GupshupError as failure:
        return JSONResponse(
            {"error": str(failure), "may_have_sent": failure.ambiguous}, status_code=502
        )
    return JSONResponse({"message_id": result.message_id})


app = Starlette(routes=[Route("/notify", notify, methods=["POST"])], lifespan=lifespan)
