"""The gateway contract of sluice.protocol: what the client builds, the server reads back."""

from __future__ import annotations

from gateway.query import parse_query
from sluice.application.model import GatewaySpec
from sluice.protocol import http_path, http_route, query_pairs, websocket_path, websocket_route

CONSUME = GatewaySpec("out", "consume", topic="t", parameters=("sessionId",))


def test_a_built_query_is_read_back_by_the_server() -> None:
    pairs = query_pairs([("sessionId", "s1")], [("position", "earliest")], token="tok")
    query = parse_query(CONSUME, pairs, tenant="default", application="app")
    assert dict(query.parameters) == {"sessionId": "s1"}
    assert dict(query.options) == {"position": "earliest"}
    assert (query.credentials, query.test_credentials) == ("tok", None)


def test_test_credentials_travel_under_their_own_key() -> None:
    pairs = query_pairs([("sessionId", "s1")], token="tok", test=True)
    query = parse_query(CONSUME, pairs, tenant="default", application="app")
    assert (query.credentials, query.test_credentials) == (None, "tok")


def test_paths_follow_the_route_patterns_and_keep_each_name_one_segment() -> None:
    assert http_route("produce") == "/api/gateways/produce/<tenant>/<application>/<gateway>"
    assert websocket_route("chat") == "/v1/chat/<tenant>/<application>/<gateway>"
    assert http_path("service", "t", "a/b", "g") == "/api/gateways/service/t/a%2Fb/g"
    assert websocket_path("consume", "t", "a", "g?x") == "/v1/consume/t/a/g%3Fx"
