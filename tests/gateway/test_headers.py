"""Configured headers and consume filters."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest, Unauthorized
from gateway.headers import (
    SERVICE_REQUEST_ID_HEADER,
    HeaderFilter,
    gateway_headers_for,
    header_filter,
    reserved_header_keys,
    resolve_headers,
)
from sluice.application.model import ChatOptions, GatewaySpec, HeaderSpec, ServiceOptions

LITERAL = HeaderSpec("kind", value="question")
PARAM = HeaderSpec("session", value_from_parameters="sessionId")
PRINCIPAL = HeaderSpec("user", value_from_authentication="email")

PRODUCE = GatewaySpec("p", "produce", topic="t", produce_headers=(LITERAL, PARAM, PRINCIPAL))
CONSUME = GatewaySpec("c", "consume", topic="t", consume_filters=(PARAM, PRINCIPAL))
CHAT = GatewaySpec("ch", "chat", chat=ChatOptions("q", "a", (PARAM,)))
SERVICE = GatewaySpec(
    "s",
    "service",
    produce_headers=(PRINCIPAL,),
    service=ServiceOptions(input_topic="i", output_topic="o", headers=(PARAM,)),
)
PROXY = GatewaySpec(
    "x", "service", produce_headers=(PRINCIPAL,), service=ServiceOptions(agent_id="agent")
)


def test_only_agent_id_service_gateways_are_proxies() -> None:
    assert PROXY.is_proxy
    assert not SERVICE.is_proxy
    assert not GatewaySpec("s", "service").is_proxy
    assert not PRODUCE.is_proxy


def test_configured_headers_by_type() -> None:
    assert PRODUCE.configured_headers == (LITERAL, PARAM, PRINCIPAL)
    assert CONSUME.configured_headers == ()
    assert CHAT.configured_headers == (PARAM,)
    assert SERVICE.configured_headers == (PARAM, PRINCIPAL)
    assert PROXY.configured_headers == (PRINCIPAL,)
    assert GatewaySpec("c", "chat").configured_headers == ()
    assert GatewaySpec("s", "service").configured_headers == ()


def test_referenced_parameters() -> None:
    assert PRODUCE.referenced_parameters == ("sessionId",)
    assert CONSUME.referenced_parameters == ("sessionId",)
    assert SERVICE.referenced_parameters == ("sessionId",)
    assert PROXY.referenced_parameters == ()


def test_reserved_header_keys() -> None:
    assert reserved_header_keys(PRODUCE) == {"kind", "session", "user"}
    assert reserved_header_keys(CHAT) == {"session"}
    assert reserved_header_keys(SERVICE) == {"session", "user", SERVICE_REQUEST_ID_HEADER}
    assert reserved_header_keys(PROXY) == {"user"}


def test_resolve_headers() -> None:
    resolved = resolve_headers(
        PRODUCE.produce_headers, {"sessionId": "s1"}, {"email": "a@b.c", "name": "A"}
    )
    assert resolved == {"kind": "question", "session": "s1", "user": "a@b.c"}


def test_principal_values_become_text() -> None:
    flag = HeaderSpec("verified", value_from_authentication="email_verified")
    number = HeaderSpec("id", value_from_authentication="id")
    assert resolve_headers((flag, number), {}, {"email_verified": True, "id": 42}) == {
        "verified": "true",
        "id": "42",
    }
    assert resolve_headers((flag,), {}, {"email_verified": False}) == {"verified": "false"}


@pytest.mark.parametrize("parameters", [{}, {"sessionId": ""}])
def test_missing_parameter_is_an_error(parameters: dict[str, str]) -> None:
    with pytest.raises(BadRequest) as caught:
        resolve_headers((PARAM,), parameters, None)
    assert caught.value.detail == "header session cannot be empty"


def test_missing_parameter_is_skipped_when_optional() -> None:
    assert resolve_headers((LITERAL, PARAM), {}, None, optional_parameters=True) == {
        "kind": "question"
    }


def test_empty_key() -> None:
    with pytest.raises(BadRequest) as caught:
        resolve_headers((HeaderSpec("", value="v"),), {}, None)
    assert caught.value.detail == "Header key cannot be empty"


def test_missing_principal() -> None:
    with pytest.raises(Unauthorized) as caught:
        resolve_headers((PRINCIPAL,), {}, None)
    assert caught.value.status == 401
    assert caught.value.detail == (
        "header user needs the authenticated user's email, but the request is not authenticated"
    )
    for principal in ({}, {"email": ""}, {"email": None}):
        with pytest.raises(Unauthorized) as caught:
            resolve_headers((PRINCIPAL,), {}, principal, optional_parameters=True)
        assert caught.value.detail == "header user cannot be empty: the principal has no email"


def test_header_without_a_source_is_empty() -> None:
    with pytest.raises(BadRequest):
        resolve_headers((HeaderSpec("k"),), {}, None)


def test_gateway_headers_for() -> None:
    principal = {"email": "a@b.c"}
    assert gateway_headers_for(SERVICE, {}, principal) == {"user": "a@b.c"}
    assert gateway_headers_for(SERVICE, {"sessionId": "s"}, principal) == {
        "session": "s",
        "user": "a@b.c",
    }
    with pytest.raises(BadRequest):
        gateway_headers_for(CHAT, {}, None)
    assert gateway_headers_for(CHAT, {"sessionId": "s"}, None) == {"session": "s"}


def test_header_filter_matches_all() -> None:
    filter_ = header_filter(CONSUME, {"sessionId": "s1"}, {"email": "a@b.c"})
    assert filter_ == HeaderFilter((("session", "s1"), ("user", "a@b.c")))
    assert filter_.matches({"session": "s1", "user": "a@b.c", "other": "x"})
    assert not filter_.matches({"session": "s1"})
    assert not filter_.matches({"session": "s2", "user": "a@b.c"})
    assert not filter_.matches({})


def test_empty_filter_matches_everything() -> None:
    assert HeaderFilter().matches({})
    assert header_filter(PRODUCE, {}, None).matches({"a": "b"})


def test_unresolved_filter_never_matches() -> None:
    filter_ = header_filter(CONSUME, {}, None)
    assert filter_ == HeaderFilter((("session", None), ("user", None)))
    assert not filter_.matches({"session": "", "user": ""})


def test_filters_of_chat_and_service() -> None:
    assert header_filter(CHAT, {"sessionId": "s"}, None) == HeaderFilter((("session", "s"),))
    service = header_filter(SERVICE, {"sessionId": "s"}, None).with_header(
        SERVICE_REQUEST_ID_HEADER, "id-1"
    )
    assert service.matches({"session": "s", SERVICE_REQUEST_ID_HEADER: "id-1"})
    assert not service.matches({"session": "s", SERVICE_REQUEST_ID_HEADER: "id-2"})
    assert header_filter(PROXY, {}, None) == HeaderFilter()


def test_filter_literal_value() -> None:
    spec = GatewaySpec("c", "consume", topic="t", consume_filters=(LITERAL,))
    filter_ = header_filter(spec, {}, None)
    assert filter_.matches({"kind": "question"})
    assert not filter_.matches({"kind": "answer"})
