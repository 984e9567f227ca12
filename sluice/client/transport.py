"""The two transports to a gateway: :func:`post` (HTTP) and :func:`open_socket` (WebSocket),
with :func:`produce_frame` and :func:`converse` on top. Every failure becomes
:class:`~sluice.client.errors.GatewayClientError` with a message fit for a command line: what
went wrong, where, and the gateway's own ``detail`` when it answered a problem (RFC 9457).
Messages name the base URL, never a URL with its query, so a token given as ``credentials=`` is
never printed."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from typing import Any, Final

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from sluice.client.errors import GatewayClientError
from sluice.client.messages import ChatFrame, chat_frame, produce_request
from sluice.client.target import Target
from sluice.protocol import GatewayKind

__all__ = ["close_problem", "converse", "open_socket", "post", "produce_frame"]

_MAX_FRAME: Final = 32 * 1024 * 1024
_CLOSE_NAMES: Final = {
    1000: "normal closure",
    1001: "going away",
    1003: "unsupported data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
}


def _unreachable(target: Target, error: BaseException) -> GatewayClientError:
    """No connection: the operating system's reason (found down the cause chain) and a hint."""
    reason = ""
    cause: BaseException | None = error
    while cause is not None and not reason:
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            # asyncio's refusal reads "Connect call failed (addr)": the errno says it better.
            refused = cause.errno == errno.ECONNREFUSED
            reason = f" ({os.strerror(errno.ECONNREFUSED) if refused else cause.strerror})"
            reason = reason.lower()
        cause = cause.__cause__ or cause.__context__
    return GatewayClientError(
        f"no gateway at {target.base_url}{reason}: is `sluice run` running? "
        "(-u/--url names another address)"
    )


def _problem(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayClientError:
    """The error for a non-2xx answer: the problem's title and detail when it is one."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    detail = ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        phrase = str(data.get("title") or phrase)
        detail = str(data.get("detail") or "")
    elif body.strip():
        detail = body.decode("utf-8", "replace").strip()[:300]
    message = f"the gateway answered {status} {phrase}"
    if detail:
        message += f": {detail}"
    retry = headers.get("retry-after")
    if retry:
        message += f" (retry after {retry} s)"
    return GatewayClientError(message, status=status)


async def post(
    target: Target,
    kind: GatewayKind,
    body: Mapping[str, Any],
    *,
    answer_within: float,
    connect_timeout: float,
) -> Any:
    """POST ``body`` as JSON to the HTTP endpoint of ``kind``; the JSON answer when 2xx."""
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(answer_within, connect=connect_timeout)
        ) as c:
            response = await c.post(
                target.http_url(kind),
                params=httpx.QueryParams(target.query()),
                json=body,
                headers=target.headers(),
            )
    except httpx.ConnectTimeout as error:
        raise GatewayClientError(
            f"no connection to the gateway at {target.base_url} within {connect_timeout:g} s"
        ) from error
    except httpx.ConnectError as error:
        raise _unreachable(target, error) from error
    except httpx.TimeoutException as error:
        raise GatewayClientError(
            f"no answer from the gateway at {target.base_url} within {answer_within:g} s"
        ) from error
    except httpx.HTTPError as error:
        raise GatewayClientError(
            f"the request to the gateway at {target.base_url} failed: {error}"
        ) from error
    if not response.is_success:
        raise _problem(response.status_code, response.content, response.headers)
    try:
        return response.json()
    except ValueError as error:
        raise GatewayClientError(
            f"the gateway answered {response.status_code} with a body that is not JSON"
        ) from error


@contextlib.asynccontextmanager
async def open_socket(
    target: Target, kind: GatewayKind, *, connect_timeout: float
) -> AsyncIterator[ClientConnection]:
    """The WebSocket of ``kind``, closed when the block ends; a refused upgrade is the
    gateway's problem detail."""
    try:
        socket = await connect(
            target.ws_url(kind),
            additional_headers=target.headers(),
            open_timeout=connect_timeout,
            max_size=_MAX_FRAME,
        )
    except InvalidStatus as error:
        response = error.response
        raise _problem(
            response.status_code,
            bytes(response.body or b""),
            {k.lower(): v for k, v in response.headers.raw_items()},
        ) from None
    except InvalidURI:
        raise GatewayClientError(f"not a WebSocket address: {target.base_url}") from None
    except InvalidHandshake as error:
        raise GatewayClientError(
            f"the WebSocket handshake with the gateway at {target.base_url} failed: {error}"
        ) from None
    except TimeoutError:
        raise GatewayClientError(
            f"the gateway at {target.base_url} did not open the WebSocket within "
            f"{connect_timeout:g} s"
        ) from None
    except OSError as error:
        raise _unreachable(target, error) from None
    try:
        yield socket
    finally:
        await socket.close()


async def produce_frame(
    target: Target, request: Mapping[str, Any], *, connect_timeout: float, answer_within: float = 60
) -> dict[str, Any]:
    """Send ``request`` as one frame on the produce socket; the gateway's answer
    (``{"status", "reason"}``), whatever its status."""
    async with open_socket(target, "produce", connect_timeout=connect_timeout) as socket:
        await socket.send(json.dumps(request))
        try:
            async with asyncio.timeout(answer_within):
                frame = await socket.recv()
        except ConnectionClosed as error:
            problem = close_problem(error) or "the gateway closed the socket before answering"
            raise GatewayClientError(problem) from None
        except TimeoutError:
            raise GatewayClientError(
                f"no answer from the gateway at {target.base_url} within {answer_within:g} s"
            ) from None
    try:
        answer = json.loads(frame)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise GatewayClientError(f"unexpected frame from the gateway: {str(frame)[:200]!r}")
    return answer


def close_problem(error: ConnectionClosed) -> str | None:
    """What an abnormal end of a socket was, or None for a normal closure (1000)."""
    close = error.rcvd
    if close is None:
        return "the connection to the gateway was lost (no close frame)"
    if close.code == 1000:
        return None
    name = _CLOSE_NAMES.get(close.code, "")
    what = f"{close.code} {name}".strip()
    return f"the gateway closed the socket: {what}" + (f": {close.reason}" if close.reason else "")


async def converse(
    socket: ClientConnection,
    questions: asyncio.Queue[str | None],
    *,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    sent: int = 0,
    patience: float = 30.0,
) -> AsyncIterator[tuple[ChatFrame, str | bytes]]:
    """Send every question of ``questions`` (a string value; blank ones skipped, None ends them)
    on a chat socket and yield each frame the gateway sends, read and raw.

    Ends once the questions ended and each one (``sent`` were sent before) was answered or
    refused; :class:`GatewayClientError` when that takes ``patience`` seconds without a frame.
    :class:`~websockets.exceptions.ConnectionClosed` when the socket ends first.
    """
    waiting, ended = sent, False
    receive = asyncio.ensure_future(socket.recv())
    read = asyncio.ensure_future(questions.get())
    try:
        while not (ended and waiting <= 0):
            done, _ = await asyncio.wait(
                {receive} if ended else {receive, read},
                timeout=patience if ended else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                raise GatewayClientError(f"no answer within {patience:g} s")
            if read in done:
                line = read.result()
                ended = line is None
                if line is not None and line.strip():
                    await socket.send(json.dumps(produce_request(line, key, headers)))
                    waiting += 1
                if not ended:
                    read = asyncio.ensure_future(questions.get())
            if receive in done:
                frame = receive.result()
                chat = chat_frame(frame)
                waiting -= chat.kind in ("answer", "refused")
                yield chat, frame
                receive = asyncio.ensure_future(socket.recv())
    finally:
        receive.cancel()
        read.cancel()
