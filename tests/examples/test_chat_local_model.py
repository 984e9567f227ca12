"""A chat application on the real local model under ``sluice run``: LangStream's
openai-completions shape (document-to-json, then ai-chat-completions streaming to the answers
topic) with its OpenAI resource pointed at the llama.cpp server through a secret, and a chat
gateway client that sees the answer arrive in pieces, live, with LangStream's stream headers.
The model's wording is never asserted, only the protocol."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.examples.support import receive_json, sluice_run
from tests.fakes.local_llm import LocalLlm

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - name: "questions"
    creation-mode: create-if-not-exists
  - name: "answers"
    creation-mode: create-if-not-exists
  - name: "history"
    creation-mode: create-if-not-exists
pipeline:
  - name: "convert-to-json"
    type: "document-to-json"
    input: "questions"
    configuration:
      text-field: "question"
  - name: "ai-chat-completions"
    type: "ai-chat-completions"
    output: "history"
    configuration:
      model: "${secrets.llm.model}"
      completion-field: "value.answer"
      stream-to-topic: "answers"
      stream-response-completion-field: "value"
      min-chunks-per-message: 4
      max-tokens: 24
      messages:
        - role: user
          content: "{{ value.question }}"
"""
CONFIGURATION = """
configuration:
  resources:
    - type: "open-ai-configuration"
      name: "local model"
      configuration:
        url: "${secrets.llm.url}"
        access-key: "${secrets.llm.access-key}"
"""
GATEWAYS = """
gateways:
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: questions
      answers-topic: answers
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
"""


async def test_a_chat_client_sees_the_local_models_answer_streamed(
    kafka_bootstrap: str, tmp_path: Path, local_llm: LocalLlm
) -> None:
    app = tmp_path / "local-chat"
    app.mkdir()
    for name, text in (
        ("pipeline.yaml", PIPELINE),
        ("configuration.yaml", CONFIGURATION),
        ("gateways.yaml", GATEWAYS),
    ):
        (app / name).write_text(text.lstrip("\n"))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "secrets:\n  - id: llm\n    data:\n"
        f"      url: {local_llm.base_url}\n      access-key: any\n"
        f"      model: {local_llm.model}\n"
    )
    async with (
        sluice_run(app, kafka_bootstrap, tmp_path, ["-s", str(secrets)]) as running,
        connect(running.ws_url("chat", "chat", "?param:sessionId=alice")) as alice,
    ):
        await alice.send(json.dumps({"value": "What is a stream of events?"}))
        assert await receive_json(alice) == {"status": "OK", "reason": None}
        pieces: list[tuple[float, dict[str, Any]]] = []
        while not pieces or pieces[-1][1]["headers"]["stream-last-message"] != "true":
            frame = await receive_json(alice, timeout=120)
            pieces.append((time.monotonic(), frame["record"]))
    records = [record for _, record in pieces]
    headers = [record["headers"] for record in records]
    assert [int(h["stream-index"]) for h in headers] == list(range(1, len(records) + 1))
    assert [h["stream-last-message"] for h in headers] == ["false"] * (len(records) - 1) + ["true"]
    assert len({h["stream-id"] for h in headers}) == 1
    assert all(h["langstream-client-session-id"] == "alice" for h in headers)
    assert "".join(str(record["value"]) for record in records).strip()
    # The first piece comes on its own (LangStream's grouping starts at 1), so an answer of more
    # than one token arrives in more than one piece.
    assert len(records) >= 2
