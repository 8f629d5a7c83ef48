"""Streamed responses that end with their client: `ClosingStream`, the StreamingResponse every long stream uses
(the run page's Server-Sent Events, the Generate box's NDJSON).

Starlette leaves a streaming body's async generator suspended when the response ends early: a client that goes
away cancels the send in progress (ASGI 2.3 servers), or makes it raise (2.4), and the generator is closed only
when it is garbage-collected or the server shuts down, holding what it holds (a model, a sampler) until then.
"""

from __future__ import annotations

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingStream(StreamingResponse):
    """A StreamingResponse that closes its body however the response ends, so the body's `finally` runs at once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
