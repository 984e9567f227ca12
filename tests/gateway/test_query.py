"""The query contract: LangStream's messages, asserted exactly."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.messages import encode_offset
from gateway.query import (
    Credentials,
    GatewayQuery,
    find_credentials,
    parse_query,
)
from sluice.application.model import ChatOptions, GatewaySpec, HeaderSpec, ServiceOptions

PRODUCE = GatewaySpec(
    "in",
    "produce",
    topic="t",
    parameters=("sessionId",),
    produce_headers=(HeaderSpec("user", value_from_parameters="user"),),
)
CONSUME = GatewaySpec(
    "out",
    "consume",
    topic="t",
    consume_filters=(HeaderSpec("session", value_from_parameters="session"),),
)
CHAT = GatewaySpec(
    "chat",
    "chat",
    chat=ChatOptions("q", "a", (HeaderSpec("session-id", value_from_parameters="session-id"),)),
)
SERVICE = GatewaySpec(
    "svc",
    "service",
    parameters=("sessionId",),
    service=ServiceOptions(
        input_topic="i", output_topic="o", headers=(HeaderSpec("h", value_from_parameters="h"),)
    ),
)
PROXY = GatewaySpec(
    "proxy",
    "service",
    produce_headers=(HeaderSpec("user", value_from_parameters="user"),),
    service=ServiceOptions(agent_id="my-service"),
)
INVALID = (
    "invalid query parameter {}. To specify a gateway parameter, use the format "
    "param:<parameter_name>.To specify a option, use the format option:<option_name>."
)


def parse(spec: GatewaySpec, *pairs: tuple[str, str], **kwargs: float) -> GatewayQuery:
    return parse_query(spec, pairs, tenant="t1", application="app", **kwargs)


def error(spec: GatewaySpec, *pairs: tuple[str, str], **kwargs: float) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(spec, *pairs, **kwargs)
    assert caught.value.status == 400
    return caught.value.detail


def test_required_parameters_are_declared_then_referenced() -> None:
    assert PRODUCE.required_parameters == ("sessionId", "user")
    assert CHAT.required_parameters == ("session-id",)
    spec = GatewaySpec(
        "g",
        "produce",
        parameters=("a", "b"),
        produce_headers=(HeaderSpec("x", value_from_parameters="a"),),
    )
    assert spec.required_parameters == ("a", "b")


def test_produce_parameters_and_credentials() -> None:
    query = parse(PRODUCE, ("param:sessionId", "s1"), ("param:user", "u"), ("credentials", "tok"))
    assert dict(query.parameters) == {"sessionId": "s1", "user": "u"}
    assert query.credentials == "tok"
    assert query.test_credentials is None
    assert query.options == {}
    assert query.passthrough == ()


def test_last_duplicate_wins() -> None:
    query = parse(PRODUCE, ("param:sessionId", "a"), ("param:user", "u"), ("param:sessionId", "b"))
    assert query.parameters["sessionId"] == "b"


def test_query_is_frozen() -> None:
    query = parse(CONSUME, ("param:session", "s"))
    with pytest.raises(TypeError):
        query.parameters["x"] = "y"  # type: ignore[index]


def test_missing_required_parameter() -> None:
    assert error(PRODUCE, ("param:user", "u")) == (
        "Error for gateway in (tenant: t1, appId: app): missing required parameter sessionId. "
        "Required parameters: [sessionId, user]"
    )


def test_blank_required_parameter_is_missing() -> None:
    assert error(CHAT, ("param:session-id", "  ")) == (
        "Error for gateway chat (tenant: t1, appId: app): missing required parameter session-id. "
        "Required parameters: [session-id]"
    )


def test_referenced_parameter_of_a_consume_filter_is_required() -> None:
    assert error(CONSUME) == (
        "Error for gateway out (tenant: t1, appId: app): missing required parameter session. "
        "Required parameters: [session]"
    )


def test_unknown_parameters_sorted() -> None:
    assert error(CONSUME, ("param:session", "s"), ("param:z", "1"), ("param:x", "2")) == (
        "Error for gateway out (tenant: t1, appId: app): unknown parameters: [x, z]"
    )


def test_invalid_query_parameter() -> None:
    assert error(CONSUME, ("session", "s")) == INVALID.format("session")


def test_credentials_and_test_credentials() -> None:
    assert error(
        CONSUME, ("param:session", "s"), ("credentials", "a"), ("test-credentials", "b")
    ) == ("credentials and test-credentials cannot be used together")
    query = parse(CONSUME, ("param:session", "s"), ("test-credentials", "b"))
    assert query.test_credentials == "b"
    assert query.credentials is None


@pytest.mark.parametrize("spec", [CONSUME, CHAT])
def test_position_options(spec: GatewaySpec) -> None:
    params = ("param:session", "s") if spec is CONSUME else ("param:session-id", "s")
    assert parse(spec, params).position == "latest"
    assert parse(spec, params, ("option:position", "earliest")).position == "earliest"
    token = encode_offset({0: 3})
    query = parse(spec, params, ("option:position", token))
    assert query.position == token
    assert query.options == {"position": token}
    assert error(spec, params, ("option:position", " ")) == "'position' cannot be blank"
    assert error(spec, params, ("option:position", "nope")) == "invalid position nope"
    assert error(spec, params, ("option:other", "1")) == "Unknown option other"


def test_produce_accepts_no_options() -> None:
    pairs = (("param:sessionId", "s"), ("param:user", "u"))
    assert error(PRODUCE, *pairs, ("option:position", "latest")) == "Unknown option position"
    assert error(PRODUCE, *pairs, ("option:timeout", "5")) == "Unknown option timeout"


def test_service_timeout() -> None:
    assert parse(SERVICE).timeout == 30.0
    assert parse(SERVICE, default_timeout=10).timeout == 10.0
    assert parse(SERVICE, ("option:timeout", "2.5")).timeout == 2.5
    assert parse(SERVICE, ("option:timeout", "60"), max_timeout=60).timeout == 60.0
    assert error(SERVICE, ("option:timeout", "")) == "'timeout' cannot be blank"
    for bad in ("0", "-1", "abc", "nan", "inf", "61"):
        assert error(SERVICE, ("option:timeout", bad), max_timeout=60) == (
            f"invalid timeout {bad}: expected a number of seconds greater than 0 and at most 60"
        )
    assert error(SERVICE, ("option:position", "latest")) == "Unknown option position"


def test_service_parameters_are_optional_and_others_unknown() -> None:
    assert parse(SERVICE).parameters == {}
    assert dict(parse(SERVICE, ("param:sessionId", "s"), ("param:h", "v")).parameters) == {
        "sessionId": "s",
        "h": "v",
    }
    assert error(SERVICE, ("param:x", "1")) == (
        "Error for gateway svc (tenant: t1, appId: app): unknown parameters: [x]"
    )
    assert error(SERVICE, ("service-param", "1")) == INVALID.format("service-param")


def test_proxy_passthrough_keeps_order_and_drops_credentials() -> None:
    query = parse(
        PROXY,
        ("service-param-1", "yes"),
        ("credentials", "tok"),
        ("param:user", "u"),
        ("a", "1"),
        ("test", ""),
        ("a", "2"),
    )
    assert query.passthrough == (
        ("service-param-1", "yes"),
        ("param:user", "u"),
        ("a", "1"),
        ("test", ""),
        ("a", "2"),
    )
    assert query.credentials == "tok"
    assert dict(query.parameters) == {"user": "u"}
    assert error(PROXY, ("param:x", "1")) == (
        "Error for gateway proxy (tenant: t1, appId: app): unknown parameters: [x]"
    )
    assert parse(PROXY, ("option:timeout", "3")).timeout == 3.0
    assert "test-credentials" not in dict(parse(PROXY, ("test-credentials", "x")).passthrough)


def test_find_credentials_from_one_place() -> None:
    empty = GatewayQuery()
    assert find_credentials(empty) is None
    assert find_credentials(GatewayQuery(credentials="q")) == Credentials("q")
    assert find_credentials(GatewayQuery(test_credentials="t")) == Credentials("t", test=True)
    assert find_credentials(empty, authorization="Bearer abc") == Credentials("abc")
    assert find_credentials(empty, authorization="bearer  abc ") == Credentials("abc")
    assert find_credentials(empty, authorization="Basic dXNlcjpw") is None
    # An empty bearer token is the provider's to refuse (401, G2), not a malformed request.
    assert find_credentials(empty, authorization="Bearer ") == Credentials("")
    assert find_credentials(empty, subprotocols=["bearer", "tok"]) == Credentials("tok")
    assert find_credentials(empty, subprotocols=["chat", " bearer", "tok "]) == Credentials("tok")
    assert find_credentials(empty, subprotocols=["chat"]) is None


@pytest.mark.parametrize(
    ("query", "authorization", "subprotocols", "message"),
    [
        (
            GatewayQuery(credentials="q"),
            "Bearer a",
            (),
            "credentials were given in more than one way (the credentials query parameter, "
            "the Authorization header); use only one",
        ),
        (
            GatewayQuery(test_credentials="q"),
            None,
            ("bearer", "t"),
            "credentials were given in more than one way (the test-credentials query parameter, "
            "the WebSocket subprotocol); use only one",
        ),
        (
            GatewayQuery(),
            "Bearer a",
            ("bearer", "t"),
            "credentials were given in more than one way (the Authorization header, "
            "the WebSocket subprotocol); use only one",
        ),
        (
            GatewayQuery(),
            None,
            ("bearer",),
            "the WebSocket subprotocol bearer must be followed by the token",
        ),
        (
            GatewayQuery(),
            None,
            ("bearer", ""),
            "the WebSocket subprotocol bearer must be followed by the token",
        ),
    ],
)
def test_find_credentials_errors(
    query: GatewayQuery, authorization: str | None, subprotocols: tuple[str, ...], message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        find_credentials(query, authorization=authorization, subprotocols=subprotocols)
    assert caught.value.detail == message
