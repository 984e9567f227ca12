"""Which AI resource an agent uses (LangStream's order, types from the worker or from the keys),
and the pure parts of provider calls (``Retry-After``)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

from workers.builtin.providers import ResourceError, choose_resource
from workers.builtin.providers.client import retry_after_seconds
from workers.builtin.providers.resources import NO_AI_SERVICE, resource_type

RESOURCES: dict[str, Any] = {
    "db": {"service": "jdbc", "url": "jdbc:x"},
    "llm": {"url": "http://ollama:11434"},
    "aws": {"access-key": "a", "secret-key": "s"},
    "hf": {"provider": "api", "access-key": "k"},
    "g": {"project": "p", "region": "r", "token": "t"},
    "oa": {"access-key": "sk"},
}


@pytest.mark.parametrize(
    ("ident", "kind"),
    [
        ("db", None),
        ("llm", "ollama-configuration"),
        ("aws", "bedrock-configuration"),
        ("hf", "hugging-face-configuration"),
        ("g", "vertex-configuration"),
        ("oa", "open-ai-configuration"),
    ],
)
def test_a_resource_s_type_from_its_keys(ident: str, kind: str | None) -> None:
    assert resource_type(RESOURCES[ident]) == kind


def test_langstream_s_order_without_ai_service() -> None:
    order = []
    resources = dict(RESOURCES)
    while len(resources) > 1:
        chosen = choose_resource("t", {"resources": resources})
        order.append(chosen.id)
        del resources[chosen.id]
    assert order == ["oa", "g", "hf", "aws", "llm"]
    with pytest.raises(ResourceError, match=NO_AI_SERVICE.replace(".", r"\.")):
        choose_resource("t", {"resources": resources})  # only the datasource is left


def test_the_worker_s_types_win_over_the_keys() -> None:
    config = {
        "resources": {"a": {"access-key": "k"}, "b": {"access-key": "k"}},
        "resource-types": {"a": "hugging-face-configuration", "b": "open-ai-configuration"},
    }
    chosen = choose_resource("t", config)
    assert (chosen.id, chosen.type) == ("b", "open-ai-configuration")
    chosen = choose_resource("t", {**config, "ai-service": "a"})
    assert (chosen.type, chosen.hugging_face_provider) == ("hugging-face-configuration", "api")


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    found = retry_after_seconds(later)
    assert found is not None and 25 <= found <= 31
    assert retry_after_seconds(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0
