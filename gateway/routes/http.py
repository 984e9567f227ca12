"""What the HTTP routes share: the authenticated call of the current request, its body within
the size limit, and JSON answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from quart import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.call import GatewayCall
from gateway.errors import PayloadTooLarge
from gateway.runtime import GatewayRuntime
from gateway.settings import GatewaySettings
from sluice.media import JSON_CONTENT_TYPE

__all__ = ["authenticated", "json_response", "read_body"]


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), content_type=JSON_CONTENT_TYPE
    )


async def read_body(settings: GatewaySettings) -> bytes:
    """The request body; 413 when it is larger than ``max_body_bytes``."""
    limit = settings.max_body_bytes
    too_large = PayloadTooLarge(f"the request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        data = await request.get_data(cache=False, as_text=False)
    except RequestEntityTooLarge as error:
        raise too_large from error
    body = data.encode("utf-8") if isinstance(data, str) else data
    if len(body) > limit:
        raise too_large
    return body


async def authenticated(
    runtime: GatewayRuntime, kind: str, tenant: str, application: str, gateway: str
) -> GatewayCall:
    """The call of the current HTTP request to a gateway of type ``kind``, with its caller."""
    call = runtime.call(kind, tenant, application, gateway)
    return await runtime.authenticate(
        call,
        client=runtime.client_of(request.remote_addr, request.headers),
        authorization=request.headers.get("Authorization"),
    )
