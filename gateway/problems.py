"""RFC 9457 problem details: the body of every HTTP error the gateway answers."""

from __future__ import annotations

from http import HTTPStatus
from typing import TypedDict

from gateway.errors import (
    GatewayError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from sluice.media import PROBLEM_CONTENT_TYPE

__all__ = ["ProblemDetails", "problem", "problem_for"]


class ProblemDetails(TypedDict):
    type: str
    title: str
    status: int
    detail: str
    instance: str


def problem(
    status: int,
    detail: str,
    instance: str,
    title: str | None = None,
    type: str = "about:blank",
) -> ProblemDetails:
    """A problem object; ``title`` defaults to the reason phrase of ``status``.

    >>> problem(404, "no gateway g", "/api/gateways/produce/t/a/g")["title"]
    'Not Found'
    """
    if title is None:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
    return {"type": type, "title": title, "status": status, "detail": detail, "instance": instance}


def problem_for(error: GatewayError, instance: str) -> tuple[int, ProblemDetails, dict[str, str]]:
    """The status, body and response headers that answer ``error`` on request path ``instance``.

    The headers hold the problem's Content-Type and, for a 429 or a 503 that knows it,
    ``Retry-After``; for a 401, ``WWW-Authenticate``; for a 415, ``Accept-Post``.
    """
    headers = {"Content-Type": PROBLEM_CONTENT_TYPE}
    if isinstance(error, Unavailable | TooManyRequests) and error.retry_after is not None:
        headers["Retry-After"] = str(max(0, error.retry_after))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = error.challenge
    if isinstance(error, UnsupportedMediaType) and error.accepted:
        headers["Accept-Post"] = ", ".join(error.accepted)
    status = int(error.status)
    return status, problem(status, error.detail, instance, title=error.title), headers
