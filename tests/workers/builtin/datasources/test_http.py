"""JSON over HTTP for the vector databases (workers/builtin/datasources/http.py) against a real
loopback server: 403 refused without a retry, Retry-After honoured, secrets cut out of the
service's texts, no server there, and Sluice's number keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.net import free_port
from tests.fakes.json_server import Fault, JsonServer, Request
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, RefusedCredentials, number_key

SECRET = "s3cr3t-in-body"


class Echo(JsonServer):
    """Answers every request with its body, or a 400 that repeats the secret."""

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.path == "/leak":
            return 400, {"error": f"bad key {SECRET}"}
        return 200, {"got": request.body}


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def client(url: str, **extra: Any) -> JsonHttp:
    settings = HttpSettings(
        resource="R", service="echo", base_url=url, secrets=(SECRET,), pause=0.01, **extra
    )
    return JsonHttp(settings)


async def test_403_is_not_retried(echo: Echo) -> None:
    http = client(echo.url)
    echo.faults.extend([Fault(403), Fault(403)])
    with pytest.raises(
        RefusedCredentials,
        match=r'datasource "R" \(echo at .*\): the service refused the credentials of the resource \(HTTP 403 for POST /x\)',
    ):
        await http.request("POST", "/x", {"a": 1})
    assert len(echo.requests) == 1
    assert await http.request("POST", "/x", {"a": 1}, allowed=(403,)) == (
        403,
        {"error": "fault 403"},
    )
    await http.close()


async def test_retry_after_is_honoured_and_secrets_cut(echo: Echo) -> None:
    http = client(echo.url)
    echo.faults.append(Fault(429, retry_after="0.5"))
    started = time.monotonic()
    assert await http.request("POST", "/x", {"a": 1}) == (200, {"got": {"a": 1}})
    assert time.monotonic() - started >= 0.45
    with pytest.raises(DataSourceError) as caught:
        await http.request("GET", "/leak")
    assert "bad key ****" in str(caught.value) and SECRET not in str(caught.value)
    await http.close()


async def test_no_server_there() -> None:
    http = client(f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(DataSourceError, match=r"GET / failed: .* \(2 tries; is the service up\?\)"):
        await http.request("GET", "/")
    await http.close()


def test_number_keys() -> None:
    assert number_key("w", {"k": "2.5"}, "k", 1) == 2.5
    assert number_key("w", {}, "k", 7) == 7
    with pytest.raises(DataSourceResourceError, match="w: k must be a number >= 0, got 'x'"):
        number_key("w", {"k": "x"}, "k", 1)
