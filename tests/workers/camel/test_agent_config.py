"""camel-source configuration: LangStream's keys, the endpoint URI and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from workers.camel.agent_config import CamelSourceConfig, parse_config
from workers.errors import AgentLoadError


def parse(**config: Any) -> CamelSourceConfig:
    return parse_config("src", config)


def error(**config: Any) -> str:
    with pytest.raises(AgentLoadError) as caught:
        parse_config("src", config)
    return str(caught.value)


def test_defaults_as_langstream() -> None:
    config = parse(**{"component-uri": "timer:tick"})
    assert config == CamelSourceConfig("timer:tick", (), "", 100)
    assert config.scheme == "timer"
    assert config.endpoint_uri == "timer:tick"


def test_options_are_appended_so_that_camel_reads_them_back_exactly() -> None:
    config = parse(
        **{
            "component-uri": "file:/in?delay=10",
            "component-options": {
                "include": r"^keep\+.*\.txt$",
                "move": "done & more/${file:name}",
                "noop": False,
                "maxMessagesPerPoll": 5,
                "skipped": None,
                "password": "p(a)ss",
                "odd": "(x)}",
            },
            "key-header": "CamelFileName",
            "max-buffered-records": "7",
        }
    )
    assert config.endpoint_uri == (
        "file:/in?delay=10"
        r"&include=RAW(^keep\+.*\.txt$)"  # Camel would read an encoded + as a space
        "&move=RAW(done & more/${file:name})"  # and an encoded & as the end of the option
        "&noop=false"  # as Java writes booleans
        "&maxMessagesPerPoll=5"
        "&password=RAW{p(a)ss}"
        "&odd=%28x%29%7D"
    )
    assert config.key_header == "CamelFileName"
    assert config.max_buffered_records == 7
    simple = parse(**{"component-uri": "timer:t", "component-options": {"period": 5}})
    assert simple.endpoint_uri == "timer:t?period=5"


def test_errors_say_what_is_wrong() -> None:
    prefix = "agent src: camel-source: "
    assert error() == prefix + (
        "configuration.component-uri is required (a Camel URI such as timer:tick)"
    )
    assert error(**{"component-uri": "no scheme"}) == prefix + (
        "component-uri 'no scheme' does not start with a Camel scheme (timer:, file:...)"
    )
    assert error(**{"component-uri": "timer:t", "component-options": ["a"]}) == prefix + (
        "component-options must be a mapping of option names to values"
    )
    assert error(**{"component-uri": "timer:t", "max-buffered-records": 0}) == prefix + (
        "max-buffered-records must be a whole number of at least 1, not 0"
    )
    assert error(**{"component-uri": "timer:t", "key-header": 3}) == prefix + (
        "key-header must be the name of a Camel header"
    )
