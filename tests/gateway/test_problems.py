"""The error tree and RFC 9457 problem details."""

from __future__ import annotations

import pytest

from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from gateway.problems import problem, problem_for
from sluice.errors import SluiceError
from sluice.media import PROBLEM_CONTENT_TYPE


@pytest.mark.parametrize(
    ("cls", "status", "title", "builtin"),
    [
        (BadRequest, 400, "Bad Request", ValueError),
        (Unauthorized, 401, "Unauthorized", PermissionError),
        (Forbidden, 403, "Forbidden", PermissionError),
        (NotFound, 404, "Not Found", LookupError),
        (PayloadTooLarge, 413, "Request Entity Too Large", ValueError),
        (UnsupportedMediaType, 415, "Unsupported Media Type", ValueError),
        (Unavailable, 503, "Service Unavailable", RuntimeError),
        (GatewayTimeout, 504, "Gateway Timeout", TimeoutError),
    ],
)
def test_error_tree(cls: type[GatewayError], status: int, title: str, builtin: type) -> None:
    error = cls("what went wrong")
    assert isinstance(error, GatewayError)
    assert isinstance(error, SluiceError)
    assert isinstance(error, builtin)
    assert error.status == status
    assert error.title == title
    assert error.detail == "what went wrong"
    assert str(error) == "what went wrong"


def test_root_is_a_server_error() -> None:
    assert GatewayError("x").status == 500


def test_problem() -> None:
    assert problem(400, "bad", "/api/gateways/produce/t/a/g") == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "bad",
        "instance": "/api/gateways/produce/t/a/g",
    }
    custom = problem(599, "odd", "/x", type="https://example.com/odd")
    assert custom["title"] == "Error"
    assert custom["type"] == "https://example.com/odd"
    assert problem(400, "bad", "/x", title="Nope")["title"] == "Nope"


def test_problem_for() -> None:
    status, body, headers = problem_for(NotFound("gateway g is not defined"), "/v1/consume/t/a/g")
    assert status == 404
    assert type(status) is int
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "gateway g is not defined",
        "instance": "/v1/consume/t/a/g",
    }
    assert headers == {"Content-Type": PROBLEM_CONTENT_TYPE}


def test_problem_for_unavailable_has_retry_after() -> None:
    status, body, headers = problem_for(Unavailable("Kafka is slow", retry_after=5), "/p")
    assert status == 503
    assert body["detail"] == "Kafka is slow"
    assert headers == {"Content-Type": "application/problem+json", "Retry-After": "5"}
    _, _, headers = problem_for(Unavailable("busy"), "/p")
    assert "Retry-After" not in headers
    _, _, headers = problem_for(Unavailable("busy", retry_after=-1), "/p")
    assert headers["Retry-After"] == "0"


def test_an_unsupported_body_says_what_is_accepted() -> None:
    from gateway.messages import parse_http_body

    with pytest.raises(UnsupportedMediaType) as caught:
        parse_http_body("application/x-www-form-urlencoded", b"a=1")
    status, _, headers = problem_for(caught.value, "/api/gateways/produce/t/a/g")
    assert status == 415
    assert headers["Accept-Post"] == (
        "application/json, text/plain, application/cloudevents+json, "
        "application/cloudevents-batch+json"
    )
