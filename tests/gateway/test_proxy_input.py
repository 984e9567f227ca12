"""Agent-id service gateways refuse input that cannot be forwarded as it is (a header value
outside ASCII, or with CR, LF or NUL, from the client or from a ``param:``) with a 400 naming
the header; never a 500 (the encoding failing) or a 502 blaming the service."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.support import assert_problem
from tests.gateway.test_proxy import Proxy, client, proxy

__all__ = ["client", "proxy"]

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize(
    "value", ["café", "日本", "\u00a0", "a\rb", "a\nb", "a\x00b", "a\r\nX-Evil: 1"]
)
async def test_a_parameter_that_cannot_be_a_header_value_is_400(
    proxy: Proxy, client: httpx.AsyncClient, value: str
) -> None:
    response = await client.get(f"{proxy.service_url()}/items", params={"param:sessionId": value})
    detail = assert_problem(response, 400)
    assert "langstream-client-session-id" in detail, detail
    assert "sessionId" in detail, detail


@pytest.mark.parametrize("value", ["café".encode(), "日本".encode(), b"\xff\xfe"])
async def test_a_client_header_outside_ascii_is_400(
    proxy: Proxy, client: httpx.AsyncClient, value: bytes
) -> None:
    response = await client.get(f"{proxy.service_url()}/items", headers={b"X-Name": value})
    detail = assert_problem(response, 400)
    assert "X-Name" in detail, detail


async def test_query_values_outside_ascii_and_with_control_characters_are_passed_on(
    proxy: Proxy, client: httpx.AsyncClient
) -> None:
    # The service's own query parameters are percent-encoded when forwarded: nothing to refuse.
    response = await client.get(
        f"{proxy.service_url()}/items", params={"q": "café\r\n\x00", "param:sessionId": "s1"}
    )
    assert response.status_code == 200, response.text
    assert ["q", "café\r\n\x00"] in response.json()["pairs"]
