"""LangStream's ``re-rank`` agent: a list of documents in the record, sorted for a query.

``field`` (an expression) gives the list; the sorted list is written to ``output-field`` (the
result field grammar of :func:`workers.builtin.records.set_field`; it may be the same field).
The input list itself is never changed.

``algorithm: none`` (the default) copies the list. ``algorithm: MMR`` ranks it by maximal
marginal relevance, greedily: among the documents not ranked yet, take the one with the highest

    lambda * BM25(query, document) - (1 - lambda) * mean cosine(document, each ranked document)

(the mean is 0 while nothing is ranked; the first highest wins a tie), until every document is
ranked or ``max`` are. BM25 is computed over the documents not ranked yet, with LangStream's
formula: tokens are the text split on whitespace (case kept, punctuation kept),
``idf = ln((N - n + 0.5) / (n + 0.5) + 1)`` and each query term adds
``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average length))``.
Each document's text and vector come from the ``text-field`` and ``embeddings-field``
expressions, evaluated with the document as ``record`` (``record.text``).

A query text that is missing or empty copies the list, whatever the algorithm. A document whose
text has no token or whose vector is empty is ranked after all the others, in list order (it
has nothing to score); a document without a text or a vector, a vector that is not a list of
numbers, vectors of different lengths, or a ``field`` that is not a list fail the record, so the
agent's ``errors`` policy decides what happens to it. ``query-embeddings`` is accepted and not
used, as in LangStream.

Pure Python (no numpy): the scores are computed once per document and per pair, so a list of a
hundred documents with 1536-dimension vectors is ranked in well under a second.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any

from sluice.expressions import EvaluationContext, Expression, compile_expression, to_text
from workers.builtin.records import WorkingRecord, context_of, parse_field_name, set_field
from workers.builtin.transforms import ToolkitAgent
from workers.errors import WorkerError

AGENT_TYPE = "re-rank"


class ReRankError(WorkerError, ValueError):
    """A record ``re-rank`` cannot sort: its list, a document's text or vector is wrong."""


@dataclass(frozen=True)
class Document:
    """What MMR reads of one document: its tokens and its vector (with the vector's norm)."""

    tokens: tuple[str, ...]
    vector: tuple[float, ...]
    norm: float

    @property
    def scorable(self) -> bool:
        return bool(self.tokens) and bool(self.vector)


def tokenise(text: str) -> tuple[str, ...]:
    """``text`` split on whitespace, case and punctuation kept.

    >>> tokenise("tell my a number, for instance two")
    ('tell', 'my', 'a', 'number,', 'for', 'instance', 'two')
    """
    return tuple(text.split())


def cosine(a: Document, b: Document) -> float:
    """The cosine similarity of two documents' vectors (0 when either vector is all zeros)."""
    if len(a.vector) != len(b.vector):
        raise ReRankError(
            f"{AGENT_TYPE}: documents have vectors of different lengths "
            f"({len(a.vector)} and {len(b.vector)})"
        )
    if a.norm == 0 or b.norm == 0:
        return 0.0
    dot: float = sum(map(mul, a.vector, b.vector))
    return dot / (a.norm * b.norm)


def bm25_scores(
    documents: Sequence[Document], query: Sequence[str], k1: float, b: float
) -> list[float]:
    """The BM25 score of each document for the ``query`` tokens, ``documents`` being the corpus.

    A term absent from a document adds nothing (LangStream's formula gives 0 there too, but
    NaN when ``k1`` is 0).
    """
    count = len(documents)
    if count == 0:
        return []
    average = sum(len(d.tokens) for d in documents) / count
    frequencies = [Counter(d.tokens) for d in documents]
    idf = {
        term: math.log(
            (count - (n := sum(1 for f in frequencies if term in f)) + 0.5) / (n + 0.5) + 1.0
        )
        for term in set(query)
    }
    scores = []
    for document, frequency in zip(documents, frequencies, strict=True):
        score = 0.0
        norm = k1 * (1 - b + b * len(document.tokens) / average) if average else k1
        for term in query:
            tf = frequency.get(term, 0)
            if tf:
                score += idf[term] * tf * (k1 + 1) / (tf + norm)
        scores.append(score)
    return scores


