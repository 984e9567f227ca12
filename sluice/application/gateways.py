"""Reading and validating gateways.yaml (rules of docs/gateway.md, LangStream's messages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sluice.application.model import (
    AuthenticationSpec,
    ChatOptions,
    GatewaySpec,
    HeaderSpec,
    ServiceOptions,
)
from sluice.application.reader import Node

GATEWAY_TYPES = ("produce", "consume", "chat", "service")
PROVIDERS = ("google", "github", "jwt", "http")
PRINCIPAL_FIELDS = {
    "google": ("subject", "email", "name", "locale", "email_verified", "hd"),
    "github": ("login", "id", "name", "email", "subject"),
}
GATEWAY_KEYS = (
    "id",
    "type",
    "topic",
    "parameters",
    "authentication",
    "produce-options",
    "produceOptions",
    "consume-options",
    "consumeOptions",
    "chat-options",
    "service-options",
    "events-topic",
)
_OPTIONS = {
    "produce": "produce-options",
    "consume": "consume-options",
    "chat": "chat-options",
    "service": "service-options",
}
_ALIASES = {"produce-options": "produceOptions", "consume-options": "consumeOptions"}


@dataclass
class ParsedGateway:
    spec: GatewaySpec
    node: Node


TopicCheck = Callable[[Node, str], None]


def parse_gateways(root: Node) -> list[ParsedGateway]:
    if not root.is_mapping("a mapping with a gateways list", optional=True):
        return []
    root.check_keys(("gateways",))
    parsed: list[ParsedGateway] = []
    seen: set[str] = set()
    for node in root.child("gateways").items("a list of gateways"):
        if not node.is_mapping("a gateway (a mapping with id and type)"):
            continue
        gateway = _gateway(node)
        if gateway is None:
            continue
        if gateway.id in seen:
            node.error(f'duplicate gateway id "{gateway.id}"', "id")
        seen.add(gateway.id)
        parsed.append(ParsedGateway(gateway, node))
    return parsed


def _present_options(node: Node) -> dict[str, str]:
    """Which option blocks the gateway has, by canonical name -> the spelling used."""
    out: dict[str, str] = {}
    for canonical in _OPTIONS.values():
        spelling = (
            node.aliased(canonical, _ALIASES[canonical])
            if canonical in _ALIASES
            else (canonical if node.has(canonical) else None)
        )
        if spelling is not None:
            out[canonical] = spelling
    return out


def _gateway(node: Node) -> GatewaySpec | None:
    node.check_keys(GATEWAY_KEYS)
    gateway_id = node.string("id", required=True)
    kind = node.string("type", required=True, choices=GATEWAY_TYPES)
    if gateway_id is None or kind is None:
        return None
    options = _present_options(node)
    # A service gateway may carry produce-options: their headers go on the proxied request or
    # the produced request (the brief's google-protected agent proxy does exactly that).
    allowed = {_OPTIONS[kind], "produce-options"} if kind == "service" else {_OPTIONS[kind]}
    for canonical, spelling in options.items():
        if canonical not in allowed:
            node.error(f"Gateway of type '{kind}' cannot have {canonical}", spelling)
    topic = node.string("topic")
    parameters = node.string_list("parameters")
    authentication = _authentication(node.child("authentication"))
    spec = GatewaySpec(
        id=gateway_id,
        type=kind,  # type: ignore[arg-type]
        topic=topic,
        parameters=parameters,
        authentication=authentication,
        events_topic=node.string("events-topic"),
    )
    own = options.get(_OPTIONS[kind])
    block = node.child(own) if own else node.child(_OPTIONS[kind], None)
    if kind == "produce":
        _require_topic(node, topic, kind)
        if block.is_mapping(optional=True):
            block.check_keys(("headers",))
        spec = _with(spec, produce_headers=_headers(block.child("headers")))
    elif kind == "consume":
        _require_topic(node, topic, kind)
        if block.is_mapping(optional=True):
            block.check_keys(("filters",))
        filters = block.child("filters")
        if filters.is_mapping(optional=True):
            filters.check_keys(("headers",))
        spec = _with(spec, consume_filters=_headers(filters.child("headers")))
    elif kind == "chat":
        spec = _with(spec, chat=_chat(node, block, topic))
    else:
        produce = node.child(options["produce-options"]) if "produce-options" in options else None
        if produce is not None and produce.is_mapping(optional=True):
            produce.check_keys(("headers",))
            spec = _with(spec, produce_headers=_headers(produce.child("headers")))
        spec = _with(spec, service=_service(node, block, topic))
    _check_principal_fields(node, spec)
    return spec


def _with(spec: GatewaySpec, **changes: object) -> GatewaySpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


def _require_topic(node: Node, topic: str | None, kind: str) -> None:
    if topic is None:
        node.error(f"a {kind} gateway needs a topic", "topic")


def _chat(node: Node, block: Node, topic: str | None) -> ChatOptions | None:
    if topic is not None:
        node.error(
            "Gateway of type 'chat' cannot have topic. Use chat-options.questions-topic and "
            "chat-options.answers-topic instead",
            "topic",
        )
    if block.value is None:
        node.error("a chat gateway needs chat-options with questions-topic and answers-topic")
        return None
    if not block.is_mapping():
        return None
    block.check_keys(("questions-topic", "answers-topic", "headers"))
    questions = block.string("questions-topic", required=True)
    answers = block.string("answers-topic", required=True)
    headers = _headers(block.child("headers"))
    if questions is None or answers is None:
        return None
    return ChatOptions(questions, answers, headers)


def _service(node: Node, block: Node, topic: str | None) -> ServiceOptions | None:
    if topic is not None:
        node.error(
            "Gateway of type 'service' cannot have topic. Use service-options.input-topic and "
            "service-options.output-topic, or service-options.agent-id",
            "topic",
        )
    if block.value is None:
        node.error(
            "a service gateway needs service-options (agent-id, or input-topic and output-topic)"
        )
        return None
    if not block.is_mapping():
        return None
    block.check_keys(("agent-id", "input-topic", "output-topic", "headers"))
    agent_id = block.string("agent-id")
    inputs = block.string("input-topic")
    outputs = block.string("output-topic")
    headers = _headers(block.child("headers"))
    if agent_id is not None:
        for key, value in (("input-topic", inputs), ("output-topic", outputs)):
            if value is not None:
                block.error(
                    "cannot be set together with agent-id: a service gateway either "
                    "proxies to an agent or uses topics",
                    key,
                )
    else:
        for key, value in (("input-topic", inputs), ("output-topic", outputs)):
            if value is None:
                block.error("is required when agent-id is not set", key)
    return ServiceOptions(agent_id, inputs, outputs, headers)


def _authentication(node: Node) -> AuthenticationSpec | None:
    if not node.is_mapping(optional=True):
        return None
    node.check_keys(("provider", "allow-test-mode", "configuration"))
    provider = node.string("provider", required=True, choices=PROVIDERS)
    spec = AuthenticationSpec(
        provider=provider or "",
        allow_test_mode=node.boolean("allow-test-mode", False),
        configuration=node.mapping("configuration"),
    )
    client_id = spec.configuration.get("clientId") or spec.configuration.get("client-id")
    if provider == "google" and not (isinstance(client_id, str) and client_id.strip()):
        # LangStream loads such an application and fails only this gateway's requests.
        node.warn(
            "the google provider has no configuration.clientId: the application loads, but "
            "this gateway answers every request with 500 until it is set (test mode still "
            "works), as LangStream fails it at request time",
            "configuration",
        )
    return spec if provider else None


def _headers(node: Node) -> tuple[HeaderSpec, ...]:
    out: list[HeaderSpec] = []
    for item in node.items("a list of headers"):
        if not item.is_mapping(
            "a header (key plus value, value-from-parameters or value-from-authentication)"
        ):
            continue
        item.check_keys(
            (
                "key",
                "value",
                "value-from-parameters",
                "valueFromParameters",
                "value-from-authentication",
                "valueFromAuthentication",
            )
        )
        sources: dict[str, str] = {}
        for canonical, alias in (
            ("value-from-parameters", "valueFromParameters"),
            ("value-from-authentication", "valueFromAuthentication"),
        ):
            spelling = item.aliased(canonical, alias)
            if spelling is not None:
                value = item.string(spelling, required=True)
                if value is not None:
                    sources[canonical] = value
        if item.has("value"):
            value = item.string("value", required=True)
            if value is not None:
                sources["value"] = value
        if not sources:
            named = (
                "value",
                "value-from-parameters",
                "valueFromParameters",
                "value-from-authentication",
                "valueFromAuthentication",
            )
            if not any(item.has(k) for k in named):
                item.error("needs one of value, value-from-parameters, value-from-authentication")
            continue
        if len(sources) > 1:
            item.error(
                f"has {' and '.join(sources)}: a header takes exactly one of value, "
                "value-from-parameters, value-from-authentication"
            )
            continue
        kind, value = next(iter(sources.items()))
        key = item.string("key") or value
        out.append(
            HeaderSpec(
                key=key,
                value=value if kind == "value" else None,
                value_from_parameters=value if kind == "value-from-parameters" else None,
                value_from_authentication=value if kind == "value-from-authentication" else None,
            )
        )
    return tuple(out)


def gateway_headers(spec: GatewaySpec) -> tuple[HeaderSpec, ...]:
    """Every header a gateway sets or filters on, whatever its type."""
    headers = spec.produce_headers + spec.consume_filters
    if spec.chat is not None:
        headers += spec.chat.headers
    if spec.service is not None:
        headers += spec.service.headers
    return headers


def _check_principal_fields(node: Node, spec: GatewaySpec) -> None:
    fields = PRINCIPAL_FIELDS.get(spec.authentication.provider) if spec.authentication else None
    for header in gateway_headers(spec):
        name = header.value_from_authentication
        if name is None:
            continue
        if spec.authentication is None:
            node.error(
                f'header "{header.key}" uses value-from-authentication: {name}, but the '
                "gateway has no authentication"
            )
        elif fields is not None and name not in fields:
            node.error(
                f'header "{header.key}": the {spec.authentication.provider} provider has '
                f'no principal field "{name}" (fields: {", ".join(fields)})',
                "authentication",
            )
