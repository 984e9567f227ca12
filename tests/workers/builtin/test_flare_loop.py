"""The FLARE loop under ``sluice run``, in the shape of LangStream's flare example: the question
seeds the list of documents to retrieve and goes to the loop topic; in the loop a ``compute``
step turns that list into documents and counts the iteration, a ``compute`` step stands in for
the vector query (the spans themselves become the related documents), ``ai-text-completions``
asks the fake OpenAI server for an answer with its log probabilities, and ``flare-controller``
sends an answer with unsure tokens back to the loop topic with its spans, or lets it go on to
the answers topic.

The fake answers "It was built in 1889." with the two "8" tokens unsure until the prompt holds
the span it was unsure of ("889."), then confidently; a question asking for a guess is answered
unsurely every time, so it loops until ``max-iterations`` lets it out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.kafka import KafkaSettings, Producer
from sluice.record import Record
from tests.examples.support import sluice_run
from tests.fakes.openai_server import FakeOpenAI
from tests.workers.conftest import read_all

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - name: "{questions}"
    creation-mode: create-if-not-exists
  - name: "{loop}"
    creation-mode: create-if-not-exists
  - name: "{answers}"
    creation-mode: create-if-not-exists
pipeline:
  - name: "question to JSON"
    id: "start"
    type: "document-to-json"
    input: "{questions}"
    configuration:
      text-field: "question"
  - name: "retrieve documents about the question first"
    type: "compute"
    output: "{loop}"
    configuration:
      fields:
        - name: "value.documents_to_retrieve"
          expression: "fn:listAdd(fn:emptyList(), value.question)"
        - name: "value.related_documents"
          expression: "fn:emptyList()"

  - name: "enter the loop"
    id: "flare-loop"
    type: "compute"
    input: "{loop}"
    configuration:
      fields:
        - name: "value.documents_to_retrieve"
          expression: "fn:listToListOfStructs(value.documents_to_retrieve, 'text')"
        - name: "value.related_documents"
          expression: "fn:emptyList()"
        - name: "value.flare_iterations"
          expression: "fn:coalesce(value.flare_iterations, 0) + 1"
  - name: "stand-in for the vector query"
    type: "compute"
    configuration:
      fields:
        - name: "value.related_documents"
          expression: "fn:addAll(value.related_documents, value.documents_to_retrieve)"
        - name: "value.documents_to_retrieve"
          expression: "fn:emptyList()"
  - name: "ask the model"
    type: "ai-text-completions"
    configuration:
      model: "gpt-fake-instruct"
      completion-field: "value.answer"
      logprobs: 5
      logprobs-field: "value.tokens"
      max-tokens: 50
      stream: false
      prompt:
        - |
          Use these documents:
          {{{{# value.related_documents}}}}
          {{{{{{ text }}}}}}
          {{{{/ value.related_documents}}}}
          Task: {{{{{{ value.question }}}}}}
  - name: "is the answer good enough"
    type: "flare-controller"
    configuration:
      tokens-field: "value.tokens.tokens"
      logprobs-field: "value.tokens.logprobs"
      loop-topic: "{loop}"
      retrieve-documents-field: "value.documents_to_retrieve"
      max-iterations: 2
  - name: "keep the answer"
    type: "compute"
    output: "{answers}"
    configuration:
      fields:
        - name: "value"
          expression: "value.answer"
"""

CONFIGURATION = """
configuration:
  resources:
    - type: "open-ai-configuration"
      name: "fake OpenAI"
      configuration:
        url: "{url}"
        access-key: "sk-flare-test"
"""

UNSURE = ["It", " was", " built", " in", " 1", "8", "8", "9", "."]
GUESS = ["Maybe", " ", "7", "."]


def reply(messages: list[dict[str, Any]]) -> str | list[str]:
    prompt = str(messages[-1]["content"])
    if "guess" in prompt:
        return GUESS
    return "It was built in 1889." if "\n889.\n" in prompt else UNSURE


def logprob(token: str) -> float:
    return -2.5 if token in ("8", "7") else -0.1


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=reply, logprob=logprob) as server:
        yield server


async def test_the_flare_loop_retrieves_until_the_answer_is_sure(
    kafka_bootstrap: str, tmp_path: Path, fake: FakeOpenAI
) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {"questions": f"questions-{suffix}", "loop": f"loop-{suffix}"}
    names["answers"] = f"answers-{suffix}"
    app = tmp_path / "flare"
    app.mkdir()
    (app / "pipeline.yaml").write_text(PIPELINE.format(**names))
    (app / "configuration.yaml").write_text(CONFIGURATION.format(url=fake.base_url))

    async with sluice_run(app, kafka_bootstrap, tmp_path) as running:
        async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
            for key, question in (("tower", "When was it built?"), ("dice", "Take a guess.")):
                record = Record(question, key=key, headers={"session": key})
                await producer.send(names["questions"], record, source="/test")
        answers = await read_all(kafka_bootstrap, names["answers"], 2, within=60, settle=0.5)
        looped = await read_all(kafka_bootstrap, names["loop"], 5, within=10, settle=0.5)
    assert "Traceback" not in running.output

    by_key = {a.record.key: a.record for a in answers}
    assert len(answers) == 2
    assert by_key["tower"].value == "It was built in 1889."
    assert by_key["dice"].value == "Maybe 7."  # still unsure, let out after max-iterations
    assert by_key["tower"].headers["session"] == "tower"

    # Two calls for the tower (unsure, then sure once "889." was retrieved), three for the guess
    # (iterations 1 and 2 loop, the third is over max-iterations 2).
    prompts = [str(r.body["prompt"]) for r in fake.requests]
    assert sum("When was it built?" in p for p in prompts) == 2
    assert sum("Take a guess." in p for p in prompts) == 3
    assert all(r.body["logprobs"] == 5 for r in fake.requests)

    # The loop topic: each question as seeded, then what flare-controller sent back.
    sent_back = [
        (c.record.key, value["documents_to_retrieve"], value["flare_iterations"])
        for c in looped
        if "flare_iterations" in (value := json.loads(c.record.value))
    ]
    assert sorted(sent_back) == [
        ("dice", ["7."], 1),
        ("dice", ["7."], 2),
        ("tower", ["889."], 1),
    ]
    seeded = [
        (c.record.key, value["documents_to_retrieve"], value["related_documents"])
        for c in looped
        if "flare_iterations" not in (value := json.loads(c.record.value))
    ]
    assert sorted(seeded) == [
        ("dice", ["Take a guess."], []),
        ("tower", ["When was it built?"], []),
    ]
