"""``re-rank`` on in-memory records: LangStream's cases, MMR and BM25 by hand, edge cases and
configuration errors.

Expected orders come from LangStream's ``ReRankAgentTest`` (``testNone``, ``testMMR``) and
``RerankAgentRunnerIT.testSimpleRerank``; the test ids name them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.rerank import Document, ReRankError, bm25_scores, cosine, tokenise

MMR = {
    "field": "value.query_results",
    "output-field": "value.output_field",
    "query-text": "value.query",
    "query-embeddings": "value.query_embeddings",
    "text-field": "record.text",
    "embeddings-field": "record.embeddings",
    "algorithm": "MMR",
}


async def run(config: dict[str, Any], value: Any) -> Any:
    agent = BUILTIN_AGENTS["re-rank"]()
    await agent.init({**config, "resources": {}, "globals": {}})
    [out] = await agent.process(Record(json.dumps(value)))  # type: ignore[union-attr]
    return json.loads(out.value)


def it_documents() -> list[dict[str, Any]]:
    """RerankAgentRunnerIT's ten documents as its vector query returns them: ordered by cosine
    similarity to [1, 2, 3, 4, 5], most similar first."""
    query = [1.0, 2.0, 3.0, 4.0, 5.0]
    documents = [
        {"text": f"text{i}", "embeddings_vector": [float(i), 2.0, 3.0, 4.0, 5.0]} for i in range(10)
    ]

    def similarity(d: dict[str, Any]) -> float:
        v = d["embeddings_vector"]
        dot: float = sum(a * b for a, b in zip(v, query, strict=True))
        return dot / math.hypot(*v) / math.hypot(*query)

    return sorted(documents, key=lambda d: -similarity(d))


def test_re_rank_is_runnable() -> None:
    assert AGENT_TYPES["re-rank"].runnable
    assert AGENT_TYPES["re-rank"].component == "processor"


async def test_none_on_an_empty_list_ReRankAgentTest_testNone() -> None:
    config = {**MMR, "field": "value.field", "algorithm": "none"}
    out = await run(config, {"field": []})
    assert out == {"field": [], "output_field": []}


async def test_mmr_ReRankAgentTest_testMMR() -> None:
    one = {"text": "one", "embeddings": [1.0, 2.0]}
    two = {"text": "two", "embeddings": [3.0, 4.0]}
    value = {
        "query": "tell my a number, for instance two",
        "query_embeddings": [3.0, 4.0],
        "query_results": [one, two],
    }
    out = await run({**MMR, "lambda": 0.7}, value)
    assert out["output_field"] == [two, one]
    # The input list and the other fields are untouched.
    assert out["query_results"] == [one, two]
    assert out["query"] == "tell my a number, for instance two"
    assert out["query_embeddings"] == [3.0, 4.0]


async def test_mmr_by_diversity_alone_RerankAgentRunnerIT_testSimpleRerank() -> None:
    # No query term is in any text: BM25 is 0 everywhere, the order is diversity's alone.
    config = {
        "max": 8,
        "field": "value.related_documents",
        "query-text": "value.question",
        "query-embeddings": "value.question_embeddings",
        "output-field": "value.related_documents",
        "text-field": "record.text",
        "embeddings-field": "record.embeddings_vector",
        "algorithm": "MMR",
        "lambda": 0.5,
        "k1": 1.5,
        "b": 0.7,
    }
    value = {
        "question": "this is a question",
        "question_embeddings": [1.0, 2.0, 3.0, 4.0, 5.0],
        "related_documents": it_documents(),
    }
    out = await run(config, value)
    texts = [d["text"] for d in out["related_documents"]]
    assert texts == ["text1", "text9", "text0", "text8", "text7", "text2", "text6", "text3"]


def test_bm25_by_hand() -> None:
    # Two documents, "two" in one of them: idf = ln((2 - 1 + 0.5) / (1 + 0.5) + 1) = ln 2.
    docs = [Document(("one",), (1.0,), 1.0), Document(("two", "two", "three"), (1.0,), 1.0)]
    k1, b = 1.5, 0.75
    [first, second] = bm25_scores(docs, tokenise("two"), k1, b)
    average = (1 + 3) / 2
    expected = math.log(2) * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 3 / average))
    assert first == 0.0
    assert second == pytest.approx(expected)


def test_cosine_by_hand() -> None:
    a = Document(("a",), (1.0, 2.0), math.hypot(1, 2))
    b = Document(("b",), (3.0, 4.0), 5.0)
    assert cosine(a, b) == pytest.approx(11 / (math.sqrt(5) * 5))
    zero = Document(("z",), (0.0, 0.0), 0.0)
    assert cosine(a, zero) == 0.0
    with pytest.raises(ReRankError, match="vectors of different lengths"):
        cosine(a, Document(("c",), (1.0,), 1.0))


@pytest.mark.parametrize(
    ("mmr_lambda", "expected"),
    [
        # lambda 1: relevance alone, the most relevant first (ties keep the list's order).
        (1.0, ["a b", "a", "c", "d"]),
        # lambda 0: diversity alone; the first in the list opens, then the least similar.
        (0.0, ["a b", "d", "a", "c"]),
    ],
)
async def test_lambda_trades_relevance_for_diversity(
    mmr_lambda: float, expected: list[str]
) -> None:
    documents = [
        {"text": "a b", "embeddings": [1.0, 0.0]},
        {"text": "a", "embeddings": [1.0, 0.1]},
        {"text": "c", "embeddings": [0.9, 0.2]},
        {"text": "d", "embeddings": [0.0, 1.0]},
    ]
    value = {"query": "a b", "query_results": documents}
    out = await run({**MMR, "lambda": mmr_lambda}, value)
    assert [d["text"] for d in out["output_field"]] == expected


@pytest.mark.parametrize(
    ("limit", "count"), [(0, 0), (1, 1), (3, 3), (100, 3)], ids=["0", "1", "all", "more"]
)
async def test_max_keeps_at_most_that_many(limit: int, count: int) -> None:
    documents = [{"text": t, "embeddings": [1.0, float(i)]} for i, t in enumerate("xyz")]
    out = await run({**MMR, "max": limit}, {"query": "y", "query_results": documents})
    assert len(out["output_field"]) == count
    if count:
        assert out["output_field"][0]["text"] == "y"


async def test_empty_list_with_mmr() -> None:
    out = await run(MMR, {"query": "q", "query_results": []})
    assert out["output_field"] == []


@pytest.mark.parametrize("query", [None, ""], ids=["missing", "empty"])
async def test_no_query_copies_the_list(query: str | None) -> None:
    documents = [{"text": "b", "embeddings": [1.0]}, {"text": "a"}]
    value: dict[str, Any] = {"query_results": documents}
    if query is not None:
        value["query"] = query
    out = await run(MMR, value)
    assert out["output_field"] == documents


async def test_none_copies_the_list_and_ignores_max() -> None:
    documents = [{"text": "b"}, {"text": "a"}, {"text": "c"}]
    out = await run(
        {"field": "value.docs", "output-field": "value.docs", "max": 1}, {"docs": documents}
    )
    assert out == {"docs": documents}


async def test_output_in_a_header() -> None:
    agent = BUILTIN_AGENTS["re-rank"]()
    await agent.init({**MMR, "output-field": "properties.ranked"})
    record = Record(
        json.dumps({"query": "two", "query_results": [{"text": "two", "embeddings": [1]}]})
    )
    [out] = await agent.process(record)  # type: ignore[union-attr]
    assert out.headers["ranked"] == '[{"text":"two","embeddings":[1]}]'


async def test_documents_with_nothing_to_score_go_last_in_list_order() -> None:
    documents = [
        {"text": "", "embeddings": [1.0]},
        {"text": "two", "embeddings": []},
        {"text": "one", "embeddings": [1.0]},
        {"text": "  ", "embeddings": [1.0]},
        {"text": "two", "embeddings": [0.5]},
    ]
    out = await run(MMR, {"query": "two", "query_results": documents})
    assert out["output_field"] == [
        documents[4],
        documents[2],
        documents[0],
        documents[1],
        documents[3],
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"text": "one"}, "document 1 has no vector ('record.embeddings' must give a list"),
        ({"embeddings": [1.0]}, "document 1 has no text ('record.text' is null)"),
        ({"text": "one", "embeddings": ["x"]}, "must give a list of numbers"),
        ({"text": "one", "embeddings": [1.0, 2.0, 3.0]}, "vectors of different lengths (3 and 2)"),
    ],
    ids=["no-vector", "no-text", "not-numbers", "other-length"],
)
async def test_a_document_mmr_cannot_read_fails_the_record(
    document: dict[str, Any], message: str
) -> None:
    documents = [{"text": "two", "embeddings": [1.0, 2.0]}, document]
    with pytest.raises(ReRankError) as caught:
        await run(MMR, {"query": "two", "query_results": documents})
    assert message in str(caught.value)


@pytest.mark.parametrize("algorithm", ["none", "MMR"])
async def test_a_field_that_is_not_a_list_fails_the_record(algorithm: str) -> None:
    with pytest.raises(ReRankError) as caught:
        await run({**MMR, "algorithm": algorithm}, {"query": "q"})
    assert str(caught.value) == (
        "re-rank: field 'value.query_results' must give a list of documents, got null"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output-field": "value.x"}, "re-rank: field: is required"),
        ({"field": "value.x"}, "re-rank: output-field: is required"),
        ({**MMR, "algorithm": "mmr"}, "algorithm"),
        ({**MMR, "text-field": None}, "text-field: is required with algorithm MMR"),
        ({**MMR, "query-text": ""}, "query-text: the expression is empty"),
        ({**MMR, "lambda": "much"}, "lambda: must be a number, got 'much'"),
        ({**MMR, "k1": True}, "k1: must be a number, got True"),
        ({**MMR, "max": -1}, "max"),
        ({**MMR, "output-field": "output"}, "invalid field name 'output'"),
        ({**MMR, "field": "value.("}, "field"),
    ],
    ids=[
        "no-field",
        "no-output",
        "algorithm",
        "mmr-text",
        "mmr-query",
        "lambda",
        "k1",
        "max",
        "output-name",
        "field-syntax",
    ],
)
async def test_configuration_errors(config: dict[str, Any], message: str) -> None:
    agent = BUILTIN_AGENTS["re-rank"]()
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(BadConfiguration) as caught:
        await agent.init(config)
    assert message in str(caught.value)


async def test_query_embeddings_is_not_needed() -> None:
    # LangStream evaluated query-embeddings and never used it; here it may be left out.
    config = {k: v for k, v in MMR.items() if k != "query-embeddings"}
    out = await run(config, {"query": "q", "query_results": [{"text": "q", "embeddings": [1]}]})
    assert out["output_field"] == [{"text": "q", "embeddings": [1]}]
