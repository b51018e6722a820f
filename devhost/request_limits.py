"""What one client may cost a local server (the host, the telemetry intake): a body size, a time to send it.

Anyone on the machine can connect to 127.0.0.1, so neither the size a request declares nor the pace at which it
arrives is trusted: a body is read up to its limit and no further, within a deadline, and a connection must send
its request's headers within the same deadline, or it is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("devhost.http")
DEFAULT_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5  # an idle connection between requests (uvicorn's default, stated)


@dataclass(frozen=True)
class RequestLimits:
    body_bytes: int
    timeout_s: float = DEFAULT_TIMEOUT_S


class BodyRejected(Exception):
    """The body was not read: too large, too slow, or its sender went away."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> Response:
        return JSONResponse({"error": str(self)}, status_code=self.status)


async def read_body(request: Request, limit: int, timeout_s: float,
                    headers: Mapping[str, str] | None = None) -> bytes:
    """The request's body, refused before reading when its declared length is over ``limit``, and read no further
    than ``limit`` when it streams (chunked) or arrives slower than ``timeout_s`` allows. ``headers``: the
    request's, by lower-case name, when the caller has them already. Read straight from the ASGI messages: this
    is on every scoring request's path."""
    declared = (request.headers if headers is None else headers).get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyRejected(413, f"the body is larger than {limit:,} bytes" if declared.isdigit()
                           else "Content-Length is not a number")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyRejected(413, f"the body is larger than {limit:,} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise BodyRejected(408, f"the body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        # One line (the path quoted: a decoded %0a is a line break): a client gone mid-body is no fault of ours.
        log.info("%s %.200r: the client went away before its body arrived", request.method, request.url.path)
        raise BodyRejected(400, "the client went away") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with one more timer: from the moment a connection opens, or a new request on it
    begins, its headers must arrive within ``timeout_s``, and after an answer given before its body was read
    (a 401, a 413), the rest of that body must too; otherwise the connection is closed. uvicorn itself only
    times out idle keep-alive connections."""

    timeout_s = DEFAULT_TIMEOUT_S
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()  # the app reads the body under its own deadline (read_body)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Answered before the body was read: the body is discarded as it comes, but it must come in time. The
        # connection is not closed at once, so that a client still sending can read the answer.
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(timeout_s: float) -> type[DeadlineProtocol]:
    """The protocol class for a server whose clients get ``timeout_s`` (uvicorn takes a class, not an instance)."""

    class Timed(DeadlineProtocol):
        pass

    Timed.timeout_s = timeout_s
    return Timed