def mmr_order(
    documents: Sequence[Document],
    query: str,
    *,
    limit: int,
    mmr_lambda: float,
    k1: float,
    b: float,
) -> list[int]:
    """The indices of ``documents`` in MMR order, at most ``limit`` of them (see the module)."""
    query_tokens = tokenise(query)
    remaining = [i for i, d in enumerate(documents) if d.scorable]
    unscorable = [i for i, d in enumerate(documents) if not d.scorable]
    similarity_sums = dict.fromkeys(remaining, 0.0)
    ranked: list[int] = []
    while remaining and len(ranked) < limit:
        relevance = bm25_scores([documents[i] for i in remaining], query_tokens, k1, b)
        best, best_score = remaining[0], -math.inf
        for index, score in zip(remaining, relevance, strict=True):
            diversity = similarity_sums[index] / len(ranked) if ranked else 0.0
            total = mmr_lambda * score - (1 - mmr_lambda) * diversity
            if total > best_score:
                best, best_score = index, total
        ranked.append(best)
        remaining.remove(best)
        for index in remaining:
            similarity_sums[index] += cosine(documents[index], documents[best])
    return (ranked + unscorable)[:limit]


class ReRank(ToolkitAgent):
    """The ``re-rank`` processor (see the module's documentation)."""

    agent_type = AGENT_TYPE

    def configure(self, config: dict[str, Any]) -> None:
        self.field = compile_expression(config["field"])
        self.output_field: str = config["output-field"]
        parse_field_name(self.output_field)
        self.algorithm: str = config["algorithm"]
        self.query = _optional(config["query-text"])
        self.text = _optional(config["text-field"])
        self.embeddings = _optional(config["embeddings-field"])
        self.limit: int = config["max"]
        self.mmr_lambda = float(config["lambda"])
        self.k1 = float(config["k1"])
        self.b = float(config["b"])

    def apply(self, working: WorkingRecord) -> None:
        context = context_of(working)
        items = self.field.evaluate(context)
        if not isinstance(items, list):
            raise ReRankError(
                f"{AGENT_TYPE}: field {self.field.text!r} must give a list of documents, "
                f"got {_kind(items)}"
            )
        query = None if self.query is None else self.query.evaluate(context)
        if self.algorithm != "MMR" or query is None or to_text(query) == "":
            set_field(working, list(items), self.output_field)
            return
        documents = [self._document(position, item) for position, item in enumerate(items)]
        order = mmr_order(
            documents,
            to_text(query),
            limit=self.limit,
            mmr_lambda=self.mmr_lambda,
            k1=self.k1,
            b=self.b,
        )
        set_field(working, [items[i] for i in order], self.output_field)

    def _document(self, position: int, item: Any) -> Document:
        """What MMR reads of the list's element at ``position``."""
        assert self.text is not None and self.embeddings is not None  # checked by the schema
        context = EvaluationContext(record=item)
        text = self.text.evaluate(context)
        if text is None:
            raise ReRankError(
                f"{AGENT_TYPE}: document {position} has no text ({self.text.text!r} is null)"
            )
        raw = self.embeddings.evaluate(context)
        if not isinstance(raw, list):
            raise ReRankError(
                f"{AGENT_TYPE}: document {position} has no vector "
                f"({self.embeddings.text!r} must give a list of numbers, got {_kind(raw)})"
            )
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
            raise ReRankError(
                f"{AGENT_TYPE}: document {position}: {self.embeddings.text!r} must give a list "
                "of numbers"
            )
        vector = tuple(float(x) for x in raw)
        return Document(tokenise(to_text(text)), vector, math.sqrt(sum(map(mul, vector, vector))))


def _optional(text: str | None) -> Expression | None:
    return None if text is None or not text.strip() else compile_expression(text)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
