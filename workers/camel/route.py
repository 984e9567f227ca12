"""The Camel side of the bridge: the YAML route and the camel-main properties a JVM runs.

The route consumes from the agent's endpoint and, for each exchange, posts one JSON document to
the worker (``POST /exchange``) and waits for the answer, in the exchange (InOut): the worker
answers 200 once Kafka acknowledged the record, so the exchange completes, and the component
commits (the file component moves or deletes the file, a queue acknowledges its message...)
only then; any other answer fails the exchange and the component keeps or redelivers its input.

The document is the message's headers with more entries: ``SluiceCamelBody``, the body, and
``SluiceCamelBodyClass``, its Java class. Binary bodies (bytes, files, streams, stream caches)
are read into bytes, which Jackson writes as base64 (class ``[B``); strings, numbers, booleans,
maps and lists are JSON as they are; any other object is first written to JSON text from its
properties, as LangStream did, and flagged with ``SluiceCamelBodyJson``. Headers are written by
Jackson too: numbers and booleans stay typed, dates become epoch milliseconds, and objects
become ``{}`` (see ``_HEADER_FEATURES``).

A second route posts ``/started`` once, when the Camel context has started, so the worker knows
the endpoint was resolved and is consuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BODY",
    "BODY_CLASS",
    "BODY_JSON",
    "EXCHANGE_PATH",
    "ROUTE_ID",
    "STARTED_PATH",
    "main_properties",
    "route_yaml",
]

EXCHANGE_PATH = "/exchange"
STARTED_PATH = "/started"
ROUTE_ID = "sluice-camel-source"
BODY = "SluiceCamelBody"
BODY_CLASS = "SluiceCamelBodyClass"
BODY_JSON = "SluiceCamelBodyJson"

#: Bodies to read into bytes before Jackson sees them.
_BINARY = (
    "byte[]",
    "org.apache.camel.component.file.GenericFile",
    "org.apache.camel.StreamCache",
    "java.io.InputStream",
    "java.io.Reader",
    "java.io.File",
    "java.nio.file.Path",
    "java.nio.ByteBuffer",
)

#: Bodies that are JSON values as they are; any other object is written by Jackson from its
#: properties, as LangStream did.
_PLAIN = (
    "java.lang.CharSequence",
    "java.lang.Number",
    "java.lang.Boolean",
    "java.util.Map",
    "java.util.Collection",
)

#: A body object is written from its getters (an object without any is ``{}``).
_BODY_FEATURES = "FAIL_ON_EMPTY_BEANS"
#: Header values are written without looking into objects: a header holding a scheduler, a
#: connection or a callback (Quartz, Kafka...) must not fail the exchange or leak its internals;
#: such values become ``{}``, which the worker leaves out. Maps, lists, dates, numbers, strings
#: and bytes are written as usual.
_HEADER_FEATURES = (
    "FAIL_ON_EMPTY_BEANS,AUTO_DETECT_GETTERS,AUTO_DETECT_IS_GETTERS,AUTO_DETECT_FIELDS"
)

#: Timeouts of the bridge's HTTP calls, in ms: the answer comes when Kafka acknowledged the
#: record (or gave up, after the producer's own timeout), which may take long when the buffer is
#: full or the broker is slow; a dead worker closes the connection instead.
_ANSWER_TIMEOUT_MS = 3_600_000


def _simple(expression: str) -> dict[str, Any]:
    return {"expression": {"simple": {"expression": expression}}}


def _constant(value: str) -> dict[str, Any]:
    return {"expression": {"constant": {"expression": value}}}


def route_yaml(endpoint_uri: str, port: int) -> str:
    """The routes of a camel-source JVM posting to the worker's bridge on ``port``."""
    base = f"http://127.0.0.1:{port}"
    http = {
        "httpMethod": "POST",
        "skipRequestHeaders": True,
        "skipControlHeaders": True,
        "throwExceptionOnFailure": True,
        "soTimeout": _ANSWER_TIMEOUT_MS,
        "responseTimeout": _ANSWER_TIMEOUT_MS,
    }
    binary = " || ".join(f"${{body}} is '{name}'" for name in _BINARY)
    plain = " && ".join(f"${{body}} !is '{name}'" for name in _PLAIN)
    steps: list[dict[str, Any]] = [
        {
            "choice": {
                "when": [
                    {**_simple(binary), "steps": [{"convertBodyTo": {"type": "byte[]"}}]},
                    {
                        **_simple(f"${{body}} != null && {plain}"),
                        "steps": [
                            {"marshal": {"json": _jackson(_BODY_FEATURES)}},
                            {"convertBodyTo": {"type": "java.lang.String", "charset": "UTF-8"}},
                            {"setHeader": {"name": BODY_JSON, **_constant("true")}},
                        ],
                    },
                ]
            }
        },
        {"setHeader": {"name": BODY_CLASS, **_simple("${bodyType}")}},
        {"setHeader": {"name": BODY, **_simple("${body}")}},
        {"setBody": _simple("${headers}")},
        {"marshal": {"json": _jackson(_HEADER_FEATURES)}},
        {"removeHeaders": {"pattern": "SluiceCamel*"}},
        {"to": {"uri": base + EXCHANGE_PATH, "parameters": http}},
    ]
    started_steps = [{"to": {"uri": base + STARTED_PATH, "parameters": dict(http)}}]
    routes = [
        {"route": {"id": ROUTE_ID, "from": {"uri": endpoint_uri, "steps": steps}}},
        {
            "route": {
                "id": "sluice-camel-started",
                "from": {
                    "uri": "timer:sluice-camel-started",
                    "parameters": {"repeatCount": 1, "delay": 0},
                    "steps": started_steps,
                },
            }
        },
    ]
    return yaml.safe_dump(routes, sort_keys=False, allow_unicode=True, width=1000)


def _jackson(features: str) -> dict[str, Any]:
    """A Jackson data format with its own mapper (no shared one to reconfigure)."""
    return {"library": "Jackson", "useDefaultObjectMapper": False, "disableFeatures": features}


def main_properties(route_file: Path, name: str) -> str:
    """camel-main's ``application.properties``: load ``route_file``, name the context."""
    lines = {
        "camel.main.name": name,
        "camel.main.routes-include-pattern": f"file:{route_file}",
        # Exchanges wait for the worker's answer; on SIGTERM the worker has answered all.
        "camel.main.shutdown-timeout": "5",
        "camel.main.shutdown-log-inflight-exchanges-on-timeout": "false",
    }
    return "".join(f"{key}={_escape(value)}\n" for key, value in lines.items())


def _escape(value: str) -> str:
    """A value for a Java properties file."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\:").replace("=", "\\=")
