"""The exception tree of the gateway.

Every error carries the HTTP ``status`` it answers with and a ``detail`` for the client (the
``detail`` of the RFC 9457 problem, or the reason of a WebSocket answer). Each class also derives
from the builtin it most resembles, so code outside the gateway can catch either.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from sluice.errors import SluiceError

__all__ = [
    "BadGateway",
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "GatewayTimeout",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]


class GatewayError(SluiceError):
    """Root of the gateway's errors: a request that cannot be served, and why."""

    status: ClassVar[int] = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def title(self) -> str:
        """The standard reason phrase of ``status`` (``Bad Request``...)."""
        return HTTPStatus(self.status).phrase


class BadRequest(GatewayError, ValueError):
    """The request is malformed: query, body, headers or options (400)."""

    status = HTTPStatus.BAD_REQUEST


class Unauthorized(GatewayError, PermissionError):
    """Credentials are missing or were rejected (401).

    ``invalid_token`` is False when no credentials were given at all: the ``WWW-Authenticate``
    challenge then carries no error (RFC 6750 section 3.1).
    """

    status = HTTPStatus.UNAUTHORIZED

    def __init__(self, detail: str, *, invalid_token: bool = True) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of the answer."""
        return 'Bearer error="invalid_token"' if self.invalid_token else "Bearer"


class Forbidden(GatewayError, PermissionError):
    """The caller is known but not allowed here, e.g. a browser Origin not allowed (403)."""

    status = HTTPStatus.FORBIDDEN


class NotFound(GatewayError, LookupError):
    """No such tenant, application or gateway of that type (404)."""

    status = HTTPStatus.NOT_FOUND


class PayloadTooLarge(GatewayError, ValueError):
    """The request body is above the configured limit (413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(GatewayError, ValueError):
    """The request body has a Content-Type the gateway does not read (415).

    ``accepted`` are the media types it does read, sent as ``Accept-Post`` (RFC 9110 §15.5.16
    asks a 415 to say what would be accepted).
    """

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE

    def __init__(self, detail: str, *, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.accepted = accepted


class Unavailable(GatewayError, RuntimeError):
    """The gateway cannot serve now (Kafka did not acknowledge, too many pending requests) (503).

    ``retry_after`` is the number of seconds a client should wait, sent as ``Retry-After``.
    """

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyRequests(GatewayError, RuntimeError):
    """The client is over a rate limit, e.g. too many failed authentications (429).

    ``retry_after`` is the number of seconds it should wait, sent as ``Retry-After``.
    """

    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class GatewayTimeout(GatewayError, TimeoutError):
    """A service gateway got no reply within its timeout (504)."""

    status = HTTPStatus.GATEWAY_TIMEOUT


class MethodNotAllowed(GatewayError, ValueError):
    """A method the gateway does not serve (405); ``allow`` lists the ones it does."""

    status = HTTPStatus.METHOD_NOT_ALLOWED

    def __init__(self, detail: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.allow = allow


class BadGateway(GatewayError, ConnectionError):
    """The service agent refused the connection or failed while answering (502)."""

    status = HTTPStatus.BAD_GATEWAY
